"""Free per-variable gradient operations, selected by variable path.

    Opt = extend_with_gradient_transforms(keras.optimizers.Adam)
    opt = Opt(1e-3, gradient_transforms=[
        ("Embedding-", clip_by_norm(1.0)),
        ("MLM-", scale(0.5)),
        (".*", my_function),            # any f(gradient, variable) -> gradient
    ])

Every (regex, transform) whose regex is found in `variable.path` applies, in
list order, to the gradient that reaches `update_step`: after Keras' own
`clipnorm`/`clipvalue`/`global_clipnorm`, after gradient accumulation has
averaged the batches, before the inner update and the inner wrappers.

Serialisation: the ready-made transforms (`clip_by_value`, `clip_by_norm`,
`scale`) and any `GradientTransform` subclass registered with
`keras.saving.register_keras_serializable` round-trip through `model.save`.
A plain function is saved by name: register it the same way, or pass it in
`custom_objects` to `load_model`. Lambdas cannot be loaded back safely.
"""

import re

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.optimizers.wrapper_base import (
    PACKAGE,
    check_base_optimizer,
    check_learning_rate,
    compile_patterns,
    finish_wrapper,
    variable_path,
)


class GradientTransform:
    """Base class of serialisable transforms: `__call__(gradient, variable)`."""

    def __call__(self, gradient, variable):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClipByValue(GradientTransform):
    """Clip every gradient entry to [-limit, limit]."""

    def __init__(self, limit):
        self.limit = validation.real(limit, "limit", "clip_by_value", minimum=0)

    def __call__(self, gradient, variable):
        return ops.clip(gradient, -self.limit, self.limit)

    def get_config(self):
        return {"limit": self.limit}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClipByNorm(GradientTransform):
    """Rescale the variable's gradient to L2 norm <= max_norm."""

    def __init__(self, max_norm):
        self.max_norm = validation.real(max_norm, "max_norm", "clip_by_norm", minimum=0)

    def __call__(self, gradient, variable):
        norm = ops.sqrt(ops.sum(ops.square(gradient)))
        factor = self.max_norm / ops.maximum(norm, self.max_norm)
        return gradient * ops.cast(ops.where(norm > 0, factor, 1.0), gradient.dtype)

    def get_config(self):
        return {"max_norm": self.max_norm}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Scale(GradientTransform):
    """Multiply the gradient by a constant."""

    def __init__(self, factor):
        self.factor = validation.real(factor, "factor", "scale")

    def __call__(self, gradient, variable):
        return gradient * ops.cast(self.factor, gradient.dtype)

    def get_config(self):
        return {"factor": self.factor}


def clip_by_value(limit):
    """Transform clipping each gradient entry to [-limit, limit]."""
    return ClipByValue(limit)


def clip_by_norm(max_norm):
    """Transform rescaling each variable's gradient to L2 norm <= max_norm."""
    return ClipByNorm(max_norm)


def scale(factor):
    """Transform multiplying the gradient by `factor`."""
    return Scale(factor)


def extend_with_gradient_transforms(BaseOptimizer, name=None):
    """Apply per-variable gradient transforms (see the module docstring).

    New argument: `gradient_transforms=[(regex, transform), ...]`.
    """
    who = "extend_with_gradient_transforms"
    base = check_base_optimizer(BaseOptimizer, who, "GradientTransforms")

    class GradientTransforms(base):
        def __init__(self, *args, gradient_transforms=None, **kwargs):
            super().__init__(*args, **kwargs)
            check_learning_rate(self)
            self.gradient_transforms = _checked_transforms(gradient_transforms, who)

        def update_step(self, gradient, variable, learning_rate):
            path = variable_path(variable)
            for pattern, transform in self.gradient_transforms:
                if re.search(pattern, path):
                    gradient = transform(gradient, variable)
            return super().update_step(gradient, variable, learning_rate)

        def get_config(self):
            config = super().get_config()
            config.update(
                gradient_transforms=[
                    [pattern, keras.saving.serialize_keras_object(transform)]
                    for pattern, transform in self.gradient_transforms
                ]
            )
            return config

    return finish_wrapper(GradientTransforms, base, name, "GradientTransforms")


def _checked_transforms(transforms, who):
    if transforms is None:
        return []
    if not isinstance(transforms, (list, tuple)):
        raise TypeError(f"{who}: `gradient_transforms` must be a list of (regex, transform) pairs")
    checked = []
    for item in transforms:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TypeError(
                f"{who}: each gradient transform must be a (regex, transform) pair, got {item!r}"
            )
        pattern, transform = item
        (pattern,) = compile_patterns([pattern], "gradient_transforms", who)
        if isinstance(transform, dict):  # from a saved config
            transform = keras.saving.deserialize_keras_object(transform)
        if not callable(transform):
            raise TypeError(f"{who}: the transform for {pattern!r} is not callable: {transform!r}")
        checked.append((pattern, transform))
    return checked
