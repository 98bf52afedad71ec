"""LM packing and UniLM splitting against their definitions, and the
document chunks MLM and UniLM examples are cut from."""

import numpy as np
import pytest

from nlp4keras.pretraining import LmExamples, UnilmExamples, document_chunks

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only


def token_stream(shard, sep_id):
    """A shard's documents end to end, each followed by [SEP] (the definition)."""
    parts = []
    for d in range(shard.n_documents):
        parts += [shard.document(d)[0], [sep_id]]
    return np.concatenate(parts).astype(np.int64)


@pytest.mark.parametrize("maxlen", [64, 100])
def test_lm_blocks_pack_the_stream(sample_shards, vocab, maxlen):
    lm = LmExamples(sample_shards, vocab, maxlen=maxlen)
    assert len(sample_shards) == 2
    first_block = 0
    for shard in sample_shards:
        stream = token_stream(shard, vocab.sep_id)
        n_blocks = -(-len(stream) // maxlen)
        blocks = [lm.example(i) for i in range(first_block, first_block + n_blocks)]
        first_block += n_blocks
        inputs = np.stack([b[0] for b in blocks])
        labels = np.stack([b[1] for b in blocks])
        rest = len(stream) - (n_blocks - 1) * maxlen  # tokens in the last block
        # every block is maxlen stream tokens but the last, padded with [PAD]
        assert (inputs[:-1] != vocab.pad_id).all()
        assert (inputs[-1, :rest] != vocab.pad_id).all() and (inputs[-1, rest:] == 0).all()
        assert np.array_equal(np.concatenate([*inputs[:-1], inputs[-1, :rest]]), stream)
        # labels: the stream shifted by one; 0 after the stream's last token
        flat_labels = labels.reshape(-1)[: len(stream)]
        assert np.array_equal(flat_labels[:-1], stream[1:]) and flat_labels[-1] == 0
        assert (labels[-1, rest - 1 :] == 0).all()
    assert first_block == len(lm)


def test_lm_batch_is_inputs_and_labels(sample_shards, vocab):
    lm = LmExamples(sample_shards, vocab, maxlen=32)
    inputs, labels = lm.batch([5, 2, 9])
    assert inputs.shape == labels.shape == (3, 32) and inputs.dtype == np.int32
    assert np.array_equal(inputs[1], lm.example(2)[0])


def test_unilm_splits_source_and_target(sample_shards, vocab):
    maxlen = 64
    unilm = UnilmExamples(sample_shards, vocab, maxlen=maxlen, seed=3)
    cls, sep = vocab.cls_id, vocab.sep_id
    splits = []
    for index in range(0, len(unilm), 7):
        token_ids, segment_ids, labels = unilm.example(index, epoch=0)
        shard = unilm.shards[unilm.shard_of[index]]
        chunk = shard.tokens[unilm.starts[index] : unilm.ends[index]]
        n, s = len(chunk), unilm.split_point(index, epoch=0)
        assert 2 <= n <= maxlen - 3 and 1 <= s <= n - 1
        splits.append(s / n)
        expected = np.concatenate([[cls], chunk[:s], [sep], chunk[s:], [sep]])
        length = len(expected)
        assert np.array_equal(token_ids[:length], expected) and (token_ids[length:] == 0).all()
        assert (segment_ids[: s + 2] == 0).all() and (segment_ids[s + 2 : length] == 1).all()
        assert (segment_ids[length:] == 0).all()
        # the loss is on the target and its [SEP], each predicted from the token before
        target = np.concatenate([chunk[s:], [sep]])
        assert np.array_equal(labels[s + 1 : length - 1], target)
        assert (labels[: s + 1] == 0).all() and (labels[length - 1 :] == 0).all()
    # split points spread over the chunk, and move between epochs
    assert 0.4 < np.mean(splits) < 0.6 and min(splits) < 0.1 and max(splits) > 0.9
    moved = [unilm.split_point(i, 0) != unilm.split_point(i, 1) for i in range(200)]
    assert np.mean(moved) > 0.5


def test_document_chunks_cut_at_word_starts(sample_shards):
    shard = sample_shards[0]
    starts, ends = document_chunks(shard, 30)
    lengths = ends - starts
    assert lengths.max() <= 30 and lengths.min() >= 1
    # the chunks tile the documents: no token lost or repeated
    assert np.array_equal(np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]),
                          np.arange(len(shard.tokens)))  # fmt: skip
    assert shard.word_starts[starts].all()  # every chunk starts a word
    document_starts = set(np.asarray(shard.offsets[:-1]).tolist())
    inner = [a for a in starts if a not in document_starts]
    assert len(inner) > 100  # long documents were cut
    kept_long = document_chunks(shard, 30, min_tokens=10)[0]
    assert len(kept_long) < len(starts)


@pytest.mark.parametrize("examples", [LmExamples, UnilmExamples])
def test_bad_maxlen_is_named(sample_shards, vocab, examples):
    with pytest.raises(ValueError, match="`maxlen` must be an integer >="):
        examples(sample_shards, vocab, maxlen=0)
    with pytest.raises(TypeError, match="`maxlen`"):
        examples(sample_shards, vocab, maxlen="64")
