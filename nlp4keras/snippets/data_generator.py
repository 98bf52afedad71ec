"""`DataGenerator`: the bert4keras base class for batch generators, usable
with Keras 3 `model.fit` on every backend, with optional length bucketing."""

import itertools
import threading
from collections.abc import Mapping

import keras
import numpy as np

from nlp4keras import validation


class DataGenerator:
    """Base class for batch generators: subclasses write `__iter__(random=False)`
    yielding batches, usually from `self.sample(random)`:

        class data_generator(DataGenerator):
            def __iter__(self, random=False):
                batch_token_ids, batch_labels = [], []
                for is_end, (text, label) in self.sample(random):
                    batch_token_ids.append(tokenizer.encode(text)[0])
                    batch_labels.append([label])
                    if len(batch_token_ids) == self.batch_size or is_end:
                        yield sequence_padding(batch_token_ids), np.array(batch_labels)
                        batch_token_ids, batch_labels = [], []

        model.fit(gen.forfit(), steps_per_epoch=len(gen), epochs=...)

    `data` is a list (anything with a length and indexing) or any iterable.
    `len(gen)` is the number of batches per epoch. For data without a length,
    `sample(random=True)` shuffles inside a buffer of `buffer_size` items
    (default `batch_size * 1000`).

    Length bucketing: with `length_fn` (item -> length), `sample(random=True)`
    sorts the shuffled items by length inside windows of `sort_window`
    batches and shuffles the order of the batches in each window, so every
    batch holds items of similar length. Pair it with
    `sequence_padding(..., length_buckets=...)` in `__iter__`: less padding,
    and a bounded set of batch shapes for JAX to compile.
    """

    def __init__(self, data, batch_size=32, buffer_size=None, length_fn=None, sort_window=100):
        who = type(self).__name__
        _check_data(data, who)
        batch_size = validation.integer(batch_size, "batch_size", who, minimum=1)
        sort_window = validation.integer(sort_window, "sort_window", who, minimum=1)
        buffer_size = validation.optional_integer(buffer_size, "buffer_size", who, minimum=1)
        self.length_fn = validation.callable_or_none(length_fn, "length_fn", who)
        self.data = data
        self.batch_size = batch_size
        self.buffer_size = buffer_size or batch_size * 1000
        self.sort_window = sort_window
        # bert4keras attribute: batches per epoch, None for data without a length
        self.steps = -(-len(data) // batch_size) if hasattr(data, "__len__") else None

    def __len__(self):
        if self.steps is None:
            raise TypeError(
                "len() needs data with a length; this DataGenerator wraps an iterable "
                "without one: pass steps_per_epoch to fit yourself"
            )
        return self.steps

    def sample(self, random=False):
        """Yield `(is_end, item)` over one epoch; `is_end` is True for the last
        item. With `random`, the items come shuffled (and length-sorted within
        windows when `length_fn` is set)."""
        random = validation.boolean(random, "random", f"{type(self).__name__}.sample")
        if not random:
            return _with_end_flags(iter(self.data))
        items = self._shuffled()
        if self.length_fn is not None:
            items = self._length_sorted(items)
        return _with_end_flags(items)

    def __iter__(self, random=False):
        raise NotImplementedError(
            f"{type(self).__name__} must define __iter__(self, random=False) yielding batches"
        )

    def forfit(self, random=True):
        """Batches forever, epoch after epoch: for `model.fit(..., steps_per_epoch=len(gen))`.

        On the TensorFlow backend this is a `tf.data.Dataset` over the same
        batches that declares every dimension variable except those of size 1
        in the first batch (labels shaped [batch, 1]): Keras would fix each
        dimension of a plain generator from its first two batches, and a later
        batch of another length would fail."""
        random = validation.boolean(random, "random", f"{type(self).__name__}.forfit")
        return _for_keras(self._forever(random))

    def _forever(self, random):
        while True:
            empty = True
            for batch in self.__iter__(random):
                empty = False
                yield batch
            if empty:
                raise ValueError(f"{type(self).__name__} yielded no batches for an epoch")

    def fortest(self, random=False):
        """Like `forfit`, but only the inputs, as `model.predict(gen.fortest(),
        steps=len(gen))` takes them: `(batch[0],)` (Keras 3 wants a tuple;
        bert4keras yielded `batch[0]`)."""
        random = validation.boolean(random, "random", f"{type(self).__name__}.fortest")
        return _for_keras((batch[0],) for batch in self._forever(random))

    def to_pydataset(self, random=True, **kwargs):
        """A `keras.utils.PyDataset` holding one epoch of batches at a time.

        Each epoch's batches are built from `__iter__(random)` when Keras first
        asks for them and dropped at the epoch's end, so one epoch must fit in
        memory; a fresh, reshuffled epoch follows. `kwargs` (workers,
        use_multiprocessing, max_queue_size) go to `PyDataset`. On TensorFlow,
        Keras fixes a PyDataset's shapes from its first two batches: use
        `forfit()` there when batch shapes vary."""
        random = validation.boolean(random, "random", f"{type(self).__name__}.to_pydataset")
        return _EpochDataset(self, random, **kwargs)

    def to_dataset(self, types, shapes, names=None, padded_batch=False):
        """An endless `tf.data.Dataset` of batches (TensorFlow backend only),
        as in bert4keras: here `__iter__(random)` yields one sample at a time,
        e.g. `yield [token_ids, segment_ids], [label]`, and TensorFlow
        batches `batch_size` shuffled samples.

        `types` gives each tensor's dtype and `shapes` its shape (None for a
        variable size), nested like the samples. `names` turns the samples
        into dicts for inputs/outputs named like the model's layers: a str
        names the whole sample, a tuple of str its parts, and a tuple of
        tuples the parts of each part. With `padded_batch=True`, each batch
        is padded with zeros to the longest sample (where the shape has None).
        One change from bert4keras: a target part named by one name (below,
        `('Probas',)`) stays a tensor, not a one-key dict, because Keras 3
        matches targets by name only for models with several outputs.

            dataset = gen.to_dataset(
                types=[('float32', 'float32'), ('float32',)],
                shapes=[([None], [None]), ([1],)],
                names=[('Input-Token', 'Input-Segment'), ('Probas',)],
                padded_batch=True,
            )
            model.fit(dataset, steps_per_epoch=len(gen), epochs=10)

        On JAX and PyTorch this raises RuntimeError: yield batches from
        `__iter__` and use `forfit()`."""
        from nlp4keras.snippets.tf_dataset import to_dataset

        return to_dataset(self, types, shapes, names, padded_batch)

    def _shuffled(self):
        if self.steps is None:
            return self._buffer_shuffled()
        data = self.data
        if isinstance(data, Mapping) or not hasattr(data, "__getitem__"):
            data = list(data)
        return (data[i] for i in np.random.permutation(len(data)))

    def _buffer_shuffled(self):
        """Shuffle a stream: keep a buffer of items, emit one at random as each
        new item arrives, then drain the buffer in random order."""
        buffer = []
        for item in self.data:
            if len(buffer) < self.buffer_size:
                buffer.append(item)
                continue
            k = np.random.randint(len(buffer))
            yield buffer[k]
            buffer[k] = item
        while buffer:
            k = np.random.randint(len(buffer))
            buffer[k], buffer[-1] = buffer[-1], buffer[k]
            yield buffer.pop()

    def _length_sorted(self, items):
        """Sort windows of `sort_window` batches by length; yield the batches
        of each window in random order. Only the epoch's last window can end
        with a short batch, and it stays last, so batch boundaries line up
        with the subclass's `len(batch) == batch_size or is_end` rule."""
        window_size = self.batch_size * self.sort_window
        window = []
        for item in items:
            window.append(item)
            if len(window) == window_size:
                yield from self._sorted_batches(window)
                window = []
        yield from self._sorted_batches(window)

    def _sorted_batches(self, window):
        window.sort(key=self.length_fn)
        size = self.batch_size
        batches = [window[i : i + size] for i in range(0, len(window), size)]
        short = batches.pop() if batches and len(batches[-1]) < size else None
        for k in np.random.permutation(len(batches)):
            yield from batches[k]
        if short:
            yield from short


class _EpochDataset(keras.utils.PyDataset):
    """`DataGenerator.to_pydataset`: one materialised epoch of batches."""

    def __init__(self, generator, random, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.random = random
        self._batches = None
        self._served = False  # whether Keras has read a batch of this epoch
        self._lock = threading.Lock()  # Keras may index from several threads

    def _epoch(self):
        with self._lock:
            if self._batches is None:
                self._batches = list(self.generator.__iter__(self.random))
            return self._batches

    def __len__(self):
        return len(self._epoch())

    def __getitem__(self, index):
        batches = self._epoch()
        self._served = True
        return batches[index]

    def on_epoch_end(self):
        # Keras also calls this before the first epoch, after counting the
        # batches: an epoch nobody has read from yet is kept, not rebuilt.
        with self._lock:
            if self._served:
                self._batches, self._served = None, False


def _for_keras(batches):
    """Batches as Keras takes them on the backend in use (see `forfit`)."""
    if keras.backend.backend() == "tensorflow":
        return _variable_shape_dataset(batches)
    return batches


PEEKED_BATCHES = 8  # batches looked at to tell fixed size-1 dimensions from lengths


def _variable_shape_dataset(batches):
    """A tf.data.Dataset of the generator's batches (lists made tuples). Each
    tensor's rank and dtype are those of the first batch; a dimension is 1
    where it is 1 in each of the first PEEKED_BATCHES batches (labels [B, 1]:
    Keras' losses need that static size), variable otherwise (lengths; a
    batch of one-token sequences first no longer fixes the length to 1)."""
    import tensorflow as tf

    first = [_as_tuples(batch) for batch in itertools.islice(batches, PEEKED_BATCHES)]
    if not first:
        raise ValueError("forfit: the generator yielded no batch")

    def spec(*arrays):
        shapes = [np.shape(array) for array in arrays]
        shape = [None] + [
            1 if all(len(s) == len(shapes[0]) and s[axis] == 1 for s in shapes) else None
            for axis in range(1, len(shapes[0]))
        ]
        shape = shape[: len(shapes[0])]  # a scalar (or None: no labels) has rank 0
        return tf.TensorSpec(shape, tf.as_dtype(np.asarray(arrays[0]).dtype))

    def generate():  # peeked batches once (tf.data calls this again per epoch)
        while first:
            yield first.pop(0)
        for batch in batches:
            yield _as_tuples(batch)

    signature = keras.tree.map_structure(spec, *first)
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _as_tuples(batch):
    """A batch with lists made tuples and trailing None parts dropped: tf.data
    cannot carry None, and Keras reads (x,) as (x, None) (no labels: a model
    that adds its own loss)."""
    batch = keras.tree.lists_to_tuples(batch)
    if isinstance(batch, tuple):
        while batch and batch[-1] is None:
            batch = batch[:-1]
    return batch


def _with_end_flags(items):
    """`(is_end, item)` pairs; nothing for an empty iterator."""
    try:
        current = next(items)
    except StopIteration:
        return
    for upcoming in items:
        yield False, current
        current = upcoming
    yield True, current


def _check_data(data, who):
    """`data` must hold items: a list or another iterable (not a str, which
    would be read one character at a time: pass the items, not a file name)."""
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        what = "a list or an iterable of items (not a str: pass the items, not a file name)"
        validation.instance(data, "data", (), who, what=what)
