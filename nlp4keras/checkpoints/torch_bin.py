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

import io
import math
import os
import sys
import zipfile
import zlib

import numpy as np

from nlp4keras.checkpoints.base import CheckpointReader, check_addressable
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.torch_pickle import LEGACY_MAGIC, LEGACY_PROTOCOL, TensorRecord, unpickle

# ---------------------------------------------------------------------------
# Where the storage bytes come from.

# Deflate cannot shrink data by more than about 1032 to 1, so an entry claiming
# more is lying about its size.
_MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20
# A view may repeat stored elements (a stride of 0, as `expand` makes) only up
# to this many bytes once copied: beyond it, a tiny file could ask for gigabytes.
MAX_REPEATED_BYTES = 16 << 20


class _ZipStorages:
    """Storages of a torch >= 1.6 zip archive."""

    def __init__(self, file, path):
        self._path = path
        try:
            self._zip = zipfile.ZipFile(file)
            names = self._zip.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise CheckpointError(f"{path} is a truncated or corrupt zip archive: {exc}") from exc
        self._verified = set()  # entries whose CRC-32 was checked
        archive_size = os.fstat(file.fileno()).st_size
        for info in self._zip.infolist():
            _check_entry_size(path, info, archive_size)
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
        data_pkl = self._zip.getinfo(pickles[0])
        pickled = self._read_entry(data_pkl, 0, data_pkl.file_size, "the pickle")
        self.root, self.declared = unpickle(io.BytesIO(pickled), path)

    def _entry_text(self, name, default):
        if name not in self._zip.NameToInfo:
            return default
        info = self._zip.getinfo(name)
        data = self._read_entry(info, 0, min(info.file_size, 64), name)
        return data.decode("ascii", "replace").strip()

    def _read_entry(self, info, start, length, what):
        """Bytes start..start+length of a zip entry. The first read of an entry
        goes through all of it (in chunks) so that zipfile checks its CRC-32 at
        the end; later reads (tensors sharing a storage) seek to their bytes."""
        out = bytearray(length)
        try:
            with self._zip.open(info) as entry:
                if info.filename in self._verified:
                    entry.seek(start)
                    got = entry.readinto(out) if length else 0
                else:
                    got = self._copy_while_checking(entry, start, out)
                    self._verified.add(info.filename)
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            zlib.error,
            ValueError,
            NotImplementedError,
        ) as exc:
            raise CheckpointError(
                f"cannot read {what} from {self._path}: entry {info.filename} is corrupt ({exc})"
            ) from exc
        if got < length:
            raise CheckpointError(
                f"{self._path} is truncated: entry {info.filename} holds fewer than its "
                f"{info.file_size} bytes, so {what} is cut short"
            )
        return out

    @staticmethod
    def _copy_while_checking(entry, start, out):
        """Read the whole entry, copying bytes start..start+len(out) into `out`;
        returns how many of them were there."""
        position, end = 0, start + len(out)
        while chunk := entry.read(_CHUNK):
            low, high = max(start, position), min(end, position + len(chunk))
            if low < high:
                out[low - start : high - start] = chunk[low - position : high - position]
            position += len(chunk)
        return max(0, min(position, end) - start)

    def stored_bytes(self, key, tensor):
        """Size in bytes of the entry holding storage `key`."""
        return self._info(key, tensor).file_size

    def _info(self, key, tensor):
        info = self._entries.get(key)
        if info is None:
            raise CheckpointError(
                f"{self._path}: tensor {tensor!r} uses storage data/{key}, "
                "which is missing from the archive"
            )
        return info

    def read(self, key, start, length, tensor):
        info = self._info(key, tensor)
        _check_room(self._path, tensor, key, start + length, info.file_size)
        return self._read_entry(info, start, length, f"tensor {tensor!r}")

    def close(self):
        self._zip.close()


def _check_entry_size(path, info, archive_size):
    """The sizes a zip entry declares must fit the archive (checked before any read)."""
    where = f"{path}: zip entry {info.filename}"
    if info.flag_bits & 0x1:
        raise CheckpointError(f"{where} is encrypted, which torch checkpoints never are")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CheckpointError(
            f"{where} uses compression method {info.compress_type}; "
            "torch checkpoints store entries uncompressed (or deflated)"
        )
    if info.header_offset + info.compress_size > archive_size:
        raise CheckpointError(
            f"{where} declares {info.compress_size} bytes at offset {info.header_offset}, "
            f"past the end of the {archive_size}-byte file (truncated?)"
        )
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise CheckpointError(
            f"{where} is stored uncompressed but declares {info.file_size} bytes "
            f"while holding {info.compress_size}"
        )
    if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 64:
        raise CheckpointError(
            f"{where} declares {info.file_size} bytes from {info.compress_size} compressed "
            "bytes, more than deflate can expand to"
        )


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
        self.root, self.declared = unpickle(file, path, legacy=True)
        keys = unpickle(file, path)[0]
        if not isinstance(keys, list):
            raise CheckpointError(f"cannot read {path}: bad storage key list")
        self._spans = self._walk(keys, "little" if little else "big")

    def _walk(self, keys, byteorder):
        """{key: (file offset, byte length)} for each storage after the pickles."""
        file_size = os.fstat(self._file.fileno()).st_size
        spans = {}
        for key in keys:
            if key not in self.declared:
                raise CheckpointError(
                    f"cannot read {self._path}: storage {key!r:.80} is never used"
                )
            header = self._file.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{self._path} is truncated: storage {key!r} is missing")
            count = int.from_bytes(header, byteorder, signed=True)
            start, length = self._file.tell(), count * self.declared[key].itemsize
            if count < 0 or start + length > file_size:
                raise CheckpointError(
                    f"{self._path} is truncated or corrupt: storage {key!r} declares {count} "
                    f"elements ({length} bytes) at offset {start}, past the end of the "
                    f"{file_size}-byte file"
                )
            spans[key] = (start, length)
            self._file.seek(length, os.SEEK_CUR)
        return spans

    def stored_bytes(self, key, tensor):
        if key not in self._spans:
            raise CheckpointError(f"{self._path}: storage of tensor {tensor!r} is missing")
        return self._spans[key][1]

    def read(self, key, start, length, tensor):
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

    def dtype(self, name):
        return self._record(name).dtype

    def read(self, name):
        record = self._record(name)
        itemsize = record.dtype.itemsize
        check_addressable(record.shape, itemsize, f"tensor {name!r} in {self.path}")
        count = math.prod(record.shape)
        if count == 0:
            return np.zeros(record.shape, dtype=record.dtype)
        span = _elements_spanned(record.shape, record.strides)
        self._check_repeats(name, record, count, span)
        start, length = record.byte_offset, span * itemsize
        self._check_declared_storage(name, record, start + length)
        data = self._storages.read(record.key, start, length, name)
        data = _native_bytes(data, record.dtype, self._storages.big_endian)
        strides = tuple(stride * itemsize for stride in record.strides)
        # A strided view of the bytes (numpy checks it stays inside them), then a copy.
        view = np.ndarray(record.shape, dtype=record.dtype, buffer=data, strides=strides)
        return np.array(view)

    def _check_repeats(self, name, record, count, span):
        """A view with more elements than it spans repeats stored ones: allowed
        only while the copy stays small (see MAX_REPEATED_BYTES)."""
        if count > span and count * record.dtype.itemsize > MAX_REPEATED_BYTES:
            raise CheckpointError(
                f"{self.path}: tensor {name!r} of shape {record.shape} has strides "
                f"{record.strides}, so its {count} elements repeat {span} stored ones; "
                f"copying it would take {count * record.dtype.itemsize} bytes, more than "
                f"the {MAX_REPEATED_BYTES} allowed for such views (a corrupt or hostile file?)"
            )

    def _check_declared_storage(self, name, record, end):
        """The tensor must lie inside its storage as the pickle declares it,
        and that storage inside the bytes the file holds for it."""
        declared = self._storages.declared[record.key]
        where = f"{self.path}: tensor {name!r}"
        if end > record.storage_end:
            raise CheckpointError(
                f"{where} needs bytes {record.byte_offset}..{end} of storage "
                f"{record.key!r}, which is declared with only {record.storage_end} bytes"
            )
        stored = self._storages.stored_bytes(record.key, name)
        _check_room(self.path, name, record.key, end, stored)
        if declared.nbytes > stored:
            raise CheckpointError(
                f"{where}: its storage {record.key!r} declares {declared.numel} elements "
                f"({declared.nbytes} bytes), but the file holds only {stored} bytes for it"
            )

    def close(self):
        if not self._file.closed:
            self._storages.close()
            self._file.close()

    def _record(self, name):
        if name not in self._tensors:
            raise self.missing(name)
        return self._tensors[name]
