"""Initializers computed with numpy on the host.

JAX compiles one XLA program per distinct weight shape for Keras' random
initializers (about 0.13 s each, 3 s for a small BERT); drawing on the host
and transferring once costs a fraction of that on every backend.
"""

import random

import keras
import numpy as np

from nlp4keras.backend import serializable


@serializable
class TruncatedNormal(keras.initializers.Initializer):
    """Normal(0, stddev) with draws beyond 2 stddev redrawn (BERT's init)."""

    def __init__(self, stddev=0.02, seed=None):
        self.stddev = float(stddev)
        self.seed = seed
        # Set by a builder about to load a checkpoint: draw nothing, fill with
        # NaN (a value no checkpoint weight keeps unnoticed: see
        # Transformer.finish_deferred_initialization). Not in the config.
        self.deferred = False
        # Unseeded instances draw their seed from Python's global generator,
        # which keras.utils.set_random_seed() seeds too.
        self._rng = np.random.default_rng(seed if seed is not None else random.getrandbits(63))

    def __call__(self, shape, dtype=None):
        if self.deferred:
            values = np.full(shape, np.nan, dtype=np.float32)
            return keras.ops.convert_to_tensor(values, dtype=dtype or keras.config.floatx())
        values = self._rng.standard_normal(shape, dtype=np.float32)
        outside = np.abs(values) > 2.0
        while outside.any():
            values[outside] = self._rng.standard_normal(int(outside.sum()), dtype=np.float32)
            outside = np.abs(values) > 2.0
        values *= self.stddev
        return keras.ops.convert_to_tensor(values, dtype=dtype or keras.config.floatx())

    def get_config(self):
        return {"stddev": self.stddev, "seed": self.seed}
