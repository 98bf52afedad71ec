"""WordPiece `Tokenizer` against Hugging Face `tokenizers` (Rust BertWordPiece,
same vocab, lowercasing and accent stripping) on ~59k real lines of Chinese and
English text (tests/real_text.py), for the bert-base-chinese vocab and
MiniLM's uncased English vocab: ids, batch encoding and character offsets."""

import numpy as np
import pytest
from real_text import ASSETS, real_lines

from nlp4keras.tokenizers import Tokenizer

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

VOCABS = {
    "bert_chinese": ASSETS / "bert_chinese" / "vocab.txt",
    "minilm": ASSETS / "minilm" / "vocab.txt",
}
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _has_cjk(line):
    return any("\u4e00" <= ch <= "\u9fff" for ch in line)


@pytest.fixture(scope="module")
def lines():
    # HF keeps "[MASK]" typed in text whole (an added token); bert4keras splits it.
    found = [line for line in real_lines() if not any(t in line for t in SPECIAL_TOKENS)]
    mixed = [
        line for line in found if _has_cjk(line) and any(c.isascii() and c.isalpha() for c in line)
    ]
    assert len(found) > 50_000 and len(mixed) > 5_000, (len(found), len(mixed))
    return found


def _pair(name):
    import tokenizers as hf_tokenizers

    vocab = str(VOCABS[name])
    if not VOCABS[name].is_file():
        pytest.fail(f"{vocab} is missing: run `make assets`")
    # HF turns words over 100 chars into [UNK]; our default (bert4keras') is 200.
    ours = Tokenizer(vocab, do_lower_case=True, word_maxlen=100)
    return ours, hf_tokenizers.BertWordPieceTokenizer(vocab, lowercase=True)


@pytest.mark.parametrize("name", sorted(VOCABS))
def test_ids_equal_hf_on_real_text(lines, name):
    ours, hf = _pair(name)
    expected = [encoding.ids for encoding in hf.encode_batch(lines)]
    actual = [ours.encode(line)[0] for line in lines]
    differ = [i for i, (a, e) in enumerate(zip(actual, expected)) if a != e]
    assert not differ, f"{len(differ)} of {len(lines)} lines differ, first: {lines[differ[0]]!r}"
    # The padded batch holds the same ids, then padding.
    batch = lines[:3000]
    token_ids, segment_ids = ours.encode_batch(batch)
    assert token_ids.shape == (len(batch), max(map(len, expected[:3000])))
    for row, ids in zip(token_ids, expected):
        np.testing.assert_array_equal(row[: len(ids)], ids)
        assert not row[len(ids) :].any()
    assert not segment_ids.any()


@pytest.mark.parametrize("name", sorted(VOCABS))
def test_offsets_equal_hf_on_real_text(lines, name):
    ours, hf = _pair(name)
    sample = lines[::10]  # every 10th line: rematch is a per-char Python loop
    checked = 0
    for begin in range(0, len(sample), 500):
        batch = sample[begin : begin + 500]
        token_ids, _, offsets = ours.encode_batch(batch, return_offsets=True)
        for row, encoding in enumerate(hf.encode_batch(batch)):
            n = len(encoding.ids)
            # [CLS], [SEP] and [UNK] are (0, 0) in ours; compare the rest.
            known = token_ids[row, :n] != ours._token_unk_id
            known[[0, n - 1]] = False
            expected = np.array(encoding.offsets, dtype=np.int32)
            np.testing.assert_array_equal(offsets[row, :n][known], expected[known])
            assert not offsets[row, n:].any()
            checked += int(known.sum())
    assert checked > 100_000
