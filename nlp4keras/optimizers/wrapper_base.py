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
import numbers
import re

import keras
from keras import ops

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


def compile_patterns(patterns, argument):
    """A list of regular expressions, checked; a single string is one pattern."""
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    checked = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(
                f"{argument} must be a list of regular expressions, got item {pattern!r}"
            )
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(
                f"{argument}: invalid regular expression {pattern!r}: {error}"
            ) from None
        checked.append(pattern)
    return checked


def matches_any(variable, patterns):
    path = variable_path(variable)
    return any(re.search(pattern, path) for pattern in patterns)


def real_number(value, argument, who, minimum=None, maximum=None, below=None):
    """`value` as a float, or a ValueError naming the argument and the rule."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and minimum is not None:
        ok = value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if ok and below is not None:
        ok = value < below
    if not ok:
        rules = [f">= {minimum}"] if minimum is not None else []
        rules += [f"<= {maximum}"] if maximum is not None else []
        rules += [f"< {below}"] if below is not None else []
        rule = " and ".join(rules) or "finite"
        raise ValueError(f"{who}: `{argument}` must be a real number {rule}, got {value!r}")
    return float(value)


def positive_int(value, argument, who, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{who}: `{argument}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


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
