"""Whole-word MLM masking measured on a People's Daily sample: the masked
rate, the 80/10/10 split, whole jieba words, special tokens untouched, and
masks fixed by (seed, epoch, index) but new each epoch."""

import numpy as np
import pytest

from nlp4keras.pretraining import MlmExamples, jieba_words, read_documents, whole_word_mask
from nlp4keras.pretraining.masking import example_rng

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only


@pytest.fixture(scope="module")
def mlm(sample_shards, vocab):
    return MlmExamples(sample_shards, vocab, maxlen=128, seed=7)


@pytest.fixture(scope="module")
def epoch0(mlm):
    (token_ids, segment_ids), labels = mlm.batch(range(len(mlm)), epoch=0)
    return token_ids, segment_ids, labels


def original_ids(mlm, token_ids, labels):
    """The unmasked sequences: labels where chosen, the inputs elsewhere."""
    return np.where(labels != 0, labels, token_ids)


def test_masked_rate_is_fifteen_percent(mlm, vocab, epoch0):
    token_ids, _, labels = epoch0
    original = original_ids(mlm, token_ids, labels)
    maskable = ~vocab.is_special[original]  # content tokens, not [CLS]/[SEP]/[PAD]/[UNK]
    chosen = labels != 0
    rate = chosen.sum() / maskable.sum()
    assert 0.14 <= rate <= 0.16, rate
    assert chosen.sum() > 20_000  # a sample large enough for the checks below


def test_chosen_tokens_split_80_10_10(mlm, vocab, epoch0):
    token_ids, _, labels = epoch0
    chosen = labels != 0
    inputs, originals = token_ids[chosen], labels[chosen]
    masked = inputs == vocab.mask_id
    kept = inputs == originals
    replaced = ~masked & ~kept
    shares = [masked.mean(), replaced.mean(), kept.mean()]
    assert np.allclose(shares, [0.8, 0.1, 0.1], atol=0.02), shares
    assert not vocab.is_special[inputs[replaced]].any()  # random tokens are never special
    # random replacements spread over the vocab, not a few ids
    assert len(np.unique(inputs[replaced])) > 0.5 * replaced.sum()


def test_special_tokens_are_never_chosen(mlm, vocab, epoch0):
    token_ids, segment_ids, labels = epoch0
    original = original_ids(mlm, token_ids, labels)
    assert not (labels[vocab.is_special[original]]).any()
    assert not vocab.is_special[labels[labels != 0]].any()
    assert (token_ids[:, 0] == vocab.cls_id).all() and (segment_ids == 0).all()
    lengths = (token_ids != vocab.pad_id).sum(axis=1)
    assert (token_ids[np.arange(len(lengths)), lengths - 1] == vocab.sep_id).all()


def segmenter_word_ids(sample_file, vocab, shard_sizes):
    """For each shard, the index of the jieba word holding each token's first
    char, recomputed from the text (not from the shard's word-start flags)."""
    word_ids, words_before = [], 0
    for text in read_documents([sample_file]):
        words = jieba_words(text)
        word_chars = np.cumsum([0] + [len(w) for w in words])
        tokens = vocab.tokenizer.tokenize(text)[1:-1]
        first_chars = [span[0] for span in vocab.tokenizer.rematch(text, tokens)]
        word_ids += list(words_before + np.searchsorted(word_chars, first_chars, "right") - 1)
        words_before += len(words)
    return np.split(np.array(word_ids), np.cumsum(shard_sizes)[:-1])


def test_words_are_chosen_whole(mlm, vocab, sample_file, epoch0):
    _, _, labels = epoch0
    shards = mlm.shards
    word_ids = segmenter_word_ids(sample_file, vocab, [len(s.tokens) for s in shards])
    assert [len(w) for w in word_ids] == [len(s.tokens) for s in shards]
    chosen_words = multi_token_words = 0
    for index in range(len(mlm)):
        start, end = mlm.starts[index], mlm.ends[index]
        words = word_ids[mlm.shard_of[index]][start:end]
        words = words - words[0]
        chosen = labels[index, 1 : 1 + end - start] != 0
        tokens_per_word = np.bincount(words)
        chosen_per_word = np.bincount(words, weights=chosen, minlength=len(tokens_per_word))
        partly = (chosen_per_word > 0) & (chosen_per_word < tokens_per_word)
        assert not partly.any(), f"example {index}: words {np.flatnonzero(partly)} cut"
        chosen_words += (chosen_per_word > 0).sum()
        multi_token_words += ((chosen_per_word > 0) & (tokens_per_word > 1)).sum()
    assert multi_token_words > 0.3 * chosen_words  # jieba's multi-character words are there


def test_masks_are_fixed_by_seed_and_new_each_epoch(mlm, sample_shards, vocab, epoch0):
    again = MlmExamples(sample_shards, vocab, maxlen=128, seed=7)
    (token_ids, _), labels = again.batch(range(len(again)), epoch=0)
    assert np.array_equal(token_ids, epoch0[0]) and np.array_equal(labels, epoch0[2])
    (next_ids, _), next_labels = mlm.batch(range(len(mlm)), epoch=1)
    differs = (next_labels != epoch0[2]).any(axis=1)
    long = (epoch0[0] != vocab.pad_id).sum(axis=1) >= 20  # short lines have few masks to draw
    assert differs[long].mean() > 0.98  # dynamic masking: examples masked anew
    # the same text underneath
    assert np.array_equal(original_ids(mlm, next_ids, next_labels), original_ids(mlm, *epoch0[::2]))
    other_seed = MlmExamples(sample_shards, vocab, maxlen=128, seed=8)
    other_labels = other_seed.batch(range(len(mlm)))[1]
    assert (other_labels != epoch0[2]).any(axis=1)[long].mean() > 0.98


def test_fake_segmenter_words_are_masked_whole(vocab):
    rng = np.random.default_rng(0)
    ids = rng.choice(vocab.replacement_ids, 3000)
    starts = np.zeros(3000, np.uint8)
    starts[::3] = 1  # words of three tokens
    input_ids, labels = whole_word_mask(ids, starts, vocab, example_rng(0, 0, 0))
    chosen = (labels != 0).reshape(-1, 3)
    assert set(chosen.sum(axis=1)) == {0, 3}
    assert abs(chosen.mean() - 0.15) < 0.01
    assert np.array_equal(labels[labels != 0], ids[labels != 0])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(maxlen=2), "`maxlen` must be an integer >= 3"),
        (dict(rate=0), "`rate` must be a finite real number > 0"),
        (dict(mask_fraction=0.9, random_fraction=0.2), "`random_fraction`"),
        (dict(seed=-1), "`seed`"),
    ],
)
def test_bad_arguments_are_named(sample_shards, vocab, arguments, message):
    with pytest.raises(ValueError, match=message):
        MlmExamples(sample_shards, vocab, **arguments)
