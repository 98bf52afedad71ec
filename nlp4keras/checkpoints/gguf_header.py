"""A bounds check of a GGUF file's header before the `gguf` package parses it.

The `gguf` reader trusts the counts a file declares: a metadata array that
claims 2**40 numbers makes it build an index list of that length (it never
returns). This walk reads the header once (key-value pairs, then tensor
infos) and checks every count and length against the bytes left in the file,
so a hostile or damaged file fails at once with the offending field named.
Layout (GGUF v2/v3, little-endian): magic, version u32, tensor count u64,
metadata count u64, the metadata (key string, value type u32, value), then
per tensor: name, dimension count u32, dimensions u64, type u32, offset u64.
"""

import mmap
import struct

from nlp4keras.checkpoints.errors import CheckpointError

# Value type -> byte size, for the fixed-size types of the GGUF spec.
_FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_MAX_DIMENSIONS = 8  # ggml's GGML_MAX_DIMS is 4; more is not a real file


class _Header:
    def __init__(self, data, path):
        self.data, self.path, self.offset = data, path, 0

    def fail(self, what):
        raise CheckpointError(f"corrupt or truncated GGUF file {self.path}: {what}")

    def left(self):
        return len(self.data) - self.offset

    def skip(self, size, what):
        """Move past `size` bytes; returns where they start."""
        if size > self.left():
            self.fail(f"{what} needs {size} bytes at offset {self.offset}, {self.left()} are left")
        start = self.offset
        self.offset += size
        return start

    def take(self, size, what):
        start = self.skip(size, what)
        return self.data[start : self.offset]

    def number(self, fmt, what):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what):
        length = self.number("Q", f"the length of {what}")
        return self.take(length, what)

    def count(self, fmt, what, smallest_item):
        """A declared count, refused when even items of `smallest_item` bytes
        could not fit in what is left of the file."""
        value = self.number(fmt, what)
        if value * smallest_item > self.left():
            self.fail(
                f"{what} is {value}, but only {self.left()} bytes are left "
                f"(each takes at least {smallest_item})"
            )
        return value

    def value(self, kind, key):
        if kind in _FIXED_SIZES:
            self.skip(_FIXED_SIZES[kind], f"the value of {key!r}")
        elif kind == _STRING:
            self.string(f"the string value of {key!r}")
        elif kind == _ARRAY:
            item = self.number("I", f"the item type of the array {key!r}")
            if item not in _FIXED_SIZES and item != _STRING:
                self.fail(f"the array {key!r} has items of unknown type {item}")
            smallest = _FIXED_SIZES.get(item, 8)  # a string is at least its 8-byte length
            length = self.count("Q", f"the length of the array {key!r}", smallest)
            if item in _FIXED_SIZES:
                self.skip(length * smallest, f"the array {key!r}")
            else:
                for index in range(length):
                    self.string(f"item {index} of the array {key!r}")
        else:
            self.fail(f"metadata key {key!r} has unknown value type {kind}")


def check_gguf_header(path):
    """Raise CheckpointError naming the field when a declared count or length
    of the GGUF header at `path` runs past the end of the file."""
    with open(path, "rb") as file:
        if file.seek(0, 2) < 24:
            raise CheckpointError(
                f"corrupt or truncated GGUF file {path}: shorter than its 24-byte header"
            )
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            _walk(_Header(data, path))


def _walk(header):
    header.skip(4, "the magic")
    version = header.number("I", "the version")
    if version not in (2, 3):
        header.fail(f"version {version} (nlp4keras reads GGUF versions 2 and 3)")
    tensors = header.count("Q", "the tensor count", 8 + 4 + 8 + 4 + 8)
    pairs = header.count("Q", "the metadata count", 8 + 4 + 1)
    for _ in range(pairs):
        key = header.string("a metadata key").decode("utf-8", errors="replace")
        header.value(header.number("I", f"the value type of {key!r}"), key)
    for index in range(tensors):
        name = header.string(f"the name of tensor {index}").decode("utf-8", errors="replace")
        dimensions = header.number("I", f"the dimension count of tensor {name!r}")
        if dimensions > _MAX_DIMENSIONS:
            header.fail(f"tensor {name!r} declares {dimensions} dimensions")
        header.skip(8 * dimensions + 4 + 8, f"the shape, type and offset of tensor {name!r}")
