"""CRC32C (Castagnoli), fast enough for multi-hundred-megabyte checkpoints.

TensorFlow protects checkpoint blocks and tensors with CRC32C. The standard
library has no CRC32C, so this module computes it with numpy:

* the buffer is cut into many equal-length *lanes*; every lane's CRC register
  is advanced one 4-byte word at a time, all lanes at once (one vectorised
  table lookup per step, using two 65536-entry tables for the 4-byte step);
* the lane registers are then merged pairwise. Appending `n` zero bytes to a
  message is a linear map on the 32-bit register (a 32x32 matrix over GF(2)),
  and it is the same map for every pair at one level of the merge tree, so a
  whole level is merged with one vectorised lookup too.

Short inputs (and the last few hundred bytes) use a plain byte-at-a-time loop.
"""

import functools
import sys

import numpy as np

#: Reversed (LSB-first) Castagnoli polynomial.
POLYNOMIAL = 0x82F63B78
#: Added after rotating a CRC to "mask" it (TensorFlow/LevelDB convention).
MASK_DELTA = 0xA282EAD8

_ALL_ONES = 0xFFFFFFFF
# Below this many bytes the plain Python loop is faster than the lanes.
_SMALL_INPUT = 1024
# Lane length (bytes, a power of two >= 16) and lane count per chunk.
_MIN_LANE_BYTES = 16
_MAX_LANE_BYTES = 1024
_TARGET_LANES = 4096
_MAX_LANES = 16384


def _byte_table():
    """CRC register after feeding one byte `b` into a zero register."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (POLYNOMIAL if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _byte_table()


def _update_bytes(register, data):
    """Advance the raw register over `data`, one byte at a time."""
    table = _TABLE
    for byte in data:
        register = (register >> 8) ^ table[(register ^ byte) & 0xFF]
    return register


# -- Linear maps on the 32-bit register ----------------------------------------
# A map is stored as its 32 columns: columns[i] is the image of the bit 1 << i.


def _apply_columns(columns, values):
    """Apply the map given by `columns` to each uint32 in `values`."""
    values = np.asarray(values, dtype=np.uint32)
    bits = (values[..., None] >> np.arange(32, dtype=np.uint32)) & 1
    images = np.where(bits.astype(bool), columns, np.uint32(0))
    return np.bitwise_xor.reduce(images, axis=-1).astype(np.uint32)


@functools.lru_cache(maxsize=None)
def _zeros_columns(log2_count):
    """Columns of the map "append 2**log2_count zero bytes"."""
    if log2_count == 0:
        table = np.array(_TABLE, dtype=np.uint32)
        ones = np.uint32(1) << np.arange(32, dtype=np.uint32)
        columns = (ones >> 8) ^ table[ones & 0xFF]
    else:
        half = _zeros_columns(log2_count - 1)
        columns = _apply_columns(half, half)
    columns.setflags(write=False)
    return columns


@functools.lru_cache(maxsize=None)
def _zeros_byte_tables(log2_count):
    """Four 256-entry tables applying "append 2**log2_count zero bytes"."""
    columns = _zeros_columns(log2_count)
    values = np.arange(256, dtype=np.uint32)
    tables = np.stack([_apply_columns(columns, values << (8 * k)) for k in range(4)])
    tables.setflags(write=False)
    return tables


def _shift_registers(registers, log2_count):
    """Advance each register over 2**log2_count zero bytes."""
    tables = _zeros_byte_tables(log2_count)
    as_bytes = registers.view(np.uint8).reshape(-1, 4)
    return (
        tables[0][as_bytes[:, 0]]
        ^ tables[1][as_bytes[:, 1]]
        ^ tables[2][as_bytes[:, 2]]
        ^ tables[3][as_bytes[:, 3]]
    )


@functools.lru_cache(maxsize=None)
def _word_tables():
    """Two 65536-entry tables that advance a register over one 4-byte word."""
    byte_tables = _zeros_byte_tables(2)
    halves = np.arange(65536, dtype=np.uint32)
    low = byte_tables[0][halves & 0xFF] ^ byte_tables[1][halves >> 8]
    high = byte_tables[2][halves & 0xFF] ^ byte_tables[3][halves >> 8]
    low.setflags(write=False)
    high.setflags(write=False)
    return low, high


# -- Lanes -----------------------------------------------------------------------


def _update_lanes(register, words, lane_log2):
    """Raw register after `words` (shape (lanes, words_per_lane), uint32 LE).

    Lane 0 starts from `register`, the others from zero; lanes are then merged.
    """
    low, high = _word_tables()
    by_step = np.ascontiguousarray(words.T)
    lanes = np.zeros(words.shape[0], dtype=np.uint32)
    lanes[0] = register
    halves = lanes.view(np.uint16)
    scratch = np.empty_like(lanes)
    for step_words in by_step:
        np.bitwise_xor(lanes, step_words, out=lanes)
        np.take(low, halves[0::2], out=scratch)
        np.take(high, halves[1::2], out=lanes)
        np.bitwise_xor(lanes, scratch, out=lanes)
    # Pad at the front with zero lanes (they change nothing) to a power of two.
    count = 1 << (len(lanes) - 1).bit_length()
    lanes = np.concatenate([np.zeros(count - len(lanes), np.uint32), lanes])
    while len(lanes) > 1:
        lanes = _shift_registers(lanes[0::2].copy(), lane_log2) ^ lanes[1::2]
        lane_log2 += 1
    return int(lanes[0])


def _update(register, data):
    """Advance the raw (unfinalised) register over the bytes of `data`."""
    view = memoryview(data).cast("B")
    if sys.byteorder != "little":  # the uint16 views below assume it
        return _update_bytes(register, view)
    start = 0
    while len(view) - start >= _SMALL_INPUT:
        remaining = len(view) - start
        lane_bytes = _MIN_LANE_BYTES
        while lane_bytes < _MAX_LANE_BYTES and remaining // (2 * lane_bytes) >= _TARGET_LANES:
            lane_bytes *= 2
        lane_count = min(remaining // lane_bytes, _MAX_LANES)
        stop = start + lane_count * lane_bytes
        words = np.frombuffer(view[start:stop], dtype="<u4").reshape(lane_count, -1)
        register = _update_lanes(register, words, lane_bytes.bit_length() - 1)
        start = stop
    return _update_bytes(register, view[start:])


def crc32c(data, crc=0):
    """CRC32C of `data` (bytes-like); pass a previous `crc` to continue it."""
    return _update(crc ^ _ALL_ONES, data) ^ _ALL_ONES


def mask(crc):
    """Rotate right by 15 bits and add a constant, as TensorFlow stores CRCs."""
    rotated = ((crc >> 15) | (crc << 17)) & _ALL_ONES
    return (rotated + MASK_DELTA) & _ALL_ONES


def unmask(masked):
    """Inverse of `mask`."""
    rotated = (masked - MASK_DELTA) & _ALL_ONES
    return ((rotated >> 17) | (rotated << 15)) & _ALL_ONES


def masked_crc32c(data):
    """`mask(crc32c(data))`, the form stored in TensorFlow files."""
    return mask(crc32c(data))
