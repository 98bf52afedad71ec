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

import keras

from nlp4keras import validation
from nlp4keras.backend import serializable
from nlp4keras.optimizers.wrapper_base import learning_rate_argument


@serializable
class Lion(keras.optimizers.Lion):
    """Lion with bert4keras's defaults; see the module docstring."""

    def __init__(self, learning_rate=3e-4, beta_1=0.95, beta_2=0.98, weight_decay=None, **kwargs):
        who = "Lion"
        learning_rate = learning_rate_argument(learning_rate, who)
        beta_1 = validation.real(beta_1, "beta_1", who, above=0, maximum=1)
        beta_2 = validation.real(beta_2, "beta_2", who, minimum=0, maximum=1)
        if weight_decay is not None:
            weight_decay = validation.real(weight_decay, "weight_decay", who, minimum=0)
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            weight_decay=weight_decay,
            **kwargs,
        )
