"""Tests for nlp4keras.snippets.DataGenerator: epochs of `sample` (every item
once, is_end on the last, shuffled, buffered shuffling for data without a
length), `len`, the bert4keras subclass pattern, `forfit` and `to_pydataset`
inside `model.fit` on the backend under test, and length bucketing (batch
shapes stay within the buckets, batches hold items of similar length)."""

import collections
import itertools

import keras
import numpy as np
import pytest

from nlp4keras.snippets import DataGenerator, sequence_padding

BUCKETS = (8, 16, 32)


class Stream:
    """A re-iterable without a length, like a file read line by line."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


class TokenBatches(DataGenerator):
    """The bert4keras pattern: items are (token_ids, label); batches padded to buckets."""

    def __iter__(self, random=False):
        batch_token_ids, batch_labels = [], []
        for is_end, (token_ids, label) in self.sample(random):
            batch_token_ids.append(token_ids)
            batch_labels.append([label])
            if len(batch_token_ids) == self.batch_size or is_end:
                yield (
                    sequence_padding(batch_token_ids, length_buckets=BUCKETS),
                    np.array(batch_labels),
                )
                batch_token_ids, batch_labels = [], []


def token_data(n, seed=0, maxlen=32):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, maxlen + 1, size=n)
    return [(list(rng.integers(1, 20, size=k)), int(k > maxlen // 2)) for k in lengths]


def epoch(gen, random):
    pairs = list(gen.sample(random))
    flags = [is_end for is_end, _ in pairs]
    assert flags == [False] * (len(pairs) - 1) + [True]
    return [item for _, item in pairs]


def test_len_is_the_number_of_batches():
    assert len(DataGenerator(list(range(10)), batch_size=3)) == 4
    assert len(DataGenerator(list(range(9)), batch_size=3)) == 3
    assert DataGenerator(list(range(1)), batch_size=3).steps == 1
    with pytest.raises(TypeError, match="without one: pass steps_per_epoch"):
        len(DataGenerator(Stream(5)))


def test_sample_in_order():
    assert epoch(DataGenerator(list("abcde")), random=False) == list("abcde")
    assert epoch(DataGenerator(Stream(4)), random=False) == [0, 1, 2, 3]
    assert list(DataGenerator([]).sample()) == []


@pytest.mark.parametrize("data", [list(range(50)), np.arange(50), Stream(50)])
def test_random_sample_gives_every_item_once_per_epoch(data):
    gen = DataGenerator(data, batch_size=4, buffer_size=7)
    orders = [epoch(gen, random=True) for _ in range(4)]
    for order in orders:
        assert sorted(order) == list(range(50))
    assert len({tuple(order) for order in orders}) == 4  # reshuffled each epoch
    assert all(order != list(range(50)) for order in orders)


def test_buffer_shuffle_keeps_items_near_their_position():
    # an item cannot leave the buffer before it enters it: item i comes out
    # at position >= i - buffer_size
    np.random.seed(0)
    gen = DataGenerator(Stream(300), buffer_size=10)
    for _ in range(3):
        order = epoch(gen, random=True)
        assert sorted(order) == list(range(300))
        assert all(position >= item - 10 for position, item in enumerate(order))
        # and it mixes: a successor follows its item about 1 time in 10, not always
        runs = sum(b == a + 1 for a, b in zip(order, order[1:]))
        assert runs < 100
    assert DataGenerator(Stream(3), batch_size=2).buffer_size == 2000  # batch_size * 1000


def test_subclass_batches_and_fortest():
    data = token_data(10)
    gen = TokenBatches(data, batch_size=4)
    batches = list(gen)
    assert [len(labels) for _, labels in batches] == [4, 4, 2] and len(gen) == 3
    for k, (token_ids, labels) in enumerate(batches):
        for row, (ids, _) in zip(token_ids, data[4 * k : 4 * k + 4]):
            assert list(row[: len(ids)]) == ids and not row[len(ids) :].any()
        assert labels[:, 0].tolist() == [label for _, label in data[4 * k : 4 * k + 4]]
    # Two epochs of inputs only, as 1-tuples (a tf.data.Dataset on TensorFlow).
    inputs = [x for (x,) in itertools.islice(gen.fortest(), 6)]
    assert all(np.array_equal(x, token_ids) for x, (token_ids, _) in zip(inputs, batches * 2))


def test_abstract_iter_and_empty_epochs_are_errors():
    with pytest.raises(NotImplementedError, match="must define __iter__"):
        list(DataGenerator([1, 2]))
    with pytest.raises(ValueError, match="yielded no batches"):
        next(TokenBatches([]).forfit())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=0), "`batch_size` must be an integer >= 1, got 0"),
        (dict(buffer_size=0), "`buffer_size` must be an integer >= 1, got 0"),
        (dict(sort_window=0), "`sort_window` must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataGenerator([1], **kwargs)


def test_length_bucketing_bounds_shapes_and_groups_lengths():
    # 195 items: 4 windows of 5 batches, then 4 batches and a short one
    data = token_data(195, seed=1)
    gen = TokenBatches(data, batch_size=8, length_fn=lambda item: len(item[0]), sort_window=5)
    shapes = collections.Counter()
    for _ in range(3):
        batches = list(gen.__iter__(random=True))
        assert len(batches) == len(gen) == 25
        assert [len(labels) for _, labels in batches] == [8] * 24 + [3]  # short batch last
        seen = sorted(
            tuple(int(t) for t in row if t) for token_ids, _ in batches for row in token_ids
        )
        assert seen == sorted(tuple(ids) for ids, _ in data)  # every item once
        shapes.update(token_ids.shape[1] for token_ids, _ in batches)
        # inside each window of 5 batches, batches cover disjoint length ranges
        ranges = [
            (min(lengths), max(lengths))
            for lengths in ([int(np.count_nonzero(row)) for row in t] for t, _ in batches)
        ]
        for start in range(0, len(ranges), 5):
            window = sorted(ranges[start : start + 5])
            assert all(high <= next_low for (_, high), (next_low, _) in zip(window, window[1:]))
    assert set(shapes) <= set(BUCKETS)


def test_length_fn_leaves_ordered_epochs_alone():
    data = token_data(20)
    gen = DataGenerator(data, batch_size=4, length_fn=lambda item: len(item[0]))
    assert epoch(gen, random=False) == data


@pytest.fixture(scope="module")
def tiny_model():
    """One model for both fit tests: JAX compiles each batch shape once."""
    model = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(20, 4),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_forfit_in_model_fit(tiny_model):
    data = token_data(48, maxlen=16)  # padded to 8 or 16
    gen = TokenBatches(data, batch_size=8, length_fn=lambda item: len(item[0]))
    fit = tiny_model.fit
    history = fit(gen.forfit(), steps_per_epoch=len(gen), epochs=2, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 2
    assert np.all(np.isfinite(history.history["loss"]))


class PairBatches(TokenBatches):
    """bert4keras' usual batches: ([token_ids, segment_ids], labels)."""

    def __iter__(self, random=False):
        for token_ids, labels in super().__iter__(random):
            yield [token_ids, (token_ids > 3).astype("int32")], labels


def test_fortest_in_model_predict():
    ids, segments = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(20, 4)(ids) + keras.layers.Embedding(2, 4)(segments)
    probs = keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling1D()(hidden)
    )
    model = keras.Model([ids, segments], probs)
    data = sorted(token_data(20, seed=2, maxlen=16), key=lambda item: len(item[0]))
    gen = PairBatches(data, batch_size=8)
    batches = list(gen)
    assert len({x[0].shape[1] for x, _ in batches}) > 1  # lengths vary
    predicted = model.predict(gen.fortest(), steps=len(gen), verbose=0)
    expected = np.concatenate([keras.ops.convert_to_numpy(model(x)) for x, _ in batches])
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-6)


class RecordingBatches(TokenBatches):
    """Records each epoch of batches it builds."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epochs = []

    def __iter__(self, random=False):
        self.epochs.append([])
        for batch in super().__iter__(random):
            self.epochs[-1].append(batch)
            yield batch


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow",
    reason="TensorFlow: Keras fixes a PyDataset's shapes from its first two batches, so "
    "batches of varying length fail there; forfit() is the TensorFlow path",
)
def test_to_pydataset_in_model_fit(tiny_model):
    data = token_data(48, seed=1, maxlen=16)
    gen = RecordingBatches(data, batch_size=8, length_fn=lambda item: len(item[0]))
    dataset = gen.to_pydataset()
    assert isinstance(dataset, keras.utils.PyDataset) and len(dataset) == len(gen)
    history = tiny_model.fit(dataset, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert np.all(np.isfinite(history.history["loss"]))
    # one epoch built per epoch trained, plus one when Keras peeks at a batch first
    assert len(gen.epochs) in (3, 4)
    for batches in gen.epochs:
        rows = sorted(tuple(int(t) for t in row if t) for x, _ in batches for row in x)
        assert rows == sorted(tuple(ids) for ids, _ in gen.data)  # every item once
    first, second = ([x for x, _ in batches] for batches in gen.epochs[:2])
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))  # reshuffled
