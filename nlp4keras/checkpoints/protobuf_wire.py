"""The few pieces of the protobuf wire format that checkpoint indexes need.

Only what TensorFlow's bundle protos use: varints, fixed32/fixed64 and
length-delimited fields. Malformed input raises `WireFormatError`; callers add
the file name and turn it into a `CheckpointError`.
"""

import struct

# Wire types.
VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

_MAX_VARINT_BYTES = 10
_UINT64_MASK = (1 << 64) - 1


class WireFormatError(ValueError):
    """Bytes that are not a valid protobuf message (truncated, bad wire type)."""


def encode_varint(value):
    """Varint bytes of `value`; negative numbers are written as 64-bit two's complement."""
    value &= _UINT64_MASK
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data, pos=0):
    """Read a varint from `data` at `pos`; return `(value, next_pos)`."""
    result = 0
    for count in range(_MAX_VARINT_BYTES):
        if pos + count >= len(data):
            raise WireFormatError("truncated varint")
        byte = data[pos + count]
        result |= (byte & 0x7F) << (7 * count)
        if byte < 0x80:
            return result & _UINT64_MASK, pos + count + 1
    raise WireFormatError("varint longer than 10 bytes")


def to_signed64(value):
    """Reinterpret an unsigned 64-bit varint as int64 (protobuf int32/int64 fields)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def iter_fields(data):
    """Yield `(field_number, wire_type, value)` for each field of a message.

    `value` is an int for VARINT/FIXED32/FIXED64 and bytes for LENGTH_DELIMITED.
    """
    data = bytes(data)
    pos = 0
    while pos < len(data):
        tag, pos = decode_varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise WireFormatError("field number 0")
        if wire_type == VARINT:
            value, pos = decode_varint(data, pos)
        elif wire_type in (FIXED32, FIXED64):
            width = 4 if wire_type == FIXED32 else 8
            if pos + width > len(data):
                raise WireFormatError("truncated fixed-width field")
            value = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        elif wire_type == LENGTH_DELIMITED:
            length, pos = decode_varint(data, pos)
            if pos + length > len(data):
                raise WireFormatError("truncated length-delimited field")
            value = data[pos : pos + length]
            pos += length
        else:
            raise WireFormatError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


def varint_field(number, value):
    """Encoded VARINT field (int32/int64/enum/bool)."""
    return encode_varint(number << 3 | VARINT) + encode_varint(int(value))


def fixed32_field(number, value):
    """Encoded FIXED32 field."""
    return encode_varint(number << 3 | FIXED32) + struct.pack("<I", value)


def bytes_field(number, payload):
    """Encoded LENGTH_DELIMITED field (bytes, string or nested message)."""
    payload = bytes(payload)
    return encode_varint(number << 3 | LENGTH_DELIMITED) + encode_varint(len(payload)) + payload
