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
import sys
import zipfile
import zlib

import numpy as np

from nlp4keras.checkpoints.base import CheckpointReader
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.torch_pickle import LEGACY_MAGIC, LEGACY_PROTOCOL, TensorRecord, unpickle

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
            raise CheckpointError(f"{path} is a truncated or corrupt zip archive: {exc}") from exc
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
            self.root, _ = unpickle(data_pkl, path)

    def _open(self, info):
        try:
            return self._zip.open(info)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CheckpointError(f"cannot read {self._path}: {exc}") from exc

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
            raise CheckpointError(
                f"cannot read tensor {tensor!r} from {self._path}: {exc}"
            ) from exc
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
        if unpickle(file, path)[0] != LEGACY_MAGIC:
            raise CheckpointError(f"{path} is a pickle but not a PyTorch checkpoint")
        version = unpickle(file, path)[0]
        if version != LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: unsupported legacy protocol version {version!r:.40}")
        sys_info = unpickle(file, path)[0]
        little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
        self.big_endian = not little
        self.root, itemsizes = unpickle(file, path, legacy=True)
        keys = unpickle(file, path)[0]
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
    raise CheckpointError(
        f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle)"
    )


# ---------------------------------------------------------------------------


def _tensors_of(mapping):
    return {k: v for k, v in mapping.items() if isinstance(k, str) and isinstance(v, TensorRecord)}


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
            f"{path} holds tensors under several keys {nested}; pass nested_key= to choose one"
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
