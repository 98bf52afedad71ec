"""Wrappers acting once per update on all variables: lr schedule, gradient
accumulation, lookahead.

"Step" below means a real update of the weights: with gradient accumulation
over k batches, `optimizer.iterations` counts updates (Keras divides its batch
counter by k), and so do the lr schedule, lookahead and EMA. Everything is
written with `ops.where` on the step counter, so it traces under `jax.jit`.
"""

import numbers

from keras import ops

from nlp4keras import validation
from nlp4keras.backend import piecewise_linear
from nlp4keras.optimizers.wrapper_base import (
    check_base_optimizer,
    check_learning_rate,
    finish_wrapper,
    read,
)


def extend_with_piecewise_linear_lr(BaseOptimizer, name=None):
    """Multiply the learning rate by `piecewise_linear(iterations, lr_schedule)`.

    New argument: `lr_schedule={0: 1}` ({update: multiplier}, updates integers
    >= 0, multipliers finite and >= 0), e.g. {1000: 1, 2000: 0.1}: from 0 up to
    1 over the first 1000 updates (warmup), down to 0.1 at update 2000, then
    constant. `iterations` counts updates made before this one, so the first
    update of {1000: 1} has lr 0, as in bert4keras. The multiplied rate is what
    every wrapper and the base update see, whatever the wrapping order;
    `optimizer.learning_rate` (and Keras' lr callbacks) keep the base rate, and
    so does Keras' own `weight_decay=` (use `extend_with_weight_decay`).
    """
    who = "extend_with_piecewise_linear_lr"
    base = check_base_optimizer(BaseOptimizer, who, "PiecewiseLinearLR")

    class PiecewiseLinearLR(base):
        def __init__(self, *args, lr_schedule=None, **kwargs):
            super().__init__(*args, **kwargs)
            check_learning_rate(self)
            self.lr_schedule = _checked_schedule(
                {0: 1} if lr_schedule is None else lr_schedule, who
            )

        def schedule_multiplier(self):
            """The schedule's value at the current update (a scalar tensor)."""
            return piecewise_linear(self.iterations, self.lr_schedule)

        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            learning_rate = ops.convert_to_tensor(learning_rate) * self.schedule_multiplier()
            super()._backend_update_step(grads, trainable_variables, learning_rate)

        def get_config(self):
            config = super().get_config()
            config.update(lr_schedule=dict(self.lr_schedule))
            return config

    return finish_wrapper(PiecewiseLinearLR, base, name, "PiecewiseLinearLR")


def _checked_schedule(schedule, who):
    if not isinstance(schedule, dict) or not schedule:
        raise validation.InvalidValue(
            f"{who}: `lr_schedule` must be a non-empty dict {{step: multiplier}}, got {schedule!r}",
            "lr_schedule",
        )
    checked = {}
    for step, value in schedule.items():
        step_int = _schedule_step(step, who)
        if step_int in checked:
            raise validation.InvalidValue(
                f"{who}: `lr_schedule` names step {step_int} twice", "lr_schedule"
            )
        checked[step_int] = validation.real(value, f"lr_schedule[{step!r}]", who, minimum=0)
    return dict(sorted(checked.items()))


def _schedule_step(step, who):
    """A schedule key as an int >= 0 (JSON configs store the keys as strings)."""
    number = step
    if isinstance(step, str):
        try:
            number = float(step.strip())
        except ValueError:
            number = None
    elif isinstance(step, bool) or not isinstance(step, numbers.Real):
        raise validation.InvalidType(
            f"{who}: `lr_schedule` steps must be integers >= 0, got {step!r} "
            f"({type(step).__name__})",
            "lr_schedule",
        )
    if number is None or not validation.is_integer(number) or number < 0:
        raise validation.InvalidValue(
            f"{who}: `lr_schedule` steps must be integers >= 0, got {step!r}", "lr_schedule"
        )
    return int(number)


def extend_with_gradient_accumulation(BaseOptimizer, name=None):
    """Average the gradients of `grad_accum_steps` batches, update once.

    New argument: `grad_accum_steps=2` (1 means no accumulation). Batches
    1..k-1 of each group only add their gradient to accumulators; batch k
    updates with the mean of the k gradients, so k batches of size b give the
    same update as one batch of size k*b (mean loss). This is Keras' native
    `gradient_accumulation_steps`, which also freezes the optimizer's state
    and every wrapper (lr schedule, lookahead, EMA) between updates and makes
    `optimizer.iterations` count updates. bert4keras differed in timing only:
    it updated on batches 0, k, 2k... with the previous k gradients (a zero
    update on batch 0, the last group's gradients never used).
    """
    who = "extend_with_gradient_accumulation"
    base = check_base_optimizer(BaseOptimizer, who, "GradientAccumulation")

    class GradientAccumulation(base):
        def __init__(self, *args, grad_accum_steps=2, **kwargs):
            steps = validation.integer(grad_accum_steps, "grad_accum_steps", who, minimum=1)
            native = kwargs.pop("gradient_accumulation_steps", None)
            if native is not None and native != steps:
                raise ValueError(
                    f"{who}: got grad_accum_steps={grad_accum_steps} and "
                    f"gradient_accumulation_steps={native}; pass grad_accum_steps only"
                )
            super().__init__(
                *args, gradient_accumulation_steps=steps if steps > 1 else None, **kwargs
            )
            check_learning_rate(self)
            self.grad_accum_steps = steps

        def get_config(self):
            config = super().get_config()
            config.pop("gradient_accumulation_steps", None)
            config.update(grad_accum_steps=self.grad_accum_steps)
            return config

    return finish_wrapper(GradientAccumulation, base, name, "GradientAccumulation")


def extend_with_lookahead(BaseOptimizer, name=None):
    """Lookahead (Zhang et al. 2019, arXiv 1907.08610).

    New arguments: `steps_per_slow_update=5` (k), `slow_step_size=0.5` (alpha).
    Slow weights start at the weights of the first update; after every k-th
    update: slow += alpha * (fast - slow), fast = slow. (bert4keras started the
    slow weights at zero and synchronised at update 0, which scaled every
    weight by alpha on the first step; this follows the paper instead.)
    """
    who = "extend_with_lookahead"
    base = check_base_optimizer(BaseOptimizer, who, "Lookahead")

    class Lookahead(base):
        def __init__(self, *args, steps_per_slow_update=5, slow_step_size=0.5, **kwargs):
            super().__init__(*args, **kwargs)
            check_learning_rate(self)
            self.steps_per_slow_update = validation.integer(
                steps_per_slow_update, "steps_per_slow_update", who, minimum=1
            )
            self.slow_step_size = validation.real(
                slow_step_size, "slow_step_size", who, minimum=0, maximum=1
            )

        def build(self, variables):
            if self.built:
                return
            super().build(variables)
            self._slow_weights = self.add_optimizer_variables(variables, "slow_weight")

        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            pairs = [
                (variable, slow)
                for variable, slow in zip(self._trainable_variables, self._slow_weights)
                if slow is not None
            ]
            first = ops.equal(self.iterations, 0)
            for variable, slow in pairs:
                self.assign(slow, ops.where(first, read(variable), read(slow)))
            super()._backend_update_step(grads, trainable_variables, learning_rate)
            sync = ops.equal((self.iterations + 1) % self.steps_per_slow_update, 0)
            for variable, slow in pairs:
                moved = read(slow) + self.slow_step_size * (read(variable) - read(slow))
                self.assign(slow, ops.where(sync, moved, read(slow)))
                self.assign(variable, ops.where(sync, moved, read(variable)))

        def get_config(self):
            config = super().get_config()
            config.update(
                steps_per_slow_update=self.steps_per_slow_update,
                slow_step_size=self.slow_step_size,
            )
            return config

    return finish_wrapper(Lookahead, base, name, "Lookahead")
