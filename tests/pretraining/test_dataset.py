"""`PretrainingDataset`: the same batches for a seed, a new order and new
masks each epoch, every example once per epoch, and a Keras fit on it."""

import keras
import numpy as np
import pytest

from nlp4keras.pretraining import (
    LmExamples,
    MlmExamples,
    PretrainingDataset,
    open_shards,
    write_shard,
)


def test_batches_are_fixed_by_seed_and_change_by_epoch(sample_shards, vocab):
    def dataset(seed, epoch=0):
        examples = MlmExamples(sample_shards, vocab, maxlen=64, seed=seed)
        return PretrainingDataset(examples, batch_size=16, seed=seed, epoch=epoch)

    first, again = dataset(1), dataset(1)
    for index in (0, 5, len(first) - 1):
        (ids_a, segments_a), labels_a = first[index]
        (ids_b, segments_b), labels_b = again[index]
        assert np.array_equal(ids_a, ids_b) and np.array_equal(labels_a, labels_b)
    assert not np.array_equal(first[0][1], dataset(2)[0][1])
    resumed = dataset(1, epoch=1)
    first.on_epoch_end()  # what Keras calls after an epoch
    assert first.epoch == 1 and np.array_equal(first[3][0][0], resumed[3][0][0])
    assert not np.array_equal(first.order(0), first.order(1))
    assert sorted(first.order(1)) == list(range(len(first.examples)))  # each example once


def test_batch_count_and_remainder(sample_shards, vocab):
    examples = LmExamples(sample_shards, vocab, maxlen=128)
    n = len(examples)
    kept = PretrainingDataset(examples, batch_size=100, shuffle=False)
    dropped = PretrainingDataset(examples, batch_size=100, drop_remainder=True)
    assert len(kept) == -(-n // 100) and len(dropped) == n // 100
    assert kept[len(kept) - 1][0].shape == (n % 100 or 100, 128)
    assert np.array_equal(kept[0][0], examples.batch(range(100))[0])
    with pytest.raises(IndexError):
        kept[len(kept)]
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        PretrainingDataset(examples, batch_size=0)
    with pytest.raises(TypeError, match="`examples` must be MlmExamples"):
        PretrainingDataset([1, 2, 3])


def test_keras_fit_reads_the_dataset(vocab, tmp_path):
    rng = np.random.default_rng(0)
    write_shard(tmp_path, rng.choice(vocab.replacement_ids, 150), np.ones(150), [100, 50], 21128)
    examples = LmExamples(open_shards(tmp_path, vocab.vocab_size), vocab, maxlen=16)
    dataset = PretrainingDataset(examples, batch_size=4, drop_remainder=True)
    model = keras.Sequential([keras.Input((16,), dtype="int32"),
                              keras.layers.Embedding(vocab.vocab_size, 8),
                              keras.layers.Dense(vocab.vocab_size)])  # fmt: skip
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(dataset) == 2 and np.isfinite(history.history["loss"]).all()
    assert dataset.epoch in (2, 3)  # 3 where fit first peeks at a batch in an epoch of its own


def test_each_process_yields_its_rows_of_the_global_batch(sample_shards, vocab):
    examples = MlmExamples(sample_shards, vocab, maxlen=64, seed=1)

    def dataset(**share):
        return PretrainingDataset(examples, batch_size=12, seed=1, epoch=2, drop_remainder=True,
                                  **share)  # fmt: skip

    whole = dataset()  # no distribution: the whole batch
    assert (whole.process_index, whole.process_count) == (0, 1)
    for count in (2, 3, 4):
        parts = [dataset(process_index=p, process_count=count) for p in range(count)]
        for index in (0, len(whole) - 1):
            (ids, segments), labels = whole[index]
            for p, part in enumerate(parts):
                rows = slice(p * 12 // count, (p + 1) * 12 // count)
                (part_ids, part_segments), part_labels = part[index]
                assert part_ids.shape == (12 // count, 64)
                assert np.array_equal(part_ids, ids[rows])  # same order, same masks
                assert np.array_equal(part_segments, segments[rows])
                assert np.array_equal(part_labels, labels[rows])


class _Rows:
    """`n` examples whose batch is their indices."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def batch(self, indices, epoch=0):
        return np.asarray(indices), np.asarray(indices)


def test_batches_must_split_evenly_over_the_processes():
    with pytest.raises(ValueError, match=r"`batch_size` \(10\) must be a multiple of "
                       r"`process_count` \(4\): each process feeds"):  # fmt: skip
        PretrainingDataset(_Rows(40), batch_size=10, process_index=0, process_count=4)
    with pytest.raises(ValueError, match=r"last batch has 6 examples, not a multiple of "
                       r"`process_count` \(4\); pass drop_remainder=True"):  # fmt: skip
        PretrainingDataset(_Rows(30), batch_size=8, process_index=3, process_count=4)
    last = PretrainingDataset(_Rows(30), batch_size=8, process_index=1, process_count=2,
                              shuffle=False)  # fmt: skip
    assert list(last[3][0]) == [27, 28, 29]  # 6 rows left: 3 each
    kept = PretrainingDataset(_Rows(30), batch_size=8, process_index=3, process_count=4,
                              shuffle=False, drop_remainder=True)  # fmt: skip
    assert len(kept) == 3 and list(kept[2][0]) == [22, 23]
    with pytest.raises(ValueError, match=r"`process_index` must be an integer >= 0 and < 2"):
        PretrainingDataset(_Rows(8), batch_size=4, process_index=2, process_count=2)
    with pytest.raises(ValueError, match="give both `process_index` and `process_count`"):
        PretrainingDataset(_Rows(8), batch_size=4, process_count=2)
