"""TensorFlow "tensor bundle" checkpoints (`prefix.index` + `prefix.data-*`), without TensorFlow.

This is the V2 checkpoint format of `tf.train.Saver` / `tf.train.Checkpoint`,
used by Google's BERT releases (`bert_model.ckpt.index`, `bert_model.ckpt.data-*`).

* `prefix.index` is a sorted table (see `sstable`). Key "" holds a
  BundleHeaderProto (shard count, endianness, version); every other key is a
  tensor name whose value is a BundleEntryProto (dtype, shape, shard, offset,
  size, masked CRC32C of the tensor bytes).
* `prefix.data-SSSSS-of-NNNNN` shards hold raw little-endian, row-major tensor
  bytes. A string tensor holds the varint lengths of its elements, a masked
  CRC32C of those lengths (each as a little-endian uint32), then the bytes.
"""

import math
import os
import re
from dataclasses import dataclass

import numpy as np

from nlp4keras.checkpoints import crc32c
from nlp4keras.checkpoints.base import CheckpointReader, check_addressable
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.protobuf_wire import (
    LENGTH_DELIMITED,
    WireFormatError,
    bytes_field,
    decode_varint,
    fixed32_field,
    iter_fields,
    to_signed64,
    varint_field,
)
from nlp4keras.checkpoints.sstable import build_table, read_table

DT_STRING = 7
_BFLOAT16 = 14

# TensorFlow DataType enum -> numpy dtype (little-endian). bfloat16 is added below.
_NUMPY_DTYPES = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    8: np.dtype("<c8"),  # DT_COMPLEX64
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    18: np.dtype("<c16"),  # DT_COMPLEX128
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}
try:
    import ml_dtypes

    _NUMPY_DTYPES[_BFLOAT16] = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes comes with keras
    ml_dtypes = None

_DTYPE_NAMES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8",
    7: "string", 8: "complex64", 9: "int64", 10: "bool", 11: "qint8", 12: "quint8",
    13: "qint32", 14: "bfloat16", 15: "qint16", 16: "quint16", 17: "uint16",
    18: "complex128", 19: "float16", 20: "resource", 21: "variant", 22: "uint32",
    23: "uint64",
}  # fmt: skip

# numpy dtype -> DataType enum, for writing.
_TF_DTYPES = {dtype.newbyteorder("="): enum for enum, dtype in _NUMPY_DTYPES.items()}

# Slices of partitioned variables are stored under keys starting with a zero byte.
_SLICE_KEY_START = b"\0"
_STATE_FILE = "checkpoint"
# A state file names a few checkpoint paths; anything far larger is something else.
_MAX_STATE_FILE_BYTES = 1 << 20


def data_file_name(prefix, shard, num_shards):
    """Name of one data shard of the checkpoint at `prefix`."""
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


@dataclass(frozen=True)
class BundleEntry:
    """Where and how one tensor is stored (a parsed BundleEntryProto)."""

    dtype: int
    shape: tuple
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc32c: int = 0  # masked, as stored
    sliced: bool = False


class TFCheckpointReader(CheckpointReader):
    """Lazy reader of a TensorFlow V2 checkpoint; needs only numpy.

    `path` is the checkpoint prefix (`.../bert_model.ckpt`), its `.index` file,
    or a folder holding a `checkpoint` state file or exactly one `*.index`.
    The index is read at once; each `read(name)` reads one tensor from its data
    shard and checks its CRC32C.
    """

    def __init__(self, path):
        self.prefix = resolve_prefix(path)
        self.path = self.prefix
        self.index_path = self.prefix + ".index"
        self._files = {}
        self.num_shards, self._entries = _read_index(self.index_path)

    def keys(self):
        return list(self._entries)

    def shape(self, name):
        return self._entry(name).shape

    def dtype(self, name):
        """numpy dtype of tensor `name` (object for strings)."""
        entry = self._entry(name)
        return np.dtype(object) if entry.dtype == DT_STRING else self._numpy_dtype(name, entry)

    def read(self, name):
        entry = self._entry(name)
        if entry.sliced:
            raise CheckpointError(
                f"tensor {name!r} in {self.index_path} is a partitioned (sliced) variable,"
                " which is not supported"
            )
        if entry.dtype == DT_STRING:
            return self._read_strings(name, entry)
        dtype = self._numpy_dtype(name, entry)
        check_addressable(entry.shape, dtype.itemsize, f"tensor {name!r} in {self.index_path}")
        count = math.prod(entry.shape)
        if count * dtype.itemsize != entry.size:
            raise CheckpointError(
                f"corrupt index {self.index_path}: tensor {name!r} of shape {entry.shape}"
                f" and dtype {dtype} should take {count * dtype.itemsize} bytes, not {entry.size}"
            )
        buffer = self._read_bytes(name, entry)
        return np.frombuffer(buffer, dtype=dtype).reshape(entry.shape)

    def close(self):
        files, self._files = self._files, {}
        for handle in files.values():
            handle.close()

    # -- helpers ------------------------------------------------------------------

    def _entry(self, name):
        try:
            return self._entries[name]
        except KeyError:
            raise self.missing(name) from None

    def _numpy_dtype(self, name, entry):
        if entry.dtype == _BFLOAT16 and ml_dtypes is None:  # pragma: no cover
            raise CheckpointError(
                f"tensor {name!r} in {self.path} is bfloat16; install ml_dtypes to read it"
            )
        if entry.dtype not in _NUMPY_DTYPES:
            dtype_name = _DTYPE_NAMES.get(entry.dtype, f"DataType {entry.dtype}")
            raise CheckpointError(
                f"tensor {name!r} in {self.index_path} has unsupported dtype {dtype_name}"
            )
        return _NUMPY_DTYPES[entry.dtype]

    def _data_file(self, name, shard_id):
        """Open (once) the data shard holding tensor `name`."""
        if shard_id not in self._files:
            file_name = data_file_name(self.prefix, shard_id, self.num_shards)
            try:
                self._files[shard_id] = open(file_name, "rb")
            except FileNotFoundError:
                raise CheckpointError(
                    f"data file {file_name} of checkpoint {self.prefix} is missing"
                    f" (needed for tensor {name!r})"
                ) from None
        return self._files[shard_id]

    def _read_bytes(self, name, entry):
        """The stored bytes of tensor `name` (a fresh bytearray), CRC-checked."""
        buffer = self._read_raw(name, entry)
        self._check_crc(name, entry, crc32c.crc32c(buffer))
        return buffer

    def _read_raw(self, name, entry):
        """The stored bytes of tensor `name`, unchecked. The index's offset and
        size are checked against the data file before anything is allocated."""
        if entry.size == 0:
            return bytearray()
        handle = self._data_file(name, entry.shard_id)
        file_size = os.fstat(handle.fileno()).st_size
        if entry.offset + entry.size > file_size:
            raise CheckpointError(
                f"data file {handle.name} is truncated (or its index corrupt): tensor {name!r}"
                f" needs bytes {entry.offset}..{entry.offset + entry.size}, but the file has"
                f" {file_size}"
            )
        buffer = bytearray(entry.size)
        handle.seek(entry.offset)
        got = handle.readinto(buffer)
        if got != entry.size:
            raise CheckpointError(
                f"data file {handle.name} is truncated: tensor {name!r} needs bytes"
                f" {entry.offset}..{entry.offset + entry.size}, but only {got} could be read"
            )
        return buffer

    def _check_crc(self, name, entry, actual):
        if actual != crc32c.unmask(entry.crc32c):
            file_name = data_file_name(self.prefix, entry.shard_id, self.num_shards)
            raise CheckpointError(
                f"CRC32C mismatch for tensor {name!r} in {file_name}: the data is corrupt"
            )

    def _read_strings(self, name, entry):
        """A DT_STRING tensor as an object array of bytes.

        Its CRC32C covers each length as a little-endian uint32 (uint64 if
        larger), then the stored masked CRC of those lengths, then the bytes.
        """
        count = math.prod(entry.shape)
        buffer = bytes(self._read_raw(name, entry))
        file_name = data_file_name(self.prefix, entry.shard_id, self.num_shards)
        where = f"string tensor {name!r} in {file_name}"
        lengths = []
        pos = 0
        try:
            for _ in range(count):
                length, pos = decode_varint(buffer, pos)
                lengths.append(length)
        except WireFormatError:
            raise CheckpointError(f"corrupt {where}: bad element lengths") from None
        length_bytes = b"".join(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, "little") for n in lengths)
        lengths_crc = crc32c.crc32c(length_bytes)
        stored = buffer[pos : pos + 4]
        if len(stored) != 4 or crc32c.unmask(int.from_bytes(stored, "little")) != lengths_crc:
            raise CheckpointError(f"corrupt {where}: bad checksum of element lengths")
        pos += 4
        if pos + sum(lengths) != len(buffer):
            raise CheckpointError(f"corrupt {where}: element lengths do not match its size")
        header_crc = crc32c.crc32c(stored, lengths_crc)
        self._check_crc(name, entry, crc32c.crc32c(buffer[pos:], header_crc))
        values = np.empty(count, dtype=object)
        for i, length in enumerate(lengths):
            values[i] = buffer[pos : pos + length]
            pos += length
        return values.reshape(entry.shape)


# -- Locating a checkpoint ------------------------------------------------------------


def resolve_prefix(path):
    """The checkpoint prefix for a prefix, an `.index`/`.data-*` file, or a folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return _prefix_in_folder(path)
    base = re.sub(r"\.(index|data-\d{5}-of-\d{5})$", "", path)
    if not os.path.isfile(base + ".index"):
        raise CheckpointError(f"no TensorFlow checkpoint at {path}: {base}.index does not exist")
    return base


def _prefix_in_folder(folder):
    state_file = os.path.join(folder, _STATE_FILE)
    if os.path.isfile(state_file):
        match = re.search(
            r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', _read_state_file(state_file), re.M
        )
        if not match:
            raise CheckpointError(f"{state_file} has no model_checkpoint_path line")
        named = re.sub(r"\\(.)", r"\1", match.group(1))
        # Relative paths are relative to the folder; an absolute path may be stale
        # after the folder was moved, so fall back to its base name.
        candidates = (os.path.join(folder, named), os.path.join(folder, os.path.basename(named)))
        for candidate in candidates:
            if os.path.isfile(candidate + ".index"):
                return candidate
        raise CheckpointError(
            f"{state_file} names checkpoint {named!r}, but {named}.index does not exist"
        )
    indexes = sorted(name for name in os.listdir(folder) if name.endswith(".index"))
    if len(indexes) != 1:
        found = ", ".join(indexes) if indexes else "none"
        raise CheckpointError(
            f"cannot tell which TensorFlow checkpoint to read in folder {folder}:"
            f" expected exactly one *.index file or a {_STATE_FILE!r} file, found {found}"
        )
    return os.path.join(folder, indexes[0][: -len(".index")])


def _read_state_file(state_file):
    """The text of a `checkpoint` state file (a small text proto)."""
    try:
        with open(state_file, "rb") as handle:
            data = handle.read(_MAX_STATE_FILE_BYTES + 1)
    except OSError as error:
        raise CheckpointError(f"cannot read {state_file}: {error}") from None
    if len(data) > _MAX_STATE_FILE_BYTES:
        raise CheckpointError(
            f"{state_file} is over {_MAX_STATE_FILE_BYTES} bytes, so not a checkpoint state file"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CheckpointError(
            f"{state_file} is not a checkpoint state file: not UTF-8 text ({error})"
        ) from None


# -- Index parsing -----------------------------------------------------------------


def _read_index(index_path):
    """`(num_shards, {name: BundleEntry})` from an `.index` file."""
    try:
        with open(index_path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint index {index_path}: {error}") from None
    table = read_table(data, index_path)
    if not table or table[0][0] != b"":
        raise CheckpointError(f"corrupt checkpoint index {index_path}: no bundle header")
    num_shards = _parse_header(table[0][1], index_path)
    entries = {}
    for key, value in table[1:]:
        if key.startswith(_SLICE_KEY_START):
            continue
        name = key.decode("utf-8", errors="surrogateescape")
        try:
            entry = _parse_entry(value)
        except WireFormatError as error:
            raise CheckpointError(
                f"corrupt checkpoint index {index_path}: entry of tensor {name!r}: {error}"
            ) from None
        if not 0 <= entry.shard_id < num_shards:
            raise CheckpointError(
                f"corrupt checkpoint index {index_path}: tensor {name!r} is in shard"
                f" {entry.shard_id}, but the checkpoint has {num_shards} shard(s)"
            )
        entries[name] = entry
    return num_shards, entries


def _parse_header(value, index_path):
    num_shards, endianness = 0, 0
    try:
        for number, _wire_type, field in iter_fields(value):
            if number == 1:
                num_shards = to_signed64(field)
            elif number == 2:
                endianness = field
    except WireFormatError as error:
        raise CheckpointError(f"corrupt bundle header in {index_path}: {error}") from None
    if endianness != 0:
        raise CheckpointError(f"{index_path} is a big-endian checkpoint, which is not supported")
    if num_shards < 1:
        raise CheckpointError(f"corrupt bundle header in {index_path}: {num_shards} shards")
    return num_shards


def _parse_entry(value):
    """A BundleEntry from serialized BundleEntryProto bytes."""
    fields = {"dtype": 0, "shard_id": 0, "offset": 0, "size": 0, "crc32c": 0}
    names = {1: "dtype", 3: "shard_id", 4: "offset", 5: "size", 6: "crc32c"}
    shape, sliced = (), False
    for number, wire_type, field in iter_fields(value):
        if number == 2:
            _expect_message(wire_type)
            shape = _parse_shape(field)
        elif number == 7:
            sliced = True
        elif number in names:
            if wire_type == LENGTH_DELIMITED:
                raise WireFormatError(f"field {number} has the wrong wire type")
            fields[names[number]] = to_signed64(field) if number != 6 else field
    if fields["offset"] < 0 or fields["size"] < 0:
        raise WireFormatError("negative offset or size")
    return BundleEntry(shape=shape, sliced=sliced, **fields)


def _parse_shape(value):
    dims = []
    for number, wire_type, field in iter_fields(value):
        if number == 2:
            _expect_message(wire_type)
            size = 0
            for dim_number, _dim_wire_type, dim_field in iter_fields(field):
                if dim_number == 1:
                    size = to_signed64(dim_field)
            if size < 0:
                raise WireFormatError("unknown dimension in a saved tensor shape")
            dims.append(size)
        elif number == 3 and field:
            raise WireFormatError("unknown rank in a saved tensor shape")
    return tuple(dims)


def _expect_message(wire_type):
    if wire_type != LENGTH_DELIMITED:
        raise WireFormatError("nested message has the wrong wire type")


# -- Writing -----------------------------------------------------------------------


def write_tf_checkpoint(prefix, tensors):
    """Write `{name: array}` as a one-shard TensorFlow V2 checkpoint at `prefix`.

    Numeric and bool arrays only (bfloat16 via ml_dtypes). Tensors are stored in
    sorted name order; the files are byte-identical to what TensorFlow's SaveV2
    writes when given the same tensors in sorted order.
    """
    prefix = os.fspath(prefix)
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name.startswith("\0"):
            raise ValueError(f"tensor names must be non-empty strings, got {name!r}")
        array = np.asarray(value)
        enum = _TF_DTYPES.get(array.dtype.newbyteorder("="))
        if enum is None:
            raise ValueError(f"tensor {name!r}: dtype {array.dtype} cannot be written")
        if array.dtype.itemsize > 1:  # checkpoints are little-endian
            array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        arrays[name.encode("utf-8", errors="surrogateescape")] = (enum, array)
    items = [(b"", _header_proto())]
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    data_path = data_file_name(prefix, 0, 1)
    offset = 0
    with open(data_path + ".tmp", "wb") as data_file:
        for key in sorted(arrays):
            enum, array = arrays[key]
            raw = np.ascontiguousarray(array).tobytes()
            data_file.write(raw)
            entry = BundleEntry(enum, array.shape, 0, offset, len(raw), crc32c.masked_crc32c(raw))
            items.append((key, _entry_proto(entry)))
            offset += len(raw)
    with open(prefix + ".index.tmp", "wb") as index_file:
        index_file.write(build_table(items))
    os.replace(data_path + ".tmp", data_path)
    os.replace(prefix + ".index.tmp", prefix + ".index")


def _header_proto():
    """BundleHeaderProto: one shard, little-endian, version {producer: 1}."""
    return varint_field(1, 1) + bytes_field(3, varint_field(1, 1))


def _entry_proto(entry):
    """Serialized BundleEntryProto; zero-valued fields are left out, as proto3 does."""
    dims = b"".join(bytes_field(2, varint_field(1, size) if size else b"") for size in entry.shape)
    out = varint_field(1, entry.dtype) + bytes_field(2, dims)
    for number, value in ((3, entry.shard_id), (4, entry.offset), (5, entry.size)):
        if value:
            out += varint_field(number, value)
    if entry.crc32c:
        out += fixed32_field(6, entry.crc32c)
    return out
