"""Read PyTorch `pytorch_model.bin` checkpoints without torch.

`torch.save(state_dict)` writes a pickle that rebuilds tensors by calling
torch functions. Unpickling it normally can run any code the file names, so
this reader never does: a restricted unpickler allows only a short list of
names (dicts, tensor rebuild functions, storage and dtype names) and maps each
to a harmless stand-in defined here. Everything else is refused.

Two layouts are read:

* the zip archive of torch >= 1.6: `<top>/data.pkl` plus one raw storage per
  key in `<top>/data/<key>`;
* the legacy stream of older torch (and `_use_new_zipfile_serialization=False`):
  a magic-number pickle, a version pickle, a system-info pickle, the object
  pickle, a pickled list of storage keys, then each storage as an 8-byte
  element count followed by its raw bytes.

Unpickling only records where each tensor lives (storage key, dtype, offset,
shape, strides); `read(name)` fetches the bytes of that one tensor.
"""

import os
import pickle
import sys
import zipfile
import zlib
from typing import NamedTuple

import ml_dtypes
import numpy as np

from nlp4keras.checkpoints.base import CheckpointReader
from nlp4keras.checkpoints.errors import CheckpointError

# torch dtype name -> numpy dtype.
_DTYPES = {
    name: np.dtype(dtype)
    for name, dtype in {
        "float64": np.float64,
        "float32": np.float32,
        "float16": np.float16,
        "bfloat16": ml_dtypes.bfloat16,
        "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
        "float8_e5m2": ml_dtypes.float8_e5m2,
        "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
        "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
        "complex64": np.complex64,
        "complex128": np.complex128,
        "int8": np.int8,
        "uint8": np.uint8,
        "int16": np.int16,
        "uint16": np.uint16,
        "int32": np.int32,
        "uint32": np.uint32,
        "int64": np.int64,
        "uint64": np.uint64,
        "bool": np.bool_,
    }.items()
}

# Typed storage class name -> torch dtype name of its elements.
_STORAGE_CLASSES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "ShortStorage": "int16",
    "IntStorage": "int32",
    "LongStorage": "int64",
    "BoolStorage": "bool",
}

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


# ---------------------------------------------------------------------------
# Stand-ins returned by the restricted unpickler. Tuples are immutable, so a
# pickle cannot alter them after the fact (BUILD, SETITEMS and APPENDS fail).


class _StorageType(NamedTuple):
    """A storage class such as `torch.FloatStorage`; dtype None means raw bytes."""

    name: str
    dtype: object


class _TorchDType(NamedTuple):
    """A dtype global such as `torch.float32`."""

    name: str
    dtype: np.dtype


class _ClassName(NamedTuple):
    """A tensor class (`torch.Tensor`, `torch.nn.Parameter`) named by the pickle."""

    name: str


class _Storage(NamedTuple):
    """A storage met in the pickle: where its bytes are and how to read them."""

    key: str
    dtype: object  # numpy dtype, or None for an untyped storage
    byte_offset: int  # non-zero only for legacy storage views


class _Tensor(NamedTuple):
    """Where one tensor's elements are: enough to rebuild it later."""

    key: str
    dtype: np.dtype
    byte_offset: int
    shape: tuple
    strides: tuple  # in elements, as torch counts them


def _is_count(value):
    return type(value) is int and value >= 0


def _count_tuple(value, what):
    if not isinstance(value, (tuple, list)) or not all(map(_is_count, value)):
        raise ValueError(f"bad tensor {what}: {value!r:.80}")
    return tuple(value)


def _new_tensor(storage, offset, shape, strides, dtype):
    if not isinstance(storage, _Storage):
        raise ValueError("tensor rebuilt from something that is not a storage")
    if not _is_count(offset):
        raise ValueError(f"bad storage offset: {offset!r:.80}")
    shape = _count_tuple(shape, "shape")
    strides = _count_tuple(strides, "strides")
    if len(shape) != len(strides):
        raise ValueError(f"shape {shape} and strides {strides} differ in length")
    byte_offset = storage.byte_offset + offset * dtype.itemsize
    return _Tensor(storage.key, dtype, byte_offset, shape, strides)


def _rebuild_tensor(storage, offset, shape, strides, *_flags_and_metadata):
    """`torch._utils._rebuild_tensor` and `_v2`: the dtype is the storage's."""
    if not isinstance(storage, _Storage) or storage.dtype is None:
        raise ValueError("tensor rebuilt from an untyped storage without a dtype")
    return _new_tensor(storage, offset, shape, strides, storage.dtype)


def _rebuild_tensor_v3(storage, offset, shape, strides, _grad, _hooks, dtype, *_meta):
    """`torch._utils._rebuild_tensor_v3`: the dtype comes as an argument."""
    if not isinstance(dtype, _TorchDType):
        raise ValueError(f"bad tensor dtype: {dtype!r:.80}")
    return _new_tensor(storage, offset, shape, strides, dtype.dtype)


def _rebuild_parameter(data, _requires_grad, _hooks, _state=None):
    """`torch._utils._rebuild_parameter(_with_state)`: a Parameter is its data."""
    if not isinstance(data, _Tensor):
        raise ValueError("parameter rebuilt from something that is not a tensor")
    return data


_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type(func, cls, args, _state):
    """`torch._tensor._rebuild_from_type_v2`: a tensor carrying Python attributes."""
    if func not in _REBUILDERS or not isinstance(cls, _ClassName):
        raise ValueError("unsupported tensor subclass")
    return func(*args)


class _Dict(dict):
    """A pickled `OrderedDict` (a plain dict keeps insertion order too)."""

    def __setstate__(self, state):
        pass  # drops attributes such as a module state dict's `_metadata`


def _new_dict(*args):
    """`collections.OrderedDict(...)`."""
    return _Dict(*args)


def _encode_latin1(text, encoding="latin1"):
    """`_codecs.encode`: pickle protocol 2 stores bytes objects this way."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("unsupported use of _codecs.encode")
    return text.encode("latin-1")


def _allowed_globals():
    allowed = {
        ("collections", "OrderedDict"): _new_dict,
        ("_codecs", "encode"): _encode_latin1,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
        ("torch", "Tensor"): _ClassName("torch.Tensor"),
        ("torch.nn.parameter", "Parameter"): _ClassName("torch.nn.Parameter"),
    }
    for module in ("torch", "torch.storage"):
        allowed[module, "UntypedStorage"] = _StorageType("UntypedStorage", None)
    for cls, dtype_name in _STORAGE_CLASSES.items():
        storage_type = _StorageType(cls, _DTYPES[dtype_name])
        allowed["torch", cls] = storage_type
        allowed["torch.cuda", cls] = storage_type  # very old GPU checkpoints
    for name, dtype in _DTYPES.items():
        allowed["torch", name] = _TorchDType(name, dtype)
    return allowed


_ALLOWED_GLOBALS = _allowed_globals()


def _forbidden_global(path, module, name):
    full = f"{module}.{name}"
    if module.startswith("__torch__"):
        why = "a TorchScript class: this is a scripted model, not a state dict"
    elif module.startswith("torch.nn.") and name[:1].isupper():
        why = "a pickled module class: save model.state_dict() instead of the model"
    elif module.split(".")[0] == "torch" and name.endswith("Storage"):
        why = "an unsupported storage type"
    elif module.split(".")[0] == "torch":
        why = "which this reader does not support (dense tensors and dicts only)"
    else:
        why = "which is not a tensor type"
    return CheckpointError(f"refusing to load {path}: it references {full!r}, {why}")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles with stand-ins only; records the item size of every storage key."""

    def __init__(self, file, path, legacy):
        super().__init__(file)
        self._path = path
        self._legacy = legacy
        self.itemsizes = {}

    def find_class(self, module, name):
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise _forbidden_global(self._path, module, name)
        return found

    def persistent_load(self, pid):
        # Zip: ('storage', type, key, location, numel).
        # Legacy: the same plus view metadata (view_key, offset, size) or None.
        size = 6 if self._legacy else 5
        if not (isinstance(pid, tuple) and len(pid) == size and pid[0] == "storage"):
            raise ValueError(f"unexpected persistent id {pid!r:.80}")
        storage_type, key, view = pid[1], pid[2], pid[5] if self._legacy else None
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise ValueError(f"bad storage reference {pid!r:.80}")
        itemsize = 1 if storage_type.dtype is None else storage_type.dtype.itemsize
        self.itemsizes[key] = itemsize
        byte_offset = 0
        if view is not None:
            if not (isinstance(view, tuple) and len(view) == 3 and _is_count(view[1])):
                raise ValueError(f"bad storage view {view!r:.80}")
            byte_offset = view[1] * itemsize
        return _Storage(key, storage_type.dtype, byte_offset)


def _unpickle(file, path, legacy=False):
    """Returns (object, {storage key: item size}); any failure is a CheckpointError."""
    unpickler = _RestrictedUnpickler(file, path, legacy)
    try:
        return unpickler.load(), unpickler.itemsizes
    except CheckpointError:
        raise
    except Exception as exc:  # a malformed pickle can fail in many ways
        raise CheckpointError(
            f"cannot read {path}: malformed pickle data ({type(exc).__name__}: {exc})"
        ) from exc


# ---------------------------------------------------------------------------
# Where the storage bytes come from.


class _ZipStorages:
    """Storages of a torch >= 1.6 zip archive."""

    def __init__(self, file, path):
        self._path = path
        try:
            self._zip = zipfile.ZipFile(file)
            names = self._zip.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CheckpointError(f"{path} is a truncated or corrupt zip archive: {exc}")
        pickles = [n for n in names if n.split("/")[-1] == "data.pkl" and n.count("/") <= 1]
        if not pickles:
            raise CheckpointError(
                f"{path} is a zip archive without data.pkl, so not a torch.save checkpoint"
            )
        top = pickles[0][: -len("data.pkl")]
        self._entries = {
            info.filename[len(top) + len("data/") :]: info
            for info in self._zip.infolist()
            if info.filename.startswith(top + "data/")
        }
        self.big_endian = self._entry_text(top + "byteorder", "little") == "big"
        with self._open(self._zip.getinfo(pickles[0])) as data_pkl:
            self.root, _ = _unpickle(data_pkl, path)

    def _open(self, info):
        try:
            return self._zip.open(info)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CheckpointError(f"cannot read {self._path}: {exc}")

    def _entry_text(self, name, default):
        if name not in self._zip.NameToInfo:
            return default
        with self._open(self._zip.getinfo(name)) as entry:
            return entry.read().decode("ascii", "replace").strip()

    def read(self, key, start, length, tensor):
        info = self._entries.get(key)
        if info is None:
            raise CheckpointError(
                f"{self._path}: tensor {tensor!r} uses storage data/{key}, "
                "which is missing from the archive"
            )
        _check_room(self._path, tensor, key, start + length, info.file_size)
        try:
            with self._zip.open(info) as entry:
                entry.seek(start)
                data = entry.read(length)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise CheckpointError(f"cannot read tensor {tensor!r} from {self._path}: {exc}")
        if len(data) != length:
            raise CheckpointError(f"{self._path} is truncated: tensor {tensor!r} is cut short")
        return data

    def close(self):
        self._zip.close()


class _LegacyStorages:
    """Storages of the pre-1.6 stream layout, found by walking their headers once."""

    def __init__(self, file, path):
        self._file = file
        self._path = path
        if _unpickle(file, path)[0] != _LEGACY_MAGIC:
            raise CheckpointError(f"{path} is a pickle but not a PyTorch checkpoint")
        version = _unpickle(file, path)[0]
        if version != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: unsupported legacy protocol version {version!r:.40}")
        sys_info = _unpickle(file, path)[0]
        little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
        self.big_endian = not little
        self.root, itemsizes = _unpickle(file, path, legacy=True)
        keys = _unpickle(file, path)[0]
        if not isinstance(keys, list):
            raise CheckpointError(f"cannot read {path}: bad storage key list")
        self._spans = self._walk(keys, itemsizes, "little" if little else "big")

    def _walk(self, keys, itemsizes, byteorder):
        """{key: (file offset, byte length)} for each storage after the pickles."""
        file_size = os.fstat(self._file.fileno()).st_size
        spans = {}
        for key in keys:
            if key not in itemsizes:
                raise CheckpointError(f"cannot read {self._path}: storage {key!r} is never used")
            header = self._file.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{self._path} is truncated: storage {key!r} is missing")
            count = int.from_bytes(header, byteorder, signed=True)
            start, length = self._file.tell(), count * itemsizes[key]
            if count < 0 or start + length > file_size:
                raise CheckpointError(f"{self._path} is truncated: storage {key!r} is cut short")
            spans[key] = (start, length)
            self._file.seek(length, os.SEEK_CUR)
        return spans

    def read(self, key, start, length, tensor):
        if key not in self._spans:
            raise CheckpointError(f"{self._path}: storage of tensor {tensor!r} is missing")
        file_offset, size = self._spans[key]
        _check_room(self._path, tensor, key, start + length, size)
        self._file.seek(file_offset + start)
        data = self._file.read(length)
        if len(data) != length:
            raise CheckpointError(f"{self._path} is truncated: tensor {tensor!r} is cut short")
        return data

    def close(self):
        pass  # the file is closed by the reader


def _check_room(path, tensor, key, needed, available):
    if needed > available:
        raise CheckpointError(
            f"{path}: tensor {tensor!r} needs {needed} bytes of storage {key!r}, "
            f"which holds only {available}"
        )


def _open_storages(file, path):
    """Picks the layout from the first bytes of the file (as torch does)."""
    head = file.read(512)
    file.seek(0)
    if head.startswith(b"PK\x03\x04"):  # a zip's first local file header
        return _ZipStorages(file, path)
    if head[:1] == b"\x80":  # torch.save pickles with protocol >= 2
        return _LegacyStorages(file, path)
    if head[257:262] == b"ustar":
        raise CheckpointError(
            f"{path} uses the tar layout of early PyTorch releases, which is not supported: "
            "load it with torch.load and save it again with torch.save"
        )
    raise CheckpointError(f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle)")


# ---------------------------------------------------------------------------


def _tensors_of(mapping):
    return {k: v for k, v in mapping.items() if isinstance(k, str) and isinstance(v, _Tensor)}


def _find_state_dict(root, path, nested_key):
    """The {name: tensor} dict: the top level, or the one nested dict that holds tensors."""
    if not isinstance(root, dict):
        raise CheckpointError(f"{path} holds a {type(root).__name__}, not a dict of tensors")
    if nested_key is not None:
        inner = root.get(nested_key)
        if not isinstance(inner, dict):
            raise CheckpointError(f"{path} has no dict under key {nested_key!r}")
        return _tensors_of(inner)
    tensors = _tensors_of(root)
    if tensors:
        return tensors
    nested = [k for k, v in root.items() if isinstance(v, dict) and _tensors_of(v)]
    if len(nested) == 1:
        return _tensors_of(root[nested[0]])
    if nested:
        raise CheckpointError(
            f"{path} holds tensors under several keys {nested}; "
            "pass nested_key= to choose one"
        )
    raise CheckpointError(f"{path} holds no tensors (looked at the top level and one level down)")


def _elements_spanned(shape, strides):
    """How many storage elements a tensor covers, from its first to its last."""
    if 0 in shape:
        return 0
    return 1 + sum((size - 1) * stride for size, stride in zip(shape, strides))


def _native_bytes(data, dtype, big_endian):
    """Raw storage bytes in this machine's byte order."""
    if big_endian != (sys.byteorder == "big") and dtype.itemsize > 1:
        unit = dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize
        data = np.frombuffer(data, dtype=f"u{unit}").byteswap().tobytes()
    return data


class TorchBinReader(CheckpointReader):
    """Lazy reader of a `torch.save` state dict (`pytorch_model.bin`), without torch.

    A file nesting its state dict one level down (`{"state_dict": {...}}`,
    `{"model": {...}}`) is read from that level when only one nested dict holds
    tensors; `nested_key` picks one explicitly. Non-tensor entries are skipped.
    """

    def __init__(self, path, nested_key=None):
        self.path = os.fspath(path)
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            raise CheckpointError(f"checkpoint file not found: {self.path}") from None
        except OSError as exc:
            raise CheckpointError(f"cannot open checkpoint {self.path}: {exc}") from None
        try:
            self._storages = _open_storages(self._file, self.path)
            self._tensors = _find_state_dict(self._storages.root, self.path, nested_key)
        except BaseException:
            self._file.close()
            raise

    def keys(self):
        return list(self._tensors)

    def shape(self, name):
        return self._record(name).shape

    def read(self, name):
        record = self._record(name)
        itemsize = record.dtype.itemsize
        count = _elements_spanned(record.shape, record.strides)
        if count == 0:
            return np.zeros(record.shape, dtype=record.dtype)
        data = self._storages.read(record.key, record.byte_offset, count * itemsize, name)
        data = _native_bytes(data, record.dtype, self._storages.big_endian)
        strides = tuple(stride * itemsize for stride in record.strides)
        # A strided view of the bytes (numpy checks it stays inside them), then a copy.
        view = np.ndarray(record.shape, dtype=record.dtype, buffer=data, strides=strides)
        return np.array(view)

    def close(self):
        if not self._file.closed:
            self._storages.close()
            self._file.close()

    def _record(self, name):
        if name not in self._tensors:
            raise self.missing(name)
        return self._tensors[name]
