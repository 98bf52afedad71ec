"""Lion (Chen et al. 2023, arXiv 2302.06675) with bert4keras's defaults.

At each step with gradient g, momentum m and learning rate lr:

    w = w - lr * (sign(beta_1 m + (1 - beta_1) g) + weight_decay * w)
    m = beta_2 m + (1 - beta_2) g

This is bert4keras's LionV2 update plus the paper's decoupled weight decay
(bert4keras had none; weight_decay=None keeps it off). `keras.optimizers.Lion`
implements exactly this (its weight decay is applied as w -= lr * wd * w before
the sign step, which equals the line above because the sign step does not
read w), so this class only changes the defaults to bert4keras's
(learning_rate=3e-4, beta_1=0.95, beta_2=0.98; Keras: 1e-3, 0.9, 0.99),
validates the arguments and registers under the "nlp4keras" package.
"""

import numbers

import keras

from nlp4keras.backend import serializable


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _require(ok, name, value, rule):
    if not ok:
        raise ValueError(f"Lion: argument `{name}` must be {rule}, got {value!r}")


@serializable
class Lion(keras.optimizers.Lion):
    """Lion with bert4keras's defaults; see the module docstring."""

    def __init__(self, learning_rate=3e-4, beta_1=0.95, beta_2=0.98, weight_decay=None, **kwargs):
        if _is_number(learning_rate):
            _require(learning_rate >= 0, "learning_rate", learning_rate, ">= 0")
            learning_rate = float(learning_rate)
        _require(_is_number(beta_1) and 0 < beta_1 <= 1, "beta_1", beta_1, "in (0, 1]")
        _require(_is_number(beta_2) and 0 <= beta_2 <= 1, "beta_2", beta_2, "in [0, 1]")
        if weight_decay is not None:
            _require(
                _is_number(weight_decay) and weight_decay >= 0,
                "weight_decay",
                weight_decay,
                ">= 0 or None",
            )
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            weight_decay=weight_decay,
            **kwargs,
        )
