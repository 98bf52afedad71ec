"""Reading and writing the LevelDB-style sorted table used by `.index` files.

Layout of a table file::

    data block 0 | trailer | data block 1 | trailer | ... |
    metaindex block | trailer | index block | trailer | footer (48 bytes)

A block is a run of prefix-compressed entries (varint shared key bytes,
varint unshared key bytes, varint value length, unshared key bytes, value),
then an array of uint32 "restart" offsets (entries stored with a full key)
and the uint32 count of restarts. Each block is followed by a 5-byte trailer:
a compression byte (0 = none, 1 = snappy) and the masked CRC32C of the block
plus that byte. The index block maps a key >= the last key of each data block
to the block's handle (varint offset, varint size). The footer holds the
metaindex and index handles, zero-padded to 40 bytes, then a magic number.

Only uncompressed tables are supported, which is what TensorFlow writes.
"""

import struct

from nlp4keras.checkpoints import crc32c
from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.checkpoints.protobuf_wire import WireFormatError, decode_varint, encode_varint

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
NO_COMPRESSION = 0
SNAPPY_COMPRESSION = 1

# TensorFlow's defaults for checkpoint indexes (checked against TF 2.21 output).
DEFAULT_BLOCK_SIZE = 262144
DEFAULT_RESTART_INTERVAL = 16


# -- Reading -----------------------------------------------------------------------


def read_table(data, path):
    """All `(key, value)` byte pairs of the table in `data`, in file order.

    `path` only names the file in error messages. Every block CRC is checked.
    """
    data = bytes(data)
    index_handle = _read_footer(data, path)
    entries = []
    for _last_key, handle in _block_entries(_read_block(data, index_handle, path), path):
        try:
            block_handle, end = _decode_handle(handle, 0)
        except WireFormatError as error:
            raise CheckpointError(f"corrupt index block in {path}: {error}") from None
        if end != len(handle):
            raise CheckpointError(f"corrupt index block in {path}: bad block handle")
        entries.extend(_block_entries(_read_block(data, block_handle, path), path))
    previous = None
    for key, _value in entries:
        if previous is not None and key <= previous:
            raise CheckpointError(f"corrupt table {path}: keys are not sorted")
        previous = key
    return entries


def _read_footer(data, path):
    """The index block handle from the 48-byte footer."""
    if len(data) < FOOTER_SIZE:
        raise CheckpointError(
            f"{path} is truncated or not a TensorFlow checkpoint index ({len(data)} bytes)"
        )
    footer = data[-FOOTER_SIZE:]
    (magic,) = struct.unpack("<Q", footer[-8:])
    if magic != MAGIC:
        raise CheckpointError(
            f"{path} is not a TensorFlow checkpoint index (bad magic number {magic:#018x});"
            " the file may be truncated"
        )
    try:
        _metaindex, pos = _decode_handle(footer, 0)
        index, _pos = _decode_handle(footer, pos)
    except WireFormatError as error:
        raise CheckpointError(f"corrupt footer in {path}: {error}") from None
    return index


def _decode_handle(data, pos):
    offset, pos = decode_varint(data, pos)
    size, pos = decode_varint(data, pos)
    return (offset, size), pos


def _read_block(data, handle, path):
    """Contents of the block at `handle` after checking its trailer."""
    offset, size = handle
    end = offset + size
    if end + TRAILER_SIZE > len(data) - FOOTER_SIZE:
        raise CheckpointError(
            f"corrupt or truncated {path}: block at offset {offset} (size {size})"
            " runs past the end of the table"
        )
    block = data[offset:end]
    compression = data[end]
    (stored,) = struct.unpack("<I", data[end + 1 : end + TRAILER_SIZE])
    if crc32c.crc32c(data[offset : end + 1]) != crc32c.unmask(stored):
        raise CheckpointError(f"CRC32C mismatch in {path}: block at offset {offset} is corrupt")
    if compression == SNAPPY_COMPRESSION:
        raise CheckpointError(
            f"{path} uses snappy-compressed blocks, which are not supported"
            " (TensorFlow writes checkpoint indexes uncompressed)"
        )
    if compression != NO_COMPRESSION:
        raise CheckpointError(f"{path}: unknown block compression type {compression}")
    return block


def _block_entries(block, path):
    """`(key, value)` pairs of one block."""
    if len(block) < 4:
        raise CheckpointError(f"corrupt block in {path}: too short")
    (restart_count,) = struct.unpack("<I", block[-4:])
    entries_end = len(block) - 4 - 4 * restart_count
    if restart_count == 0 or entries_end < 0:
        raise CheckpointError(f"corrupt block in {path}: bad restart array")
    entries = []
    key = b""
    pos = 0
    try:
        while pos < entries_end:
            shared, pos = decode_varint(block, pos)
            unshared, pos = decode_varint(block, pos)
            value_size, pos = decode_varint(block, pos)
            if shared > len(key) or pos + unshared + value_size > entries_end:
                raise WireFormatError("entry runs past the block")
            key = key[:shared] + block[pos : pos + unshared]
            pos += unshared
            entries.append((key, block[pos : pos + value_size]))
            pos += value_size
    except WireFormatError as error:
        raise CheckpointError(f"corrupt block in {path}: {error}") from None
    return entries


# -- Writing -----------------------------------------------------------------------


def build_table(items, block_size=DEFAULT_BLOCK_SIZE, restart_interval=DEFAULT_RESTART_INTERVAL):
    """Table bytes holding `items`, `(key, value)` byte pairs in strictly increasing key order."""
    out = bytearray()
    index = _BlockBuilder(restart_interval=1)
    block = _BlockBuilder(restart_interval)
    pending_handle = None  # handle of the last flushed block, indexed once the next key is known
    last_key = None
    for key, value in items:
        key, value = bytes(key), bytes(value)
        if last_key is not None and key <= last_key:
            raise ValueError(f"table keys must be strictly increasing: {key!r} after {last_key!r}")
        if pending_handle is not None:
            index.add(_shortest_separator(last_key, key), _encode_handle(pending_handle))
            pending_handle = None
        block.add(key, value)
        last_key = key
        if block.size_estimate() >= block_size:
            pending_handle = _write_block(out, block.finish())
            block = _BlockBuilder(restart_interval)
    if not block.empty():
        pending_handle = _write_block(out, block.finish())
    if pending_handle is not None:
        index.add(_short_successor(last_key), _encode_handle(pending_handle))
    metaindex_handle = _write_block(out, _BlockBuilder(restart_interval).finish())
    index_handle = _write_block(out, index.finish())
    handles = _encode_handle(metaindex_handle) + _encode_handle(index_handle)
    out += handles.ljust(FOOTER_SIZE - 8, b"\0") + struct.pack("<Q", MAGIC)
    return bytes(out)


class _BlockBuilder:
    """Accumulates prefix-compressed entries of one block."""

    def __init__(self, restart_interval):
        self.restart_interval = restart_interval
        self.buffer = bytearray()
        self.restarts = [0]
        self.since_restart = 0
        self.last_key = b""

    def empty(self):
        return not self.buffer

    def add(self, key, value):
        shared = 0
        if self.since_restart < self.restart_interval:
            limit = min(len(key), len(self.last_key))
            while shared < limit and key[shared] == self.last_key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buffer))
            self.since_restart = 0
        self.buffer += encode_varint(shared) + encode_varint(len(key) - shared)
        self.buffer += encode_varint(len(value)) + key[shared:] + value
        self.since_restart += 1
        self.last_key = key

    def size_estimate(self):
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def finish(self):
        restarts = struct.pack(f"<{len(self.restarts)}I", *self.restarts)
        return bytes(self.buffer) + restarts + struct.pack("<I", len(self.restarts))


def _write_block(out, block):
    """Append `block` and its trailer to `out`; return the block's handle."""
    handle = (len(out), len(block))
    kind = bytes([NO_COMPRESSION])
    out += block + kind + struct.pack("<I", crc32c.masked_crc32c(block + kind))
    return handle


def _encode_handle(handle):
    offset, size = handle
    return encode_varint(offset) + encode_varint(size)


def _shortest_separator(start, limit):
    """A short key k with start <= k < limit (the index key between two blocks)."""
    common = 0
    while common < min(len(start), len(limit)) and start[common] == limit[common]:
        common += 1
    if common < min(len(start), len(limit)):
        byte = start[common]
        if byte < 0xFF and byte + 1 < limit[common]:
            return start[:common] + bytes([byte + 1])
    return start


def _short_successor(key):
    """A short key >= `key` (the index key of the last block)."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key
