"""`PretrainingDataset`: batches of examples for Keras `fit` on any backend,
shuffled anew each epoch, with the examples' masks and splits drawn anew
each epoch too. In a multi-process JAX job (`initialize_multi_process`)
each process yields only its own rows of every global batch, the rows
Keras' JAX trainer expects from it when it assembles the global batch."""

import keras
import numpy as np

from nlp4keras import validation


class PretrainingDataset(keras.utils.PyDataset):
    """Batches `(inputs, labels)` of numpy arrays from `examples`
    (`MlmExamples`, `LmExamples` or `UnilmExamples`), as their `batch` makes
    them (`MlmExamples` with max_predictions: the masked positions too).

    Epoch e visits the examples in the order `permutation(seed, e)` (or in
    order with shuffle=False); batch i of epoch e is the same in every run,
    so a run resumes exactly with `epoch=`. Keras calls `on_epoch_end` after
    each epoch, which moves to the next (Keras 3's fit also calls it once
    after reading a first batch to build the model: fit's first epoch is
    then `epoch + 1`, the same in every run). The last, shorter batch is dropped
    with drop_remainder=True (one batch shape: one JAX compilation).
    `workers`, `use_multiprocessing`, `max_queue_size` go to PyDataset.

    `batch_size` is the global batch (b rows). In a job of several
    processes, process p of n (`process_index`, `process_count`) yields rows
    [p * b / n, (p + 1) * b / n) of each batch: together they feed exactly
    the batches of one process. Both None (default): this process' part
    under the `keras.distribution` set when the dataset is built (so build
    it after `set_distribution`), (0, 1) with none or one process. For `fit`
    over several processes also set `distribution.auto_shard_dataset =
    False`: Keras refuses other data than tf.data, which it splits itself."""

    def __init__(self, examples, batch_size=32, shuffle=True, seed=0, epoch=0,
                 drop_remainder=False, process_index=None, process_count=None,
                 **kwargs):  # fmt: skip
        who = "PretrainingDataset"
        super().__init__(**kwargs)
        if not (hasattr(examples, "batch") and hasattr(examples, "__len__")):
            validation.instance(examples, "examples", (), who, what="MlmExamples, LmExamples "
                                "or UnilmExamples")  # fmt: skip
        self.examples = examples
        self.batch_size = validation.integer(batch_size, "batch_size", who, minimum=1)
        self.shuffle = validation.boolean(shuffle, "shuffle", who)
        self.seed = validation.integer(seed, "seed", who, minimum=0)
        self.epoch = validation.integer(epoch, "epoch", who, minimum=0)
        self.drop_remainder = validation.boolean(drop_remainder, "drop_remainder", who)
        if drop_remainder and len(examples) < self.batch_size:
            raise ValueError(
                f"{who}: {len(examples)} examples make no full batch of {self.batch_size}"
            )
        self.process_index, self.process_count = _checked_share(
            process_index, process_count, self.batch_size, len(examples), drop_remainder, who
        )
        self._order_epoch, self._order = None, None

    def __len__(self):
        whole, rest = divmod(len(self.examples), self.batch_size)
        return whole + (1 if rest and not self.drop_remainder else 0)

    def order(self, epoch):
        """The example indices of `epoch`, in the order they are batched."""
        if self._order_epoch != epoch:
            n = len(self.examples)
            rng = np.random.default_rng([self.seed, epoch, 2**32])  # apart from examples' seeds
            self._order = rng.permutation(n) if self.shuffle else np.arange(n)
            self._order_epoch = epoch
        return self._order

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"PretrainingDataset: batch {index} of {len(self)}")
        return self.epoch_batch(self.epoch, index)

    def epoch_batch(self, epoch, index):
        """`(inputs, labels)`: this process' rows of batch `index` of `epoch`."""
        indices = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        part = len(indices) // self.process_count  # the last batch too divides evenly
        own = indices[self.process_index * part : (self.process_index + 1) * part]
        return self.examples.batch(own, epoch)

    def on_epoch_end(self):
        self.epoch += 1


def _process_share():
    """`(process_index, process_count)`: this process' part of every global
    batch under the current `keras.distribution`, the split Keras itself
    gives a tf.data dataset. Process p of n feeds part p of n when each
    process holds whole model replicas (data parallel); where a replica
    spans several processes, those processes feed the same part (one per
    replica). (0, 1) with no distribution or one process. Devices are
    assumed in `keras.distribution.list_devices()` order (by process)."""
    distribution = keras.distribution.distribution()
    processes = getattr(distribution, "num_processes", 1)
    if processes <= 1:
        return 0, 1
    return distribution.data_shard_id, min(distribution.num_model_replicas, processes)


def _checked_share(index, count, batch_size, examples, drop_remainder, who):
    """The (process_index, process_count) to use; the batches must split evenly."""
    if (index is None) != (count is None):
        raise ValueError(f"{who}: give both `process_index` and `process_count`, or neither")
    source = ""
    if count is None:
        (index, count), source = _process_share(), " (from keras.distribution)"
    else:
        count = validation.integer(count, "process_count", who, minimum=1)
        index = validation.integer(index, "process_index", who, minimum=0, below=count)
    if batch_size % count:
        raise ValueError(
            f"{who}: `batch_size` ({batch_size}) must be a multiple of `process_count` "
            f"({count}){source}: each process feeds batch_size / process_count rows"
        )
    rest = examples % batch_size
    if rest % count and not drop_remainder:
        raise ValueError(
            f"{who}: the last batch has {rest} examples, not a multiple of `process_count` "
            f"({count}){source}; pass drop_remainder=True"
        )
    return index, count
