"""Exponential moving average of the weights, kept by the optimizer.

After every update, `ema = momentum * ema + (1 - momentum) * w` (ema starts
at zero), inside the training step: compiled with it under JAX, frozen
between updates under gradient accumulation. `apply_ema_weights()` writes the
averages (divided by 1 - momentum^t, Adam's bias correction, t = number of
updates) into the model's variables after backing them up;
`reset_old_weights()` writes the backup back, bit for bit.

Keras' own `use_ema=True` differs: its average starts at the first weights
(no bias correction), and `fit` overwrites the model with it at the end.
For an EMA kept outside the optimizer see `nlp4keras.callbacks.EMACallback`.
"""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.optimizers.wrapper_base import (
    check_base_optimizer,
    check_learning_rate,
    finish_wrapper,
    no_grad,
    read,
)


def readable_values(variables, who):
    """The variables' values, or a clear error inside JAX's fit loop, where
    Keras keeps the live weights out of the variables between batches."""
    if keras.backend.backend() == "jax" and any(getattr(v, "_value", 0) is None for v in variables):
        raise RuntimeError(
            f"{who}: the weights are held by the JAX training loop right now; call "
            "model.jax_state_sync() first (a callback's `self.model` does it)"
        )
    return [v.value for v in variables]


def backup_values(variables, who):
    """Copies of the variables' values that later writes cannot change."""
    with no_grad():
        return [ops.copy(value) for value in readable_values(variables, who)]


def write_values(variables, values):
    with no_grad():
        for variable, value in zip(variables, values):
            variable.assign(value)


def bias_correction_scale(momentum, steps, who):
    if steps <= 0:
        raise ValueError(
            f"{who}: no update has been averaged yet (iterations == 0), so there are "
            "no EMA weights to apply; train first"
        )
    return 1.0 - momentum**steps


def extend_with_exponential_moving_average(BaseOptimizer, name=None):
    """Keep an exponential moving average of the weights (see the module docstring).

    New argument: `ema_momentum=0.999`. New methods: `apply_ema_weights(bias_correction=True)`
    and `reset_old_weights()`. Cannot be combined with Keras' `use_ema=True`.
    """
    who = "extend_with_exponential_moving_average"
    base = check_base_optimizer(BaseOptimizer, who, "EMA")

    class ExponentialMovingAverage(base):
        def __init__(self, *args, ema_momentum=0.999, **kwargs):
            if kwargs.get("use_ema"):
                raise ValueError(
                    f"{who}: use_ema=True turns on Keras' own EMA as well; use one of the two"
                )
            momentum = validation.real(ema_momentum, "ema_momentum", who, minimum=0, below=1)
            super().__init__(*args, ema_momentum=momentum, **kwargs)
            check_learning_rate(self)
            self._weights_before_ema = None

        def build(self, variables):
            if self.built:
                return
            super().build(variables)
            self._ema_weights = self.add_optimizer_variables(variables, "ema")

        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            super()._backend_update_step(grads, trainable_variables, learning_rate)
            momentum = self.ema_momentum
            for variable, average in self._ema_pairs():
                value = ops.cast(read(variable), average.dtype)
                self.assign(average, momentum * read(average) + (1 - momentum) * value)

        def _ema_pairs(self):
            return [
                (variable, average)
                for variable, average in zip(self._trainable_variables, self._ema_weights)
                if average is not None
            ]

        @property
        def ema_weights(self):
            """The EMA variables, one per model variable (None where Keras
            overwrites a variable with its gradient)."""
            self._require_built("ema_weights")
            return list(self._ema_weights)

        def apply_ema_weights(self, bias_correction=True):
            """Back up the model's weights and write the averages into them."""
            validation.boolean(bias_correction, "bias_correction", "apply_ema_weights")
            self._require_built("apply_ema_weights")
            pairs = self._ema_pairs()
            variables = [variable for variable, _ in pairs]
            averages = [average for _, average in pairs]
            readable_values(variables + averages + [self._iterations], "apply_ema_weights")
            scale = 1.0
            steps = int(ops.convert_to_numpy(self.iterations))
            if bias_correction or steps == 0:
                scale = bias_correction_scale(self.ema_momentum, steps, "apply_ema_weights")
            if self._weights_before_ema is None:  # applying twice keeps the first backup
                self._weights_before_ema = backup_values(variables, "apply_ema_weights")
            values = [
                ops.cast(read(average) / ops.cast(scale, average.dtype), variable.dtype)
                for variable, average in pairs
            ]
            write_values(variables, values)

        def reset_old_weights(self):
            """Write back the weights backed up by `apply_ema_weights`."""
            if self._weights_before_ema is None:
                raise ValueError("reset_old_weights: apply_ema_weights() has not been called")
            variables = [variable for variable, _ in self._ema_pairs()]
            write_values(variables, self._weights_before_ema)
            self._weights_before_ema = None

        def _require_built(self, method):
            if not self.built:
                raise ValueError(
                    f"{method}: the optimizer has not been built (no training step yet)"
                )

    return finish_wrapper(ExponentialMovingAverage, base, name, "EMA")
