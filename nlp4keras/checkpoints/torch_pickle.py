"""The restricted unpickler behind `torch_bin`: it rebuilds the objects of a
`torch.save` pickle without torch and without running any pickled code.

A torch pickle rebuilds tensors by calling torch functions; unpickling it
normally can run any code the file names. Here only a short list of names is
allowed (dicts, tensor rebuild functions, storage and dtype names), each
mapped to a harmless stand-in defined in this module; everything else is
refused. Unpickling only records where each tensor lives (`TensorRecord`).
"""

import io
import pickle
import pickletools
from typing import NamedTuple

import ml_dtypes
import numpy as np

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

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch sizes, strides and offsets are int64.
_INT64_LIMIT = 1 << 63


def numpy_dtype_of(torch_name):
    """numpy dtype of a torch dtype name ('float32', 'bfloat16'), or None."""
    return _DTYPES.get(torch_name)


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
    byte_end: int  # where the storage (or legacy view) ends, as the pickle declares it


class StorageInfo(NamedTuple):
    """What the pickle declares about one storage key."""

    itemsize: int
    numel: int  # elements (bytes for an untyped storage)

    @property
    def nbytes(self):
        return self.itemsize * self.numel


class TensorRecord(NamedTuple):
    """Where one tensor's elements are: enough to rebuild it later."""

    key: str
    dtype: np.dtype
    byte_offset: int
    shape: tuple
    strides: tuple  # in elements, as torch counts them
    storage_end: int  # byte in the storage past which the declared storage (view) ends


def _is_count(value):
    return type(value) is int and 0 <= value < _INT64_LIMIT


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
    return TensorRecord(storage.key, dtype, byte_offset, shape, strides, storage.byte_end)


def _rebuild_tensor(storage, offset, shape, strides, *_flags_and_metadata):
    """`torch._utils._rebuild_tensor` and `_v2`: the dtype is the storage's."""
    if isinstance(storage, _Storage) and storage.dtype is None:
        raise ValueError("tensor rebuilt from an untyped storage without a dtype")
    return _new_tensor(storage, offset, shape, strides, getattr(storage, "dtype", None))


def _rebuild_tensor_v3(storage, offset, shape, strides, _grad, _hooks, dtype, *_meta):
    """`torch._utils._rebuild_tensor_v3`: the dtype comes as an argument."""
    if not isinstance(dtype, _TorchDType):
        raise ValueError(f"bad tensor dtype: {dtype!r:.80}")
    return _new_tensor(storage, offset, shape, strides, dtype.dtype)


def _rebuild_parameter(data, _requires_grad, _hooks, _state=None):
    """`torch._utils._rebuild_parameter(_with_state)`: a Parameter is its data."""
    if not isinstance(data, TensorRecord):
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
    """Unpickles with stand-ins only; records what the pickle declares about
    every storage key (a StorageInfo)."""

    def __init__(self, file, path, legacy):
        super().__init__(file)
        self._path = path
        self._legacy = legacy
        self.storages = {}

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
        storage_type, key, numel = pid[1], pid[2], pid[4]
        view = pid[5] if self._legacy else None
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise ValueError(f"bad storage reference {pid!r:.80}")
        if not _is_count(numel):
            raise ValueError(f"bad element count {numel!r:.80} of storage {key!r:.80}")
        itemsize = 1 if storage_type.dtype is None else storage_type.dtype.itemsize
        info = StorageInfo(itemsize, numel)
        if self.storages.setdefault(key, info) != info:
            raise ValueError(
                f"storage {key!r:.80} is declared twice, as {self.storages[key]} and {info}"
            )
        byte_offset, byte_end = 0, info.nbytes
        if view is not None:
            if not (
                isinstance(view, tuple)
                and len(view) == 3
                and _is_count(view[1])
                and _is_count(view[2])
            ):
                raise ValueError(f"bad storage view {view!r:.80}")
            byte_offset = view[1] * itemsize
            byte_end = (view[1] + view[2]) * itemsize
        return _Storage(key, storage_type.dtype, byte_offset, byte_end)


class _Bounded:
    """A file seen up to byte `end`: a read never asks for more than is left,
    so no size written in the pickle makes the reader allocate beyond the file."""

    def __init__(self, file, end):
        self._file = file
        self._end = end

    def _left(self):
        return max(0, self._end - self._file.tell())

    def read(self, size=-1):
        size = self._left() if size is None or size < 0 else min(size, self._left())
        return self._file.read(size)

    def readline(self, size=-1):
        size = self._left() if size is None or size < 0 else min(size, self._left())
        return self._file.readline(size)

    def tell(self):
        return self._file.tell()


# Opcodes that store into the memo slot they name.
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _prescan(file, end):
    """Walk the pickle's opcodes without building anything.

    Python's unpickler allocates some objects from sizes written in the
    stream before reading their bytes (counted bytes, frames) and grows its
    memo to any index a PUT names. Here every counted payload must lie in the
    file, a frame must fit in what is left, and a memo index may not exceed
    the number of opcodes seen (a pickler numbers its memo entries in order).
    Raises ValueError on any violation or malformed opcode.
    """
    for count, (opcode, arg, _pos) in enumerate(pickletools.genops(file)):
        if opcode.name in _MEMO_PUTS and arg > count:
            raise ValueError(f"{opcode.name} to memo slot {arg} after only {count} opcodes")
        if opcode.name == "FRAME" and arg > end - file.tell():
            raise ValueError(
                f"a frame of {arg} bytes, but the file has only {end - file.tell()} left"
            )


def _stream_end(file):
    position = file.tell()
    end = file.seek(0, io.SEEK_END)
    file.seek(position)
    return end


def unpickle(file, path, legacy=False):
    """Returns (object, {storage key: StorageInfo}) for the pickle at the
    file's position, leaving the file just after it; any failure is a
    CheckpointError."""
    try:
        start, end = file.tell(), _stream_end(file)
        bounded = _Bounded(file, end)
        _prescan(bounded, end)
        file.seek(start)
        unpickler = _RestrictedUnpickler(bounded, path, legacy)
        return unpickler.load(), unpickler.storages
    except CheckpointError:
        raise
    except Exception as exc:  # a malformed pickle can fail in many ways
        raise CheckpointError(
            f"cannot read {path}: malformed pickle data ({type(exc).__name__}: {exc})"
        ) from exc
