"""Text helpers of bert4keras: `text_segmentate`, `strQ2B`,
`lowercase_and_normalize`, `convert_to_unicode`, `convert_to_str`,
`is_string`, `is_one_of`, `to_array`."""

import codecs
import unicodedata

import numpy as np

from nlp4keras import validation

# Full-width to half-width: the ideographic space, then U+FF01..U+FF5E,
# which mirror ASCII U+0021..U+007E at a fixed offset.
_FULL_TO_HALF = {0x3000: 0x20, **{code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}}


def text_segmentate(text, maxlen, seps="\n", strips=None):
    """Split `text` into pieces of at most `maxlen` characters where possible.

    `seps` lists separators in priority order (a string of single characters,
    or a list of strings): the text is split on the first one, consecutive
    parts are merged greedily while they fit in `maxlen`, and merged pieces
    still too long are split again on the remaining separators. Separators
    stay at the end of their piece; each piece is stripped of whitespace and
    then of the characters in `strips`. A piece without any separator left
    to split on can exceed `maxlen`. Returns a list of strings (bert4keras
    semantics: an empty text gives [''])."""
    who = "text_segmentate"
    validation.instance(text, "text", str, who, what="a str")
    maxlen = validation.integer(maxlen, "maxlen", who, minimum=1)
    seps = _separators(seps, who)
    if strips is not None:
        validation.instance(strips, "strips", str, who, what="a str of characters or None")
    return _segmentate(text, maxlen, seps, strips)


def _separators(seps, who):
    """`seps` (a str of single characters, a list of strings, or None for
    none) checked."""
    if seps is None or isinstance(seps, str):
        return seps or ""
    if not isinstance(seps, (list, tuple)):
        validation.instance(seps, "seps", (), who, what="a str or a list of str")
    for k, sep in enumerate(seps):
        validation.string(sep, f"seps[{k}]", who)  # '' would split nowhere
    return list(seps)


def _segmentate(text, maxlen, seps, strips):
    text = text.strip().strip(strips)
    if not seps or len(text) <= maxlen:
        return [text]
    sep, later_seps = seps[0], seps[1:]
    parts = text.split(sep)
    pieces, current = [], ""
    for i, part in enumerate(parts):
        # Flush when this part and its separator would not fit after `current`.
        if current and part and len(current) + len(part) + len(sep) > maxlen:
            pieces += _segmentate(current, maxlen, later_seps, strips)
            current = ""
        current += part if i == len(parts) - 1 else part + sep
    if current:
        pieces += _segmentate(current, maxlen, later_seps, strips)
    return pieces


def strQ2B(ustring):  # bert4keras name
    """Full-width characters to half-width: U+3000 to a space and
    U+FF01..U+FF5E to ASCII U+0021..U+007E; other characters unchanged."""
    validation.instance(ustring, "ustring", str, "strQ2B", what="a str")
    return ustring.translate(_FULL_TO_HALF)


def lowercase_and_normalize(text):
    """Lowercase, then NFD-decompose and drop combining marks (category Mn),
    which strips accents: 'Élan' -> 'elan'."""
    validation.instance(text, "text", str, "lowercase_and_normalize", what="a str")
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def is_string(s):
    """Whether `s` is a str."""
    return isinstance(s, str)


def to_array(*args):
    """`np.array` of each argument; the array itself for one argument, else a list."""
    arrays = [np.array(a) for a in args]
    return arrays[0] if len(arrays) == 1 else arrays


def is_one_of(x, ys):
    """Whether `x` is one of the objects in `ys` (compared with `is`, not
    `==`: works where `x in ys` would compare arrays or tensors)."""
    if not hasattr(ys, "__iter__"):
        validation.instance(ys, "ys", (), "is_one_of", what="an iterable")
    return any(x is y for y in ys)


def convert_to_unicode(text, encoding="utf-8", errors="ignore"):
    """`text` as a str: bytes are decoded with `encoding` (undecodable bytes
    dropped by default); anything else is returned unchanged."""
    _check_codec(encoding, errors, "convert_to_unicode")
    return text.decode(encoding, errors) if isinstance(text, bytes) else text


def convert_to_str(text, encoding="utf-8", errors="ignore"):
    """The same as `convert_to_unicode` on Python 3, where str is unicode
    (under Python 2 bert4keras encoded to bytes here)."""
    _check_codec(encoding, errors, "convert_to_str")
    return text.decode(encoding, errors) if isinstance(text, bytes) else text


def _check_codec(encoding, errors, who):
    check_encoding(encoding, who)
    check_error_handler(errors, who)


def check_encoding(encoding, who):
    """`encoding` names a codec Python knows, else a ValueError naming `who`."""
    validation.string(encoding, "encoding", who)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"{who}: `encoding` {encoding!r} is not a known text encoding") from None
    return encoding


def check_error_handler(errors, who):
    """`errors` names a codec error handler, else a ValueError naming `who`."""
    validation.string(errors, "errors", who)
    try:
        codecs.lookup_error(errors)
    except LookupError:
        raise ValueError(
            f"{who}: `errors` {errors!r} is not an error handler ('strict', 'ignore', "
            "'replace', ...)"
        ) from None
    return errors
