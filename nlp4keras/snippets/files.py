"""bert4keras' `open`: a file object that reads text as UTF-8 unless told
otherwise and, with `indexable`, reads any line by its number (`f[i]`)
without loading the file."""

import builtins
import codecs
import json
import os

from nlp4keras import validation
from nlp4keras.snippets.text import check_encoding, check_error_handler

# Text encodings whose line breaks are the single bytes b"\n" / b"\r\n" and
# whose decoder keeps no state between lines: for them a line's byte offset
# is also its text-mode position, so the index is built from the raw bytes.
_BYTE_ADDRESSED = {"utf-8", "ascii", "latin-1", "iso8859-1", "gbk", "gb2312", "gb18030", "big5"}


def open(name, mode="r", encoding=None, errors="strict", indexable=False):
    """Open a file as bert4keras did: like the built-in `open`, but text
    modes read and write UTF-8 when no `encoding` is given (not the
    locale's encoding).

    `indexable=True` (a read mode only) records where each line starts, once,
    so `f[i]` returns line i with its line break ('\\n'; the last line may
    lack one) and `len(f)` the number of lines; `f[-1]` is the last line.
    Reading a line moves the file position to the next one, as in
    bert4keras. `indexable='lines.json'` keeps the line index in that file:
    read from it if it exists, else built and written there (bert4keras'
    format, a JSON list of positions); delete it when the data file changes.
    """
    return IndexableFile(name, mode, encoding, errors, indexable)


class IndexableFile:
    """The object `open` returns: a wrapped file (`.file`) with the usual
    reading and writing methods, iteration, `with` support and, if opened
    with `indexable`, `f[i]` and `len(f)` (see `open`)."""

    def __init__(self, name, mode="r", encoding=None, errors="strict", indexable=False):
        who = "open"
        validation.instance(name, "name", (str, os.PathLike), who, what="a file path")
        validation.string(mode, "mode", who)
        binary = "b" in mode
        encoding = _encoding(encoding, binary, name, who)
        _check_errors(errors, binary, name, who)
        _check_indexable(indexable, mode, name, who)
        self.name = name
        self.encoding = encoding
        self.errors = errors
        self.offsets = None  # line start positions, with indexable
        try:
            self.file = builtins.open(
                name, mode, encoding=encoding, errors=None if binary else errors
            )
        except ValueError as error:  # a bad mode
            raise ValueError(f"{who}: cannot open {str(name)!r}: {error}") from None
        if indexable:
            try:
                self.offsets = _line_index(self, indexable, binary)
            except BaseException:
                self.file.close()
                raise

    # -- indexing
    def __getitem__(self, key):
        """Line `key` (an int; negative counts from the end), with its line break."""
        offsets = self._offsets("f[i]")
        if not validation.is_integer(key):
            validation.instance(key, "key", (), f"open({str(self.name)!r})[]", what="an int")
        key = int(key)
        if not -len(offsets) <= key < len(offsets):
            raise IndexError(
                f"line {key} is out of range: {str(self.name)!r} has {len(offsets)} lines"
            )
        self.file.seek(offsets[key])
        return self.file.readline()

    def __len__(self):
        return len(self._offsets("len(f)"))

    def _offsets(self, what):
        if self.offsets is None:
            raise TypeError(
                f"{what} needs the line index: open {str(self.name)!r} with indexable=True"
            )
        return self.offsets

    # -- the wrapped file
    def __iter__(self):
        return iter(self.file)

    def __next__(self):
        return next(self.file)

    next = __next__  # bert4keras' Python 2 name

    def read(self, size=-1):
        return self.file.read(size)

    def readline(self, size=-1):
        return self.file.readline(size)

    def readlines(self, hint=-1):
        return self.file.readlines(hint)

    def write(self, text):
        """Write `text`; in a text mode, bytes are decoded first with the
        file's encoding and `errors` (as bert4keras did)."""
        if isinstance(text, bytes) and "b" not in self.file.mode:
            text = text.decode(self.file.encoding, self.errors)
        return self.file.write(text)

    def flush(self):
        self.file.flush()

    def close(self):
        self.file.close()

    @property
    def closed(self):
        return self.file.closed

    def tell(self):
        return self.file.tell()

    def seek(self, offset=0, whence=0):
        return self.file.seek(offset, whence)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        lines = "" if self.offsets is None else f", {len(self.offsets)} lines indexed"
        return f"<nlp4keras open {str(self.name)!r}, mode {self.file.mode!r}{lines}>"


def _encoding(encoding, binary, name, who):
    """The encoding to open with: UTF-8 for text without one, None for bytes."""
    if encoding is None:
        return None if binary else "utf-8"
    validation.string(encoding, "encoding", who)
    if binary:
        raise ValueError(
            f"{who}: `encoding` {encoding!r} was given for {str(name)!r} in binary mode, "
            "which reads and writes bytes; drop encoding or the 'b' of the mode"
        )
    return check_encoding(encoding, who)


def _check_errors(errors, binary, name, who):
    validation.string(errors, "errors", who)
    if binary and errors != "strict":
        raise ValueError(
            f"{who}: `errors` {errors!r} was given for {str(name)!r} in binary mode, "
            "which does not decode; drop errors or the 'b' of the mode"
        )
    check_error_handler(errors, who)


def _check_indexable(indexable, mode, name, who):
    """`indexable` is a bool or an index file path, and needs a read mode."""
    if not isinstance(indexable, (bool, str, os.PathLike)):
        validation.instance(
            indexable, "indexable", (), who, what="True, False or the path of an index file"
        )
    if isinstance(indexable, str) and not indexable:
        raise ValueError(f"{who}: `indexable` must be True, False or a non-empty path, got ''")
    if indexable is not False and not mode.startswith("r"):
        raise ValueError(
            f"{who}: `indexable` needs a read mode ('r', 'rb', 'r+'), but {str(name)!r} "
            f"is opened with mode {mode!r}"
        )


def _line_index(file, indexable, binary):
    """Line start positions: read from / saved to an index file, or built."""
    if indexable is True:
        return _build_index(file, binary)
    if os.path.exists(indexable):
        return _read_index(indexable, file.name)
    offsets = _build_index(file, binary)
    with builtins.open(indexable, "w", encoding="utf-8") as writer:
        json.dump(offsets, writer)
    return offsets


def _read_index(path, name):
    with builtins.open(path, encoding="utf-8") as reader:
        try:
            offsets = json.load(reader)
        except json.JSONDecodeError as error:
            offsets = error
    if not (isinstance(offsets, list) and all(type(o) is int and o >= 0 for o in offsets)):
        raise ValueError(
            f"open: the index file {str(path)!r} for {str(name)!r} is not a JSON list of line "
            "positions; delete it to have it rebuilt"
        )
    return offsets


def _build_index(file, binary):
    """Where each line of the file starts, as positions `seek` takes."""
    offsets = None
    if binary or codecs.lookup(file.encoding).name in _BYTE_ADDRESSED:
        offsets = _byte_offsets(file.name, check_breaks=not binary)
    if offsets is None:  # any other encoding, or lone '\r' line breaks
        offsets = _text_offsets(file.file)
    file.file.seek(0)
    return offsets


def _byte_offsets(name, check_breaks):
    """Byte offsets of the lines of the file; None if `check_breaks` and a
    '\\r' that is not part of '\\r\\n' (a line break in text mode) appears."""
    offsets, offset = [], 0
    with builtins.open(name, "rb") as reader:
        for line in reader:
            if check_breaks and b"\r" in line and not _ends_crlf_only(line):
                return None
            offsets.append(offset)
            offset += len(line)
    return offsets


def _ends_crlf_only(line):
    return line.endswith(b"\r\n") and line.count(b"\r") == 1


def _text_offsets(file):
    """Positions of the lines by reading the text file line by line (slow:
    `tell()` in text mode costs tens of microseconds)."""
    file.seek(0)
    offsets, offset = [], 0
    while file.readline():
        offsets.append(offset)
        offset = file.tell()
    return offsets
