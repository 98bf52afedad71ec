"""Training callbacks."""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.optimizers.ema import (
    backup_values,
    bias_correction_scale,
    readable_values,
    write_values,
)
from nlp4keras.optimizers.wrapper_base import no_grad


class EMACallback(keras.callbacks.Callback):
    """Exponential moving average of the weights, kept by a callback (any optimizer).

        ema = EMACallback(ema_momentum=0.999)
        model.fit(..., validation_data=..., callbacks=[ema])  # validation uses EMA weights
        ema.apply_ema_weights(); model.save("ema.keras"); ema.reset_old_weights()

    After each batch that updated the weights (the optimizer's `iterations`
    moved, so batches that only accumulate gradients are skipped):
    `ema = momentum * ema + (1 - momentum) * w`, starting from zero, with
    Adam's bias correction 1 - momentum^t when applied (t = averaged updates).
    The average covers `model.trainable_variables` as of `on_train_begin`, and
    carries over to later `fit` calls on the same variables.

    evaluate_with_ema: during any evaluation this callback is given to
    (including fit's validation), swap the EMA weights in, then back.
    apply_on_train_end: leave the EMA weights in the model after fit
    (`reset_old_weights()` brings the trained weights back).

    Under JAX, `fit` keeps the live weights outside the Keras variables; Keras
    writes them back whenever a callback reads `self.model`, which this one does
    after each batch (a little Python work per batch, no device-to-host copy). With
    `steps_per_execution > 1` it sees only every n-th update. The optimizer
    wrapper `extend_with_exponential_moving_average` averages inside the
    compiled step instead, at no per-batch cost.
    """

    def __init__(
        self,
        ema_momentum=0.999,
        bias_correction=True,
        evaluate_with_ema=True,
        apply_on_train_end=False,
    ):
        super().__init__()
        who = "EMACallback"
        self.ema_momentum = validation.real(ema_momentum, "ema_momentum", who, minimum=0, below=1)
        self.bias_correction = validation.boolean(bias_correction, "bias_correction", who)
        self.evaluate_with_ema = validation.boolean(evaluate_with_ema, "evaluate_with_ema", who)
        self.apply_on_train_end = validation.boolean(apply_on_train_end, "apply_on_train_end", who)
        self._variables = None
        self._averages = None
        self._count = None
        self._last_iteration = None
        self._backup = None
        self._swapped_for_test = False
        self._advance = None

    @property
    def updates(self):
        """How many updates the average covers."""
        return 0 if self._count is None else int(ops.convert_to_numpy(self._count))

    @property
    def ema_weights(self):
        """The raw averages (no bias correction), one per tracked variable."""
        return list(self._averages or [])

    def on_train_begin(self, logs=None):
        variables = list(self.model.trainable_variables)
        if self._variables is None or list(map(id, variables)) != list(map(id, self._variables)):
            self._variables = variables
            self._averages = [ops.zeros(v.shape, dtype=v.dtype) for v in variables]
            self._count = ops.convert_to_tensor(0, dtype="int32")
        self._backup = None  # training goes on from whatever weights the model holds now
        self._last_iteration = ops.copy(ops.convert_to_tensor(self.model.optimizer.iterations))
        if self._advance is None:
            self._advance = _compiled(self._make_advance())

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.model.optimizer  # under JAX, `self.model` syncs the live weights
        weights = readable_values(self._variables, "EMACallback")
        iteration = ops.convert_to_tensor(optimizer.iterations)
        with no_grad():
            self._averages, self._count, self._last_iteration = self._advance(
                self._averages, weights, self._count, self._last_iteration, iteration
            )

    def _make_advance(self):
        momentum = self.ema_momentum

        def advance(averages, weights, count, last_iteration, iteration):
            moved = ops.not_equal(iteration, last_iteration)
            averages = [
                ops.where(moved, momentum * a + (1 - momentum) * ops.cast(w, a.dtype), a)
                for a, w in zip(averages, weights)
            ]
            return averages, count + ops.cast(moved, "int32"), ops.copy(iteration)

        return advance

    def on_test_begin(self, logs=None):
        if self.evaluate_with_ema and self._backup is None and self.updates > 0:
            self.apply_ema_weights()
            self._swapped_for_test = True

    def on_test_end(self, logs=None):
        if self._swapped_for_test:
            self._swapped_for_test = False
            self.reset_old_weights()

    def on_train_end(self, logs=None):
        if self.apply_on_train_end and self.updates > 0:
            self.apply_ema_weights()

    def apply_ema_weights(self, bias_correction=None):
        """Back up the model's weights and write the averages into them."""
        if self._averages is None:
            raise ValueError(
                "EMACallback.apply_ema_weights: the callback has not seen any training"
            )
        if bias_correction is None:
            bias_correction = self.bias_correction
        who = "EMACallback.apply_ema_weights"
        bias_correction = validation.boolean(bias_correction, "bias_correction", who)
        steps = self.updates
        scale = 1.0
        if bias_correction or steps == 0:
            scale = bias_correction_scale(self.ema_momentum, steps, "EMACallback.apply_ema_weights")
        if self._backup is None:  # applying twice keeps the first backup
            self._backup = backup_values(self._variables, "EMACallback.apply_ema_weights")
        values = [
            ops.cast(a / ops.cast(scale, a.dtype), v.dtype)
            for a, v in zip(self._averages, self._variables)
        ]
        write_values(self._variables, values)

    def reset_old_weights(self):
        """Write back the weights backed up by `apply_ema_weights`."""
        if self._backup is None:
            raise ValueError(
                "EMACallback.reset_old_weights: apply_ema_weights() has not been called"
            )
        write_values(self._variables, self._backup)
        self._backup = None


def _compiled(function):
    """jax.jit on JAX (one dispatch per batch instead of one per op), else as is."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    return function
