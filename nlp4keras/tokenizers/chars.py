"""Character classes as BERT's tokenizer defines them."""

import unicodedata

# CJK ideographs as BERT defines them (Hangul and kana are not included).
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


# -- character classes ------------------------------------------------------


def is_cjk_character(ch):
    code = ord(ch)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def is_punctuation(ch):
    """BERT's punctuation: ASCII symbols (not letters/digits/space) and Unicode P*."""
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_control(ch):
    """Control, format and private-use chars, which are dropped (not \\t\\n\\r)."""
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf", "Co")


def is_space(ch):
    return ch in " \t\n\r" or (ch.isspace() and not is_control(ch))


def is_special(token):
    """Bracketed tokens such as [CLS], [PAD] or [unused1]."""
    return len(token) > 1 and token[0] == "[" and token[-1] == "]"


def stem(token):
    """A word piece without its '##' continuation mark."""
    return token[2:] if token.startswith("##") else token


def cjk_punctuation():
    """Full-width and CJK punctuation marks (U+3000-U+303F, U+FF00-U+FF65)."""
    codes = [*range(0x3000, 0x3040), *range(0xFF00, 0xFF66)]
    return "".join(chr(code) for code in codes if is_punctuation(chr(code)))
