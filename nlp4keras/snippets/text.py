"""Text helpers of bert4keras: `text_segmentate`, `strQ2B`,
`lowercase_and_normalize`, `is_string`, `to_array`."""

import unicodedata

import numpy as np

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
    text = text.strip().strip(strips)
    if not seps or len(text) <= maxlen:
        return [text]
    sep, later_seps = seps[0], seps[1:]
    parts = text.split(sep)
    pieces, current = [], ""
    for i, part in enumerate(parts):
        # Flush when this part and its separator would not fit after `current`.
        if current and part and len(current) + len(part) + len(sep) > maxlen:
            pieces += text_segmentate(current, maxlen, later_seps, strips)
            current = ""
        current += part if i == len(parts) - 1 else part + sep
    if current:
        pieces += text_segmentate(current, maxlen, later_seps, strips)
    return pieces


def strQ2B(ustring):  # bert4keras name
    """Full-width characters to half-width: U+3000 to a space and
    U+FF01..U+FF5E to ASCII U+0021..U+007E; other characters unchanged."""
    return ustring.translate(_FULL_TO_HALF)


def lowercase_and_normalize(text):
    """Lowercase, then NFD-decompose and drop combining marks (category Mn),
    which strips accents: 'Élan' -> 'elan'."""
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def is_string(s):
    """Whether `s` is a str."""
    return isinstance(s, str)


def to_array(*args):
    """`np.array` of each argument; the array itself for one argument, else a list."""
    arrays = [np.array(a) for a in args]
    return arrays[0] if len(arrays) == 1 else arrays
