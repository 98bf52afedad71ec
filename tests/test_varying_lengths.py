"""Training on batches whose length varies, as bert4keras scripts feed them
(`DataGenerator.forfit`). TensorFlow traces `fit`/`evaluate` once with the
sequence length unknown (None), so every loss, layer and optimizer must work
without a static length there; JAX and torch see static shapes.

Each check compares what Keras reports with the same quantity computed
batch by batch, eagerly."""

import keras
import numpy as np
import pytest
from keras import ops

from nlp4keras.layers import ConditionalRandomField, GlobalPointer, Loss
from nlp4keras.losses import sparse_global_pointer_crossentropy
from nlp4keras.optimizers import AdaFactor, Adam, AdaX, Lion, extend_with_weight_decay
from nlp4keras.snippets import DataGenerator, sequence_padding

VOCAB = 12
LENGTHS = (1, 5, 3, 7)  # one batch per length; a length-1 batch included


class Batches(DataGenerator):
    """One batch of 4 rows per item of `data`: (ids [4, length], labels)."""

    def __init__(self, data, labels_fn):
        super().__init__(data, batch_size=1)
        self.labels_fn = labels_fn

    def __iter__(self, random=False):
        for length in self.data:
            rng = np.random.default_rng(length)
            ids = rng.integers(1, VOCAB, size=(4, length)).astype("int32")
            yield ids, self.labels_fn(ids)


def assert_reported_mean(model, batches, loss_of_batch):
    """evaluate() over the varying batches = the mean of the eager per-batch losses."""
    reported = model.evaluate(batches.forfit(random=False), steps=len(batches), verbose=0)
    reported = reported[0] if isinstance(reported, list) else reported
    direct = np.mean([loss_of_batch(ids, labels) for ids, labels in batches])
    np.testing.assert_allclose(reported, direct, rtol=1e-5)


def test_crf_loss_on_varying_lengths():
    ids = keras.Input((None,), dtype="int32")
    scores = keras.layers.Dense(3)(keras.layers.Embedding(VOCAB, 8, mask_zero=True)(ids))
    crf = ConditionalRandomField()
    model = keras.Model(ids, crf(scores))
    model.compile(optimizer=Adam(1e-3), loss=crf.sparse_loss)
    batches = Batches(LENGTHS, lambda ids: (ids % 3).astype("int32"))

    def loss_of_batch(ids, labels):
        return float(ops.mean(crf.sparse_loss(labels, model(ids))))

    assert_reported_mean(model, batches, loss_of_batch)
    history = model.fit(batches.forfit(), steps_per_epoch=len(batches), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def entity_labels(ids):
    """[batch, 1 head, 2 entities, (start, end)]: spans from the ids, padded with (0, 0)."""
    length = ids.shape[1]
    spans = [[[(0, int(row[0]) % length), (0, 0)]] for row in ids]
    return sequence_padding(np.array(spans, "int32"))


def test_global_pointer_sparse_loss_on_varying_lengths():
    ids = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(VOCAB, 8, mask_zero=True)(ids)
    model = keras.Model(ids, GlobalPointer(heads=1, head_size=4)(hidden))
    model.compile(optimizer=Adam(1e-3), loss=sparse_global_pointer_crossentropy)
    batches = Batches(LENGTHS, entity_labels)

    def loss_of_batch(ids, labels):
        return float(ops.mean(sparse_global_pointer_crossentropy(labels, model(ids))))

    assert_reported_mean(model, batches, loss_of_batch)


class OneHotLookup(keras.layers.Layer):
    """An embedding lookup as one_hot(ids) @ table: its gradient is dense on every backend."""

    def __init__(self, table, **kwargs):
        super().__init__(**kwargs)
        self.table = self.add_weight(
            shape=table.shape, initializer=keras.initializers.Constant(table), name="table"
        )

    def call(self, ids):
        return ops.matmul(ops.one_hot(ids, self.table.shape[0]), self.table)


def weight_decay_adam(**kwargs):
    return extend_with_weight_decay(Adam)(weight_decay_rate=0.01, **kwargs)


@pytest.mark.parametrize("make_optimizer", [Adam, AdaX, AdaFactor, Lion, weight_decay_adam])
def test_optimizers_update_embeddings_like_dense_lookups(make_optimizer):
    """TensorFlow hands an Embedding's gradient to the optimizer as sparse
    IndexedSlices: the update must equal that of the same lookup done densely."""
    table = np.random.default_rng(0).normal(size=(VOCAB, 4)).astype("float32")
    ids = np.random.default_rng(1).integers(0, 6, size=(8, 5)).astype("int32")
    targets = np.random.default_rng(2).normal(size=(8, 1)).astype("float32")

    def trained(lookup):
        inputs = keras.Input((None,), dtype="int32")
        pooled = keras.layers.GlobalAveragePooling1D()(lookup(inputs))
        dense = keras.layers.Dense(1, kernel_initializer="ones")
        model = keras.Model(inputs, dense(pooled))
        model.compile(optimizer=make_optimizer(learning_rate=0.1), loss="mse")
        model.fit(ids, targets, batch_size=4, epochs=2, shuffle=False, verbose=0)
        return [ops.convert_to_numpy(w) for w in model.weights]

    constant = keras.initializers.Constant(table)
    sparse = trained(keras.layers.Embedding(VOCAB, 4, embeddings_initializer=constant))
    dense = trained(OneHotLookup(table))
    assert not np.allclose(sparse[0], table)  # the rows that were looked up moved
    for a, b in zip(sparse, dense, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class MeanSquare(Loss):
    """Adds mean(x^2) as the model's loss (bert4keras' seq2seq/MLM idiom: no labels)."""

    def compute_loss(self, inputs, mask=None):
        return ops.mean(ops.square(inputs))


def test_batches_without_labels_train_a_model_that_adds_its_loss():
    """bert4keras scripts yield `[token_ids, segment_ids], None`: tf.data cannot carry None."""
    ids, segments = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(VOCAB, 4)(ids) + keras.layers.Embedding(2, 4)(segments)
    model = keras.Model([ids, segments], MeanSquare()(hidden))
    model.compile(optimizer=Adam(1e-2))

    class WithSegments(Batches):
        def __iter__(self, random=False):
            for ids, labels in super().__iter__(random):
                yield [ids, ids % 2], labels

    batches = WithSegments(LENGTHS, lambda ids: None)

    def loss_of_batch(inputs, labels):
        return float(ops.mean(ops.square(model(inputs))))

    assert_reported_mean(model, batches, loss_of_batch)
    history = model.fit(batches.forfit(), steps_per_epoch=len(batches), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
