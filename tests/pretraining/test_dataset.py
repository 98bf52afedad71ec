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
