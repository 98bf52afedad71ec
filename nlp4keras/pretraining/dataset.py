"""`PretrainingDataset`: batches of examples for Keras `fit` on any backend,
shuffled anew each epoch, with the examples' masks and splits drawn anew
each epoch too."""

import keras
import numpy as np

from nlp4keras import validation


class PretrainingDataset(keras.utils.PyDataset):
    """Batches `(inputs, labels)` of numpy arrays from `examples`
    (`MlmExamples`, `LmExamples` or `UnilmExamples`).

    Epoch e visits the examples in the order `permutation(seed, e)` (or in
    order with shuffle=False); batch i of epoch e is the same in every run,
    so a run resumes exactly with `epoch=`. Keras calls `on_epoch_end` after
    each epoch, which moves to the next (Keras 3's fit also calls it once
    after reading a first batch to build the model: fit's first epoch is
    then `epoch + 1`, the same in every run). The last, shorter batch is dropped
    with drop_remainder=True (one batch shape: one JAX compilation).
    `workers`, `use_multiprocessing`, `max_queue_size` go to PyDataset."""

    def __init__(self, examples, batch_size=32, shuffle=True, seed=0, epoch=0,
                 drop_remainder=False, **kwargs):  # fmt: skip
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
        indices = self.order(self.epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        return self.examples.batch(indices, self.epoch)

    def on_epoch_end(self):
        self.epoch += 1
