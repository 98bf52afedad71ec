"""Reading safetensors files (single or sharded) tensor by tensor.

A safetensors file is an 8-byte little-endian header length N, N bytes of
UTF-8 JSON, then the data. The JSON maps each tensor name to its dtype, shape
and `data_offsets` [begin, end) within the data; an optional `__metadata__`
maps strings to strings. The spec asks for tensors that tile the data exactly,
with no gaps or overlaps. Everything the header declares is checked against
the file's real size before a tensor is read, so a hostile header cannot make
the reader allocate more than the file holds.
"""

import json
import math
import os
import posixpath

import ml_dtypes
import numpy as np

from nlp4keras.checkpoints.base import CheckpointReader
from nlp4keras.checkpoints.errors import CheckpointError

# The reference implementation refuses headers over 100 MB.
MAX_HEADER_BYTES = 100_000_000

_DTYPES = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "C64": np.dtype("<c8"),
}


class _Entry:
    """One tensor of the header, checked: dtype, shape, byte range in the data."""

    def __init__(self, dtype, shape, begin, end):
        self.dtype, self.shape, self.begin, self.end = dtype, shape, begin, end


class SafetensorsReader(CheckpointReader):
    """One `.safetensors` file: the header is read and checked at once, each
    tensor is read from the file on demand."""

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            raise CheckpointError(f"safetensors file not found: {self.path}") from None
        except OSError as error:
            raise CheckpointError(f"cannot open safetensors file {self.path}: {error}") from None
        try:
            self._data_start, self._entries = self._read_header()
        except BaseException:
            self._file.close()
            raise

    # -- header ----------------------------------------------------------------

    def _fail(self, problem):
        return CheckpointError(f"corrupt safetensors file {self.path}: {problem}")

    def _read_header(self):
        """(offset of the data, {name: _Entry}), everything checked."""
        file_size = os.fstat(self._file.fileno()).st_size
        prefix = self._file.read(8)
        if len(prefix) < 8:
            raise self._fail(f"{file_size} bytes is too short for the 8-byte header length")
        header_size = int.from_bytes(prefix, "little")
        if header_size > file_size - 8:
            raise self._fail(
                f"the header length {header_size} runs past the end of the {file_size}-byte "
                "file (truncated, or not a safetensors file)"
            )
        if header_size > MAX_HEADER_BYTES:
            raise self._fail(f"the header length {header_size} is over {MAX_HEADER_BYTES}")
        header = self._parse_json(self._file.read(header_size))
        data_size = file_size - 8 - header_size
        entries = {}
        for name, info in header.items():
            if name == "__metadata__":
                self._check_metadata(info)
            else:
                entries[name] = self._parse_entry(name, info)
        self._check_tiling(entries, data_size)
        return 8 + header_size, entries

    def _parse_json(self, raw):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise self._fail(f"the header is not UTF-8 text ({error})") from None
        try:
            header = json.loads(text, object_pairs_hook=self._no_duplicates)
        except CheckpointError:
            raise
        except (ValueError, RecursionError) as error:
            raise self._fail(f"the header is not valid JSON ({error})") from None
        if not isinstance(header, dict):
            raise self._fail(f"the header is a JSON {type(header).__name__}, not an object")
        return header

    def _no_duplicates(self, pairs):
        result = dict(pairs)
        if len(result) != len(pairs):
            seen = set()
            repeated = next(name for name, _ in pairs if name in seen or seen.add(name))
            raise self._fail(f"the header lists {repeated!r} more than once")
        return result

    def _check_metadata(self, metadata):
        if not isinstance(metadata, dict) or not all(
            isinstance(value, str) for value in metadata.values()
        ):
            raise self._fail("__metadata__ must map strings to strings")

    def _parse_entry(self, name, info):
        where = f"tensor {name!r}"
        if not isinstance(info, dict):
            raise self._fail(f"{where} is described by {info!r:.60}, not an object")
        missing = [key for key in ("dtype", "shape", "data_offsets") if key not in info]
        if missing:
            raise self._fail(f"{where} has no {missing[0]!r}")
        dtype = _DTYPES.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        if dtype is None:
            known = ", ".join(_DTYPES)
            raise self._fail(f"{where} has unknown dtype {info['dtype']!r:.40} (known: {known})")
        shape = info["shape"]
        if not isinstance(shape, list) or not all(_is_count(size) for size in shape):
            raise self._fail(f"{where} has shape {shape!r:.80}; expected a list of sizes >= 0")
        offsets = info["data_offsets"]
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
            raise self._fail(
                f"{where} has data_offsets {offsets!r:.80}; expected [begin, end], "
                "two byte positions >= 0"
            )
        begin, end = offsets
        if begin > end:
            raise self._fail(f"{where} has data_offsets [{begin}, {end}]: begin is after end")
        needed = math.prod(shape) * dtype.itemsize
        if end - begin != needed:
            raise self._fail(
                f"{where} of shape {tuple(shape)} and dtype {info['dtype']} takes {needed} "
                f"bytes, but its data_offsets [{begin}, {end}] hold {end - begin}"
            )
        return _Entry(dtype, tuple(shape), begin, end)

    def _check_tiling(self, entries, data_size):
        """Tensors must lie in the data and cover it with no overlap or gap."""
        position, previous = 0, None
        for name, entry in sorted(entries.items(), key=lambda item: (item[1].begin, item[1].end)):
            if entry.end > data_size:
                raise self._fail(
                    f"tensor {name!r} occupies bytes {entry.begin}..{entry.end} of the data, "
                    f"but the file holds only {data_size} bytes of data (truncated?)"
                )
            if entry.begin < position:
                raise self._fail(
                    f"tensors {previous!r} and {name!r} overlap (bytes {entry.begin}..{position})"
                )
            if entry.begin > position:
                raise self._fail(
                    f"bytes {position}..{entry.begin} of the data belong to no tensor "
                    f"(a gap before {name!r})"
                )
            position, previous = entry.end, name
        if position != data_size:
            raise self._fail(
                f"the data holds {data_size} bytes but its tensors cover only {position}"
            )

    # -- reading ---------------------------------------------------------------

    def keys(self):
        return list(self._entries)

    def shape(self, name):
        return self._entry(name).shape

    def dtype(self, name):
        return self._entry(name).dtype.newbyteorder("=")

    def read(self, name):
        entry = self._entry(name)
        if self._file is None:
            raise CheckpointError(f"safetensors file {self.path} is closed")
        raw = np.empty(entry.end - entry.begin, dtype=np.uint8)
        try:
            self._file.seek(self._data_start + entry.begin)
            got = self._file.readinto(raw)
        except OSError as error:
            raise CheckpointError(
                f"cannot read tensor {name!r} from {self.path}: {error}"
            ) from None
        if got != raw.size:
            raise CheckpointError(
                f"{self.path} is truncated: tensor {name!r} is cut short (the file changed?)"
            )
        native = entry.dtype.newbyteorder("=")
        return raw.view(entry.dtype).reshape(entry.shape).astype(native, copy=False)

    def _entry(self, name):
        if name not in self._entries:
            raise self.missing(name)
        return self._entries[name]

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _is_count(value):
    return type(value) is int and value >= 0


class ShardedReader(CheckpointReader):
    """Shards listed by an HF index file (`*.index.json` with a `weight_map`),
    each opened on first use with `open_shard(path)`. Every shard the index
    names must exist, and must hold the tensors the index puts in it."""

    def __init__(self, index_path, open_shard):
        self.path = os.fspath(index_path)
        weight_map = self._read_weight_map()
        folder = os.path.dirname(self.path)
        self._shard_of = {}
        for name, shard in weight_map.items():
            self._check_shard_name(name, shard)
            self._shard_of[name] = os.path.join(folder, shard)
        for shard in sorted(set(self._shard_of.values())):
            if not os.path.isfile(shard):
                user = next(name for name, where in self._shard_of.items() if where == shard)
                raise CheckpointError(
                    f"shard {shard} listed in {self.path} (for {user!r} and maybe others) "
                    "does not exist"
                )
        self._open_shard = open_shard
        self._shards = {}

    def _read_weight_map(self):
        try:
            with open(self.path, "rb") as f:
                index = json.loads(f.read().decode("utf-8"))
        except OSError as error:
            raise CheckpointError(f"cannot read shard index {self.path}: {error}") from None
        except ValueError as error:  # bad UTF-8 or bad JSON
            raise CheckpointError(
                f"cannot read shard index {self.path}: not JSON text ({error})"
            ) from None
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict):
            raise CheckpointError(
                f"cannot read shard index {self.path}: expected a JSON object with a "
                "'weight_map' object mapping tensor names to shard files"
            )
        return weight_map

    def _check_shard_name(self, name, shard):
        if not isinstance(shard, str) or not shard:
            raise CheckpointError(
                f"shard index {self.path} gives tensor {name!r} the shard {shard!r:.80}; "
                "expected a file name"
            )
        parts = shard.replace("\\", "/").split("/")
        if posixpath.isabs(shard) or os.path.isabs(shard) or ".." in parts:
            raise CheckpointError(
                f"shard index {self.path} puts tensor {name!r} in {shard!r}, outside the "
                "index's folder; shards must be files next to the index"
            )

    def _reader(self, name):
        if name not in self._shard_of:
            raise self.missing(name)
        shard = self._shard_of[name]
        if shard not in self._shards:
            reader = self._open_shard(shard)
            self._check_shard_holds(shard, reader)
            self._shards[shard] = reader
        return self._shards[shard]

    def _check_shard_holds(self, shard, reader):
        held = set(reader.keys())
        absent = [n for n, where in self._shard_of.items() if where == shard and n not in held]
        if absent:
            reader.close()
            more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
            raise CheckpointError(
                f"shard index {self.path} puts tensor {absent[0]!r}{more} in {shard}, "
                "which does not hold it"
            )

    def keys(self):
        return list(self._shard_of)

    def shape(self, name):
        return self._reader(name).shape(name)

    def dtype(self, name):
        return self._reader(name).dtype(name)

    def read(self, name):
        return self._reader(name).read(name)

    def close(self):
        for reader in self._shards.values():
            reader.close()
        self._shards = {}
