"""Machinery shared by the `extend_with_*` optimizer wrappers.

Every wrapper is a function `extend_with_X(BaseOptimizer, name=None)` that
returns a new subclass of `BaseOptimizer`, registered with Keras under
"nlp4keras>name" so `keras.saving.load_model` finds it (re-run the same
`extend_with_*` calls before loading, as bert4keras required custom_objects).
The default name is the base class name plus the feature, e.g.
`extend_with_weight_decay(keras.optimizers.Adam)` is "AdamWeightDecay".

Wrappers hook into three places of a Keras 3 optimizer, and compose by plain
subclassing (the outer wrapper's method calls the inner one through `super()`):

- `update_step(gradient, variable, learning_rate)` (per variable): gradient
  transforms run before the inner update; update transforms (weight decay,
  layer adaptation, lazy rows, parameter-wise lr) run after it and rewrite
  `new` as a function of the `old` value, the inner `new` value, the
  gradient and the learning rate, exactly like bert4keras' `K.update` hooks:
  the innermost wrapper transforms first.
- `_backend_update_step(grads, variables, learning_rate)` (once per real
  update, all variables): the piecewise-linear lr multiplies the learning
  rate before everything else; lookahead and EMA act after the inner updates.
- the constructor: gradient accumulation sets Keras' native
  `gradient_accumulation_steps`, which gates both hooks above.

Order: the lr schedule and gradient accumulation act the same at any place in
the stack, and per-variable wrappers always run inside the step-level ones.
Update transforms apply innermost first (see `update_wrappers` for the pairs
that do not commute); EMA outside lookahead averages the weights after each
slow-weight sync, inside it the fast weights before the sync. Keras' own
options act outside every wrapper: `clipnorm`/`clipvalue` before the
gradient transforms, `weight_decay=` (AdamW) before `update_step` (so it is
neither scaled by parameter-wise lr nor masked by lazy optimization).

Backends: all state (moments, accumulators, slow weights, averages) lives in
optimizer variables, saved with the model. Under JAX `fit` runs the optimizer
through `stateless_apply` inside the jitted train step, so every condition on
the step counter is an `ops.where`, never Python. Under torch the updates run
eagerly, in place, under `torch.no_grad()`.

Variables are selected by `variable.path` ("Transformer-0-FeedForward/i0_kernel";
a variable created outside a layer has its name as path).
"""

import contextlib
import re

import keras
from keras import ops

from nlp4keras import validation

PACKAGE = "nlp4keras"


def check_base_optimizer(base, who, feature):
    """The class to subclass, or a clear error when `base` is no Keras optimizer
    class or already has `feature` (its arguments would reach only one copy)."""
    if isinstance(base, keras.optimizers.Optimizer):
        raise TypeError(
            f"{who} expects an optimizer class, got an instance of {type(base).__name__}; "
            "pass the class itself, e.g. keras.optimizers.Adam"
        )
    if not (isinstance(base, type) and issubclass(base, keras.optimizers.Optimizer)):
        raise TypeError(
            f"{who} expects a Keras 3 optimizer class (a subclass of "
            f"keras.optimizers.Optimizer), got {base!r}"
        )
    if issubclass(base, keras.optimizers.LossScaleOptimizer):
        raise TypeError(
            f"{who}: wrap the inner optimizer class, then put the instance in a "
            "LossScaleOptimizer; LossScaleOptimizer itself cannot be extended"
        )
    if feature in getattr(base, "_nlp4keras_features", ()):
        raise ValueError(f"{who}: {base.__name__} already has this wrapper ({feature})")
    if hasattr(base, "_parallel_update_step") and not getattr(base, "_per_variable_updates", False):
        base = _per_variable_twin(base)
    return base


def _per_variable_update_step(self, grads, trainable_variables, learning_rate):
    with no_grad():
        for gradient, variable in zip(grads, trainable_variables):
            self.update_step(gradient, variable, learning_rate)


def _per_variable_twin(base):
    """Keras swaps its exact built-in classes for fused torch twins that never
    call `update_step`; subclassing such a twin would bypass the wrappers' hooks,
    so route its updates through `update_step` again."""
    namespace = {
        "_backend_update_step": _per_variable_update_step,
        "_per_variable_updates": True,
        "__module__": base.__module__,
        "__doc__": base.__doc__,
    }
    return type(base.__name__, (base,), namespace)


def finish_wrapper(cls, base, name, feature):
    """Name the generated class and register it for serialisation."""
    if name is None:
        name = f"{base.__name__}{feature}"
    if not isinstance(name, str) or not name or ">" in name:
        raise ValueError(
            f"the optimizer class name must be a non-empty string without '>', got {name!r}"
        )
    cls.__name__ = cls.__qualname__ = name
    cls._nlp4keras_features = getattr(base, "_nlp4keras_features", ()) + (feature,)
    return keras.saving.register_keras_serializable(package=PACKAGE, name=name)(cls)


def variable_path(variable):
    """The string wrappers match against: `path`, else `name` (without the
    ':0' of the raw tf.Variables Keras passes on TensorFlow)."""
    path = getattr(variable, "path", None) or variable.name
    return re.sub(r":\d+$", "", path)


def compile_patterns(patterns, argument, who=None):
    """A list of regular expressions, checked; a single string is one pattern."""
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    subject = f"{who}: `{argument}`" if who else argument
    if not isinstance(patterns, (list, tuple)):
        raise validation.InvalidType(
            f"{subject} must be a list of regular expressions, got {patterns!r} "
            f"({type(patterns).__name__})",
            argument,
        )
    checked = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise validation.InvalidType(
                f"{subject} must be a list of regular expressions, got item {pattern!r}",
                argument,
            )
        try:
            re.compile(pattern)
        except re.error as error:
            raise validation.InvalidValue(
                f"{subject}: invalid regular expression {pattern!r}: {error}", argument
            ) from None
        checked.append(pattern)
    return checked


def matches_any(variable, patterns):
    path = variable_path(variable)
    return any(re.search(pattern, path) for pattern in patterns)


def dense_gradient(gradient, dtype):
    """`gradient` as a dense tensor of `dtype`. On TensorFlow the gradient of
    an embedding lookup is sparse (tf.IndexedSlices), which the update rules'
    arithmetic does not accept; Keras' own optimizers handle it the same way."""
    if type(gradient).__name__ == "IndexedSlices":
        import tensorflow as tf

        gradient = tf.convert_to_tensor(gradient)
    return ops.cast(gradient, dtype)


def learning_rate_argument(value, who, allow_none=False):
    """A learning rate as an optimizer's constructor takes it: a schedule or a
    callable (left alone), else a finite number >= 0 (a negative one would
    train uphill), or None where `allow_none`."""
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or callable(value):
        return value
    if value is None and allow_none:
        return None
    return validation.real(value, "learning_rate", who, minimum=0)


def check_learning_rate(optimizer):
    """Refuse a learning rate that the base optimizer took as a number but is
    negative, NaN or infinite (Keras' own optimizers accept -1.0); schedules
    and callables are left alone. Read back after the base constructor, so it
    works whatever the base class and however the rate was passed."""
    rate = getattr(optimizer, "_learning_rate", None)
    if isinstance(rate, keras.Variable):
        # Through a tensor: under tf.distribute `rate.value` is a MirroredVariable,
        # which numpy cannot read directly.
        value = float(ops.convert_to_numpy(ops.convert_to_tensor(rate)))
        shown = float(f"{value:.7g}")  # the float32 variable's digits, not its noise
        validation.real(shown, "learning_rate", type(optimizer).__name__, minimum=0)


def read(variable):
    """The current value of an optimizer-side variable: a Keras variable, or
    on TensorFlow the raw tf.Variable Keras hands to the update step (whose
    `.value` is a method)."""
    if isinstance(variable, keras.Variable):
        return variable.value
    return ops.convert_to_tensor(variable)


def value_before_update(variable):
    """The variable's current value, safe to read after the variable changes."""
    value = read(variable)
    if keras.backend.backend() == "jax":
        return value  # JAX arrays are immutable
    return ops.copy(value)  # torch and TF update in place


def no_grad():
    """torch.no_grad() on torch (in-place writes to parameters), else nothing."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()
