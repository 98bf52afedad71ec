"""AdaFactor (Shazeer & Stern 2018, arXiv 1804.04235) with bert4keras's
semantics and defaults.

At step t (t = 1 on the first update) with gradient g of a variable w:

    lr_t   = learning_rate, or when it is None ("relative step"):
             min(1e-2, 1/sqrt(t)), times 0.05 if multiply_by_parameter_scale is off
    beta2_t = beta2, or when it is None: 1 - t^(-0.8)
    g2     = g^2 + epsilon1
    v_t    = beta2_t v + (1 - beta2_t) g2                       (unfactored)
    factored (see below), with R = mean of g2 over axis a, C = over axis b:
             r_t = beta2_t r + (1 - beta2_t) R,  c_t = beta2_t c + (1 - beta2_t) C
             v_t = r_t c_t / mean_b(r_t)           (rank-1 estimate of E[g^2])
    u      = g / sqrt(v_t + epsilon1)
    u      = u / max(1, RMS(u) / clipping_threshold)  (skipped when it is None)
    m_t    = beta1 m + (1 - beta1) u,  u = m_t          (only when beta1 > 0)
    u      = u * max(epsilon2, RMS(w))   (multiply_by_parameter_scale, unless the
                                          variable's path matches a pattern of
                                          exclude_from_parameter_scale)
    w      = w - lr_t u

RMS(x) = sqrt(mean(x^2)) over the whole tensor. A variable of 2 or more axes is
factored over its two largest axes a (largest) and b (next; the later axis
wins a tie, so equal sizes mean the last two axes) when size(b) >=
min_dim_size_to_factor: it then keeps r (w's shape with a set to 1) and c (b
set to 1) instead of a full v. There is no bias correction: at t = 1 the
default beta2_t is 0, so v_1 = g2. 1 - beta2_t is computed as t^(-0.8)
itself, not by subtraction, which in float32 would lose ~1e-4 of relative
precision late in training.

Differences from `keras.optimizers.Adafactor`: Keras factors every >= 2-D
variable over its last two axes (no size threshold), always scales by RMS(w)
(no exclusions), has no first moment (beta1) and no constant beta2, and caps a
float learning rate by 1/sqrt(t) (relative_step=True), with no 1e-2 cap. Here
a float learning rate is used as given, and None selects the relative step.
Standard Keras optimizer arguments (weight_decay, clipnorm, global_clipnorm,
use_ema, gradient_accumulation_steps, ...) pass through **kwargs.
"""

import re

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import serializable
from nlp4keras.optimizers.wrapper_base import (
    compile_patterns,
    dense_gradient,
    learning_rate_argument,
)

RELATIVE_STEP_CAP = 1e-2  # relative step: min(1e-2, 1/sqrt(t))
UNSCALED_RELATIVE_FACTOR = 0.05  # relative step without parameter scale
BETA2_DECAY = -0.8  # default beta2_t = 1 - t^(-0.8)


def factored_axes(shape, min_dim_size):
    """(a, b): the largest and next-largest axes of `shape` (a later axis wins a
    tie), or None when the variable keeps a full second moment."""
    if len(shape) < 2:
        return None
    by_size = sorted(range(len(shape)), key=lambda axis: (shape[axis], axis))
    largest, second = by_size[-1], by_size[-2]
    if shape[second] < min_dim_size:
        return None
    return largest, second


def _rms(x):
    return ops.sqrt(ops.mean(ops.square(x)))


class _RelativeStepSize(keras.optimizers.schedules.LearningRateSchedule):
    """min(1e-2, 1/sqrt(step + 1)) * factor; used when learning_rate is None."""

    def __init__(self, factor=1.0):
        self.factor = factor

    def __call__(self, step):
        t = ops.cast(step + 1, "float32")
        return ops.minimum(RELATIVE_STEP_CAP, ops.rsqrt(t)) * self.factor

    def get_config(self):
        return {"factor": self.factor}


@serializable
class AdaFactor(keras.optimizers.Optimizer):
    """AdaFactor with bert4keras's semantics; the formulas are in the module
    docstring. `learning_rate=None` gives the relative step, `beta2=None` the
    1 - t^(-0.8) schedule; `exclude_from_parameter_scale` is a list of regular
    expressions searched in each variable's path (e.g. "dense/bias")."""

    def __init__(
        self,
        learning_rate=1e-3,
        beta1=0.0,
        beta2=None,
        epsilon1=1e-30,
        epsilon2=1e-3,
        multiply_by_parameter_scale=True,
        clipping_threshold=1.0,
        min_dim_size_to_factor=128,
        exclude_from_parameter_scale=None,
        **kwargs,
    ):
        who = "AdaFactor"
        learning_rate = learning_rate_argument(learning_rate, who, allow_none=True)
        beta1 = validation.real(beta1, "beta1", who, minimum=0, below=1)
        if beta2 is not None:
            beta2 = validation.real(beta2, "beta2", who, minimum=0, below=1)
        epsilon1 = validation.real(epsilon1, "epsilon1", who, above=0)
        epsilon2 = validation.real(epsilon2, "epsilon2", who, minimum=0)
        multiply_by_parameter_scale = validation.boolean(
            multiply_by_parameter_scale, "multiply_by_parameter_scale", who
        )
        if clipping_threshold is not None:
            clipping_threshold = validation.real(
                clipping_threshold, "clipping_threshold", who, above=0
            )
        min_dim_size_to_factor = validation.integer(
            min_dim_size_to_factor, "min_dim_size_to_factor", who, minimum=1
        )
        patterns = compile_patterns(
            exclude_from_parameter_scale, "exclude_from_parameter_scale", who
        )

        relative_step = learning_rate is None
        if relative_step:
            factor = 1.0 if multiply_by_parameter_scale else UNSCALED_RELATIVE_FACTOR
            learning_rate = _RelativeStepSize(factor)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self._relative_step = relative_step
        self.beta1, self.beta2 = beta1, beta2
        self.epsilon1, self.epsilon2 = epsilon1, epsilon2
        self.multiply_by_parameter_scale = multiply_by_parameter_scale
        self.clipping_threshold = clipping_threshold
        self.min_dim_size_to_factor = min_dim_size_to_factor
        self.exclude_from_parameter_scale = patterns

    def _get_current_learning_rate(self):
        # The relative step counts updates, like beta2_t (Keras schedules see
        # raw iterations, which differ under gradient accumulation).
        if self._relative_step:
            return self._learning_rate(self.iterations)
        return super()._get_current_learning_rate()

    def _scales_parameter_of(self, variable):
        if not self.multiply_by_parameter_scale:
            return False
        path = getattr(variable, "path", variable.name)
        return not any(re.search(p, path) for p in self.exclude_from_parameter_scale)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # Per variable (None where unused): full v, or the factored pair r
        # (mean over the largest axis) and c (mean over the next one); m.
        self._factored_axes, self._scales_parameter = [], []
        self._velocities, self._velocity_rows, self._velocity_cols = [], [], []
        self._momentums = []
        for var in var_list:
            skip = self._overwrite_variable_with_gradient(var)
            axes = factored_axes(tuple(var.shape), self.min_dim_size_to_factor)
            self._factored_axes.append(axes)
            self._scales_parameter.append(self._scales_parameter_of(var))
            if skip or axes is not None:
                self._velocities.append(None)
            else:
                self._velocities.append(self.add_variable_from_reference(var, "velocity"))
            if skip or axes is None:
                self._velocity_rows.append(None)
                self._velocity_cols.append(None)
            else:
                self._velocity_rows.append(self._reduced_variable(var, axes[0], "velocity_row"))
                self._velocity_cols.append(self._reduced_variable(var, axes[1], "velocity_col"))
            use_momentum = self.beta1 > 0 and not skip
            self._momentums.append(
                self.add_variable_from_reference(var, "momentum") if use_momentum else None
            )

    def _reduced_variable(self, var, axis, name):
        shape = list(var.shape)
        shape[axis] = 1
        prefix = getattr(var, "path", var.name).replace("/", "_")
        return self.add_variable(shape=tuple(shape), dtype=var.dtype, name=f"{prefix}_{name}")

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        grad = dense_gradient(gradient, dtype)
        # Both beta2_t and 1 - beta2_t computed directly: 1 - (1 - t^-0.8)
        # in float32 loses ~1e-4 of relative precision at t = 2e4.
        if self.beta2 is None:
            step = ops.cast(self.iterations + 1, dtype)
            one_minus_beta2 = ops.power(step, BETA2_DECAY)
            beta2 = 1.0 - one_minus_beta2
        else:
            beta2 = ops.cast(self.beta2, dtype)
            one_minus_beta2 = ops.cast(1.0 - self.beta2, dtype)
        grad_sq = ops.square(grad) + self.epsilon1

        axes = self._factored_axes[index]
        if axes is None:
            v = self._velocities[index]
            v_t = beta2 * v + one_minus_beta2 * grad_sq
            self.assign(v, v_t)
        else:
            largest, second = axes
            r, c = self._velocity_rows[index], self._velocity_cols[index]
            r_t = beta2 * r + one_minus_beta2 * ops.mean(grad_sq, axis=largest, keepdims=True)
            c_t = beta2 * c + one_minus_beta2 * ops.mean(grad_sq, axis=second, keepdims=True)
            self.assign(r, r_t)
            self.assign(c, c_t)
            v_t = r_t * c_t / ops.mean(r_t, axis=second, keepdims=True)

        update = grad / ops.sqrt(v_t + self.epsilon1)
        if self.clipping_threshold is not None:
            update = update / ops.maximum(1.0, _rms(update) / self.clipping_threshold)
        if self.beta1 > 0:
            m = self._momentums[index]
            update = self.beta1 * m + (1.0 - self.beta1) * update
            self.assign(m, update)
        if self._scales_parameter[index]:
            update = update * ops.maximum(_rms(variable), self.epsilon2)
        self.assign_sub(variable, lr * update)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "learning_rate": None if self._relative_step else config["learning_rate"],
                "beta1": self.beta1,
                "beta2": self.beta2,
                "epsilon1": self.epsilon1,
                "epsilon2": self.epsilon2,
                "multiply_by_parameter_scale": self.multiply_by_parameter_scale,
                "clipping_threshold": self.clipping_threshold,
                "min_dim_size_to_factor": self.min_dim_size_to_factor,
                "exclude_from_parameter_scale": list(self.exclude_from_parameter_scale),
            }
        )
        return config
