"""Tests for nlp4keras.snippets.text: `text_segmentate` on worked examples and
against its definition (pieces fit, nothing but separators' whitespace and
`strips` is lost), `strQ2B` over every code point, `lowercase_and_normalize`
against unicodedata, `is_string` and `to_array`."""

import re
import sys
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp4keras.snippets import (
    is_string,
    lowercase_and_normalize,
    strQ2B,
    text_segmentate,
    to_array,
)

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

# -- text_segmentate ------------------------------------------------------

TEXT = "今天天气很好。我们去公园玩吧！好的\n明天见"


@pytest.mark.parametrize(
    "maxlen, expected",
    [
        (100, [TEXT]),
        (10, ["今天天气很好。", "我们去公园玩吧！好的", "明天见"]),
        (8, ["今天天气很好。", "我们去公园玩吧！", "好的", "明天见"]),
    ],
)
def test_segmentate_worked_examples(maxlen, expected):
    # Split on "\n" first; the first line is too long, so it is split on "。",
    # and what is still too long on "！". Separators stay with their piece.
    assert text_segmentate(TEXT, maxlen, seps="\n。！") == expected


def test_segmentate_merges_short_parts_greedily():
    assert text_segmentate("a。b。c。d", 4, seps="。") == ["a。b。", "c。d"]
    assert text_segmentate("a。b。c。d", 4, seps="。", strips="。") == ["a。b", "c。d"]


def test_segmentate_leaves_an_unsplittable_part_whole():
    assert text_segmentate("short。" + "x" * 12 + "。end", 6, seps="。") == [
        "short。",
        "x" * 12 + "。",
        "end",
    ]


def test_segmentate_accepts_multi_character_separators():
    assert text_segmentate("ab||cd||ef", 8, seps=["||"]) == ["ab||cd||", "ef"]


def test_segmentate_strips_whitespace_and_strips():
    assert text_segmentate("  \n hi \n", 10) == ["hi"]
    assert text_segmentate("", 5) == [""]
    assert text_segmentate("--ab--", 10, strips="-") == ["ab"]


SEPS = "\n。，"
WORD = st.text(alphabet="ab cd", min_size=1, max_size=5).filter(lambda w: w.strip())


@st.composite
def segmentable_texts(draw):
    """Words of at most maxlen - 1 characters joined by single separators."""
    words = draw(st.lists(WORD, min_size=1, max_size=12))
    seps = draw(st.lists(st.sampled_from(SEPS), min_size=len(words), max_size=len(words)))
    return "".join(w + s for w, s in zip(words, seps))[: -1 if draw(st.booleans()) else None]


def _located(pieces, text, dropped):
    """Pieces are consecutive substrings of text, with only `dropped`
    characters in between and around them."""
    position = 0
    for piece in pieces:
        start = text.find(piece, position)
        if start < 0 or text[position:start].strip(dropped):
            return False
        position = start + len(piece)
    return not text[position:].strip(dropped)


@settings(max_examples=200, deadline=None)
@given(segmentable_texts(), st.integers(6, 20), st.sampled_from([None, "，"]))
def test_segmentate_against_its_definition(text, maxlen, strips):
    pieces = text_segmentate(text, maxlen, seps=SEPS, strips=strips)
    assert all(len(piece) <= maxlen for piece in pieces)
    dropped = " \t\n\r\x0b\x0c" + (strips or "")
    assert _located(pieces, text, dropped)
    assert re.sub(f"[{re.escape(dropped)}]", "", "".join(pieces)) == re.sub(
        f"[{re.escape(dropped)}]", "", text
    )
    if len(text.strip().strip(strips)) <= maxlen:
        assert pieces == [text.strip().strip(strips)]


# -- strQ2B ---------------------------------------------------------------


def test_strq2b_on_every_code_point():
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    converted = strQ2B(everything)
    assert len(converted) == len(everything)
    changed = {i: ord(c) for i, c in enumerate(converted) if c != everything[i]}
    expected = {0x3000: 0x20} | {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
    assert changed == expected
    # the mapped characters are exactly what NFKC makes of them
    for code, half in expected.items():
        assert unicodedata.normalize("NFKC", chr(code)) == chr(half)


def test_strq2b_example():
    assert strQ2B("ＡＢＣ　１２３，ｘ！中文") == "ABC 123,x!中文"


# -- lowercase_and_normalize ----------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Élan Vital", "elan vital"),
        ("ÅNGSTRÖM naïve café", "angstrom naive cafe"),
        ("Straße", "straße"),
        ("İstanbul", "istanbul"),  # lower() gives i + U+0307, a mark that is dropped
        ("Ελληνικά", "ελληνικα"),
        ("中文ＡＢＣ", "中文ａｂｃ"),
    ],
)
def test_lowercase_and_normalize_examples(text, expected):
    assert lowercase_and_normalize(text) == expected


def _lower_nfd_drop_marks(text):
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_lowercase_and_normalize_against_unicodedata(text):
    result = lowercase_and_normalize(text)
    assert result == _lower_nfd_drop_marks(text)
    assert not any(unicodedata.category(c) == "Mn" for c in result)


# -- is_string, to_array ----------------------------------------------------


def test_is_string():
    assert is_string("a") and is_string("")
    assert not is_string(b"a") and not is_string(1) and not is_string(None)


def test_to_array():
    single = to_array([1, 2])
    assert isinstance(single, np.ndarray) and single.tolist() == [1, 2]
    a, b = to_array([1], [[2.0, 3.0]])
    assert a.shape == (1,) and b.shape == (1, 2) and b.dtype.kind == "f"
