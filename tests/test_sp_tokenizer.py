"""Tests for `SpTokenizer`, checked against the `sentencepiece` package itself.

Models: the two real botchan models (BPE and unigram, fetched by `make assets`)
on every line of the text they were trained on, and on hypothesis-generated
Unicode; plus tiny models trained here with other settings (byte fallback,
pad and [MASK] pieces, case folding; no '</s>', no whitespace splitting).

Checked: pieces and ids equal the model's (plus '</s>'); pairs, maxlen and
truncation equal an independent construction from the model's ids; decode
equals the model's decode of the decodable ids; rematch offsets (see
`check_rematch` for exactly what is checked); errors.
"""

import copy
import io
import pickle
import re
import sys
from pathlib import Path

import pytest
import sentencepiece as spm
from helpers import truncate_by_popping
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlp4keras.tokenizers import SpTokenizer

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

ASSETS = Path(__file__).resolve().parents[1] / ".assets" / "sentencepiece"
REAL_MODELS = ("bpe", "unigram")
BOUNDARY = "\u2581"  # '▁'
BYTE_PIECE = re.compile(r"<0x([0-9A-F]{2})>")

# Characters that stress normalisation and offsets: NFKC expansions, a
# combining mark, odd whitespace, chars unknown to the botchan models.
TRICKY = list("  \t\n\r\x0b\x1c\u3000\u00a0\u200babcXYZ.,'-0123½ﬁ\u0301é犬ö😀▁<>/s")
TEXT = st.text(
    st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(TRICKY)),
    max_size=40,
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def real_model_path(kind):
    path = ASSETS / f"botchan_en_{kind}_1000.model"
    if not path.is_file():
        pytest.fail(f"SentencePiece model missing at {path}: run `make assets`")
    return path


def processor(path):
    return spm.SentencePieceProcessor(model_file=str(path))


_TOKENIZERS = {}


def cached_tokenizer(path, **kwargs):
    """One SpTokenizer per (path, options), shared by hypothesis examples."""
    key = (str(path), tuple(sorted(kwargs.items())))
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = SpTokenizer(path, **kwargs)
    return _TOKENIZERS[key]


@pytest.fixture(scope="module")
def lines():
    path = ASSETS / "botchan.txt"
    if not path.is_file():
        pytest.fail(f"botchan.txt missing at {path}: run `make assets`")
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module", params=REAL_MODELS)
def real(request):
    """(SpTokenizer, SentencePieceProcessor) of one real model."""
    path = real_model_path(request.param)
    return SpTokenizer(path), processor(path)


def train(path, lines, **options):
    """Train a tiny model on `lines` into `path` (well under a second)."""
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buffer, minloglevel=2, **options
    )
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, lines):
    """Paths of tiny models trained on part of botchan.txt."""
    folder = tmp_path_factory.mktemp("sp_models")
    sample = lines[:400]
    return {
        "bytes": train(
            folder / "bytes.model",
            sample,
            vocab_size=400,
            model_type="unigram",
            byte_fallback=True,
            pad_id=3,
            user_defined_symbols=["[MASK]"],
            normalization_rule_name="nmt_nfkc_cf",
        ),
        "no_eos": train(
            folder / "no_eos.model",
            sample,
            vocab_size=300,
            model_type="bpe",
            eos_id=-1,
            split_by_whitespace=False,
            normalization_rule_name="identity",
        ),
    }


# -- helpers ------------------------------------------------------------------


def piece_bytes(sp, piece):
    """The UTF-8 bytes a piece stands for (one byte for a byte-fallback piece)."""
    match = BYTE_PIECE.fullmatch(piece)
    if match and sp.is_byte(sp.piece_to_id(piece)):
        return bytes([int(match[1], 16)])
    return piece.encode("utf-8")


def normalized(sp, chars):
    """`chars` normalised as the model normalises them, without '▁'."""
    return sp.normalize(chars).replace(BOUNDARY, "")


def check_rematch(tokenizer, text, tokens, mapping, whole=True):
    """What rematch promises, checked with the model's own normaliser:

    - one span per token, all indices in range, increasing across tokens (so
      spans are ordered and never overlap); start/end tokens get [];
    - a token whose piece has '▁' covers no whitespace;
    - content tokens split into consecutive groups whose tokens all cover no
      characters but the last; a group's characters, normalised by the model
      (NFKC etc.), equal the text of its pieces, '▁' removed on both sides.
      A group has more than one token only where one character becomes
      several pieces: NFKC expansions ('½' -> '1', '⁄', '2'), and
      byte-fallback pieces, which are compared through the UTF-8 bytes they
      spell. Unknown pieces are the (normalised) characters themselves, so
      they are checked like any other piece;
    - with `whole` (no truncation): no group is left open at the end, and
      every character no token covers normalises to nothing on its own
      (whitespace, or characters the model drops).
    """
    sp = tokenizer.sp_model
    assert len(mapping) == len(tokens)
    flat = [i for span in mapping for i in span]
    assert flat == sorted(set(flat)), mapping
    assert all(0 <= i < len(text) for i in flat)
    specials = (tokenizer._token_start, tokenizer._token_end)
    group_bytes, group_chars = b"", ""
    for token, span in zip(tokens, mapping):
        if token in specials:
            assert span == []
            continue
        chars = "".join(text[i] for i in span)
        if BOUNDARY in token:
            assert not any(ch.isspace() for ch in chars), (token, chars)
        group_bytes += piece_bytes(sp, token)
        group_chars += chars
        if chars:
            pieces_text = group_bytes.decode("utf-8").replace(BOUNDARY, "")
            assert normalized(sp, group_chars) == pieces_text, (text, tokens, mapping)
            group_bytes, group_chars = b"", ""
    if whole:
        assert group_bytes.decode("utf-8").replace(BOUNDARY, "") == ""
        covered = set(flat)
        for i, ch in enumerate(text):
            if i not in covered:
                assert normalized(sp, ch) == "", (text, i, ch)


def reference_encode(first, second, maxlen, truncate_from, start, end, pattern):
    """(token_ids, segment_ids) built from the model's ids by popping one
    token at a time from the longer text (the first on ties), as specified."""
    first, second = list(first), None if second is None else list(second)
    second_start = pattern == "S*ES*E"
    n_start, n_end = int(start is not None), int(end is not None)
    if maxlen is not None:
        budget = maxlen - n_start - n_end
        if second is not None:
            budget -= n_end + (n_start if second_start else 0)
        lists = [first] if second is None else [first, second]
        truncate_by_popping(lists, budget, truncate_from, n_start, n_end)

    def wrap(ids, with_start=True):
        starts = [start] if with_start and start is not None else []
        return starts + ids + ([end] if end is not None else [])

    token_ids = wrap(first)
    segment_ids = [0] * len(token_ids)
    if second is not None:
        second_ids = wrap(second, second_start)
        token_ids += second_ids
        segment_ids += [1] * len(second_ids)
    return token_ids, segment_ids


# -- ids, pieces, attributes -------------------------------------------------


def test_pieces_and_ids_match_sentencepiece_on_every_line(real, lines):
    tokenizer, sp = real
    eos = sp.eos_id()
    assert eos == 2
    for line in lines:
        assert tokenizer.tokenize(line) == sp.encode_as_pieces(line) + ["</s>"]
        ids = sp.encode(line)
        assert tokenizer.encode(line) == (ids + [eos], [0] * (len(ids) + 1))
        assert tokenizer.tokens_to_ids(tokenizer.tokenize(line)) == ids + [eos]


@SETTINGS
@given(text=TEXT)
def test_pieces_and_ids_match_sentencepiece_on_any_text(text):
    for kind in REAL_MODELS:
        path = real_model_path(kind)
        tokenizer, sp = cached_tokenizer(path), processor(path)
        pieces = tokenizer.tokenize(text)
        assert pieces == sp.encode_as_pieces(text) + ["</s>"]
        assert tokenizer.tokens_to_ids(pieces) == sp.encode(text) + [2]
        assert tokenizer.encode(text)[0] == sp.encode(text) + [2]


def test_special_token_attributes(real, trained):
    tokenizer, sp = real
    assert tokenizer._vocab_size == sp.get_piece_size() == 1000
    assert (tokenizer._token_start, tokenizer._token_start_id) == (None, None)
    assert (tokenizer._token_end, tokenizer._token_end_id) == ("</s>", 2)
    assert (tokenizer._token_unk, tokenizer._token_unk_id) == ("<unk>", 0)
    assert (tokenizer._token_pad, tokenizer._token_pad_id) == ("", None)  # pad_id() == -1
    assert (tokenizer._token_mask, tokenizer._token_mask_id) == ("", None)

    with_pad = SpTokenizer(trained["bytes"], token_start="<s>")
    assert (with_pad._token_pad, with_pad._token_pad_id) == ("<pad>", 3)
    assert (with_pad._token_mask, with_pad._token_mask_id) == ("[MASK]", 4)
    assert (with_pad._token_start, with_pad._token_start_id) == ("<s>", 1)
    assert with_pad.encode("a")[0][0] == 1


def test_token_id_conversions(real):
    tokenizer, sp = real
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        assert tokenizer.id_to_token(i) == piece
        assert tokenizer.token_to_id(piece) == i
        special = sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i)
        assert tokenizer._is_special(i) == special
        assert tokenizer._is_decodable(i) == (not special)
    assert tokenizer.token_to_id("no such piece") == sp.unk_id()
    assert not tokenizer._is_decodable(1000) and not tokenizer._is_decodable(-1)
    for bad in (1000, -1):
        with pytest.raises(IndexError, match="out of range"):
            tokenizer.id_to_token(bad)


# -- encode: pairs, maxlen, truncation -----------------------------------------


@pytest.mark.parametrize("token_start", [None, "<s>"])
def test_encode_pairs_and_truncation_match_reference(token_start, lines):
    path = real_model_path("unigram")
    tokenizer, sp = SpTokenizer(path, token_start=token_start), processor(path)
    start = None if token_start is None else sp.bos_id()
    texts = [line for line in lines if line.strip()][100:140]
    for first_text, second_text in zip(texts, texts[1:] + [""]):
        first, second = sp.encode(first_text), sp.encode(second_text)
        for pattern in ("S*E*E", "S*ES*E"):
            for maxlen in (None, 6, 15, 40):
                for truncate_from in ("right", "left", 1, -2):
                    args = (maxlen, truncate_from, start, 2, pattern)
                    expected = reference_encode(first, second, *args)
                    got = tokenizer.encode(first_text, second_text, maxlen, pattern, truncate_from)
                    assert got == expected, (first_text, second_text, args)
                    if pattern == "S*E*E":
                        single = tokenizer.encode(first_text, None, maxlen, pattern, truncate_from)
                        assert single == reference_encode(first, None, *args)
        expected, _ = reference_encode(first, None, 15, "right", start, 2, "S*E*E")
        assert tokenizer.tokens_to_ids(tokenizer.tokenize(first_text, maxlen=15)) == expected


# -- decode ------------------------------------------------------------------


def test_decode_matches_sentencepiece(real, lines):
    tokenizer, sp = real
    for line in lines:
        ids = sp.encode(line)
        decodable = [i for i in ids if not sp.is_unknown(i)]
        assert tokenizer.decode(tokenizer.encode(line)[0]) == sp.decode(decodable)
    ids = sp.encode("The cat sat on the mat.")
    noisy = [sp.bos_id(), sp.unk_id()] + ids[:3] + [2] + ids[3:] + [2]
    assert tokenizer.decode(noisy) == sp.decode(ids) == "The cat sat on the mat."
    # Special pieces are dropped, but an id outside the vocab is an error.
    for bad in (10**6, -1):
        with pytest.raises(ValueError, match=rf"outside the vocab of 1000 tokens.*{bad} \(at 3\)"):
            tokenizer.decode(ids[:3] + [bad] + ids[3:])


@SETTINGS
@given(text=TEXT)
def test_decode_matches_sentencepiece_with_byte_fallback(text, trained):
    tokenizer, sp = cached_tokenizer(trained["bytes"]), processor(trained["bytes"])
    ids = sp.encode(text)
    assert tokenizer.encode(text)[0] == ids + [2]
    assert tokenizer.decode(ids + [2, 3]) == sp.decode(ids)


def test_token_translate_and_its_inverse_in_decode():
    path = real_model_path("bpe")
    sp = processor(path)
    tokenizer = SpTokenizer(path, token_translate={"▁the": "▁The"})
    ids, _ = tokenizer.encode("the cat")
    assert ids == [sp.piece_to_id("▁The")] + sp.encode("the cat")[1:] + [2]
    assert tokenizer.decode(ids) == "the cat"
    plain = SpTokenizer(path)
    text = "see the dog and the cat"
    assert tokenizer.rematch(text, tokenizer.tokenize(text)) == plain.rematch(
        text, plain.tokenize(text)
    )


# -- rematch -----------------------------------------------------------------


def proto_offsets(tokenizer):
    """A copy that reads offsets from the serialized proto, the way it does
    with sentencepiece < 0.2.2."""
    twin = copy.copy(tokenizer)
    twin._offset_mapping = False
    return twin


def test_rematch_every_line(real, lines):
    tokenizer, _ = real
    assert tokenizer._offset_mapping == hasattr(spm.SentencePieceProcessor, "EncodeAsOffsetMapping")
    twin = proto_offsets(tokenizer)
    for line in lines:
        tokens = tokenizer.tokenize(line)
        mapping = tokenizer.rematch(line, tokens)
        check_rematch(tokenizer, line, tokens, mapping)
        ids_tokens = tokenizer.ids_to_tokens(tokenizer.encode(line)[0])  # unknowns as '<unk>'
        assert tokenizer.rematch(line, ids_tokens) == mapping
        assert twin.rematch(line, tokens) == mapping


@SETTINGS
@given(text=TEXT)
def test_rematch_any_text(text, trained):
    paths = [real_model_path(kind) for kind in REAL_MODELS] + [trained["bytes"]]
    for path in paths:
        tokenizer = cached_tokenizer(path)
        tokens = tokenizer.tokenize(text)
        mapping = tokenizer.rematch(text, tokens)
        check_rematch(tokenizer, text, tokens, mapping)
        assert proto_offsets(tokenizer).rematch(text, tokens) == mapping
    tokenizer = cached_tokenizer(trained["no_eos"], token_end=None)
    tokens = tokenizer.tokenize(text)
    check_rematch(tokenizer, text, tokens, tokenizer.rematch(text, tokens))


def test_rematch_known_spans():
    tokenizer = SpTokenizer(real_model_path("unigram"), token_start="<s>")
    text = "Hello   wörld  ﬁ ½ 犬"
    tokens = tokenizer.tokenize(text)
    assert tokens[:5] == ["<s>", "▁He", "ll", "o", "▁w"]
    mapping = tokenizer.rematch(text, tokens)
    assert mapping[:6] == [[], [0, 1], [2, 3], [4], [8], [9]]  # '▁w' skips the spaces
    assert mapping[tokens.index("i")] == [15]  # 'ﬁ' -> '▁f' + 'i': the last piece gets it
    assert mapping[tokens.index("2")] == [17]  # '½' -> '1', '⁄', '2'
    assert mapping[-2:] == [[19], []]  # '犬' (unknown), '</s>'


@pytest.mark.parametrize("text", ["\x08¼", "a\x08¼", "\x08½x", "a\x08b"])
def test_rematch_characters_the_normaliser_deletes(text):
    """Found by hypothesis: SentencePiece lends a deleted control character to
    the next piece, which may be the first of an NFKC expansion ('¼' -> '1',
    '⁄4'); that piece must not cover it."""
    for kind in REAL_MODELS:
        tokenizer = cached_tokenizer(real_model_path(kind))
        tokens = tokenizer.tokenize(text)
        check_rematch(tokenizer, text, tokens, tokenizer.rematch(text, tokens))
    bpe = cached_tokenizer(real_model_path("bpe"))
    assert bpe.rematch("\x08¼", bpe.tokenize("\x08¼")) == [[], [1], []]


def test_rematch_after_truncation(real, lines):
    tokenizer, _ = real
    text = next(line for line in lines if len(line) > 60)
    full = tokenizer.rematch(text, tokenizer.tokenize(text))[:-1]
    right = tokenizer.tokenize(text, maxlen=8)
    assert tokenizer.rematch(text, right) == full[:7] + [[]]
    left, _ = tokenizer.encode(text, maxlen=8, truncate_from="left")
    assert tokenizer.rematch(text, tokenizer.ids_to_tokens(left)) == full[-7:] + [[]]
    middle, _ = tokenizer.encode(text, maxlen=8, truncate_from=3)
    assert tokenizer.rematch(text, tokenizer.ids_to_tokens(middle)) == full[:3] + full[-4:] + [[]]


def test_rematch_skips_control_pieces():
    tokenizer = SpTokenizer(real_model_path("unigram"))
    text = "the, the"
    assert tokenizer.tokenize(text) == ["▁the", ",", "▁the", "</s>"]
    full = tokenizer.rematch(text, tokenizer.tokenize(text))
    # '<s>' is a control piece, not text: '▁the' is the first of the text,
    # not the one at its end; '<nothing>' is no piece of the text: [].
    assert tokenizer.rematch(text, ["<s>", "▁the"]) == [[], [0, 1, 2]]
    tokens = ["<s>"] + tokenizer.tokenize(text, maxlen=4) + ["<nothing>", "<pad>"]
    assert tokenizer.rematch(text, tokens) == [[]] + full[:3] + [[], [], []]


@pytest.mark.parametrize("kind", REAL_MODELS)
def test_rematch_with_pre_tokenize(kind):
    path = real_model_path(kind)
    sp = processor(path)
    words = lambda text: re.findall(r"\w+|[^\w\s]", text)  # noqa: E731
    tokenizer = SpTokenizer(path, pre_tokenize=words)
    text = "Well,\tthen -- said  he!"
    tokens = tokenizer.tokenize(text)
    assert tokens[:-1] == sp.encode_as_pieces(" ".join(words(text)))
    mapping = tokenizer.rematch(text, tokens)
    check_rematch(tokenizer, text, tokens, mapping, whole=False)  # the words drop the tab
    assert "".join(text[i] for span in mapping for i in span) == "Well,then--saidhe!"


def test_encode_batch_offsets(real, lines):
    tokenizer, _ = real
    texts = lines[200:204]
    token_ids, _, offsets = tokenizer.encode_batch(texts, return_offsets=True)
    for row, text in enumerate(texts):
        ids = tokenizer.encode(text)[0]
        assert token_ids[row, : len(ids)].tolist() == ids
        mapping = tokenizer.rematch(text, tokenizer.ids_to_tokens(ids))
        expected = [(m[0], m[-1] + 1) if m else (0, 0) for m in mapping]
        assert [tuple(span) for span in offsets[row, : len(ids)].tolist()] == expected


# -- errors and the rest -------------------------------------------------------


def test_missing_or_invalid_model_file(tmp_path):
    missing = tmp_path / "missing.model"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        SpTokenizer(missing)
    text_file = ASSETS / "botchan.txt"
    with pytest.raises(ValueError, match=re.escape(f"{text_file} is not a SentencePiece model")):
        SpTokenizer(text_file)
    empty = tmp_path / "empty.model"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is not a SentencePiece model"):
        SpTokenizer(str(empty))


def test_start_or_end_token_not_in_model(trained):
    path = real_model_path("bpe")
    with pytest.raises(ValueError, match=r"token_end='\[SEP\]' is not a piece"):
        SpTokenizer(path, token_end="[SEP]")
    with pytest.raises(ValueError, match=r"token_start='\[CLS\]' is not a piece"):
        SpTokenizer(path, token_start="[CLS]")
    with pytest.raises(ValueError, match=r"token_end='</s>'.*pass token_end=None"):
        SpTokenizer(trained["no_eos"])
    tokenizer = SpTokenizer(trained["no_eos"], token_end=None)
    assert tokenizer.encode("a cat")[0] == processor(trained["no_eos"]).encode("a cat")


def test_non_str_input():
    tokenizer = SpTokenizer(real_model_path("bpe"))
    for call in (
        lambda: tokenizer.tokenize(b"bytes"),
        lambda: tokenizer.encode(None),
        lambda: tokenizer.encode("a", 3),
        lambda: tokenizer.rematch(["a"], ["▁a"]),
    ):
        with pytest.raises(TypeError, match="must be a str"):
            call()


def test_missing_sentencepiece_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with pytest.raises(ImportError, match=re.escape("pip install nlp4keras[sentencepiece]")):
        SpTokenizer(real_model_path("bpe"))


def test_pickle_round_trip(real):
    tokenizer, _ = real
    text = "Hello wörld, said he."
    copy = pickle.loads(pickle.dumps(tokenizer))
    assert copy.encode(text) == tokenizer.encode(text)
    assert copy.rematch(text, copy.tokenize(text)) == tokenizer.rematch(
        text, tokenizer.tokenize(text)
    )
