"""Optimizers: bert4keras' composable `extend_with_*` wrappers on Keras 3, layer-wise
learning rates, per-variable gradient transforms, and base optimizers.

    AdamEMA = extend_with_exponential_moving_average(
        extend_with_piecewise_linear_lr(extend_with_weight_decay(keras.optimizers.Adam))
    )
    optimizer = AdamEMA(1e-4, weight_decay_rate=0.01, exclude_from_weight_decay=["Norm", "bias"],
                        lr_schedule={1000: 1, 10000: 0.1}, ema_momentum=0.999)

How wrappers compose and where the order matters: `wrapper_base`, `update_wrappers`.
"""

# Wrappers (each returns a new optimizer class) and their helpers.
from nlp4keras.optimizers.ema import extend_with_exponential_moving_average
from nlp4keras.optimizers.gradient_transforms import (
    ClipByNorm,
    ClipByValue,
    GradientTransform,
    Scale,
    clip_by_norm,
    clip_by_value,
    extend_with_gradient_transforms,
    scale,
)
from nlp4keras.optimizers.layerwise import layerwise_lr_multipliers
from nlp4keras.optimizers.step_wrappers import (
    extend_with_gradient_accumulation,
    extend_with_lookahead,
    extend_with_piecewise_linear_lr,
)
from nlp4keras.optimizers.update_wrappers import (
    extend_with_layer_adaptation,
    extend_with_lazy_optimization,
    extend_with_parameter_wise_lr,
    extend_with_weight_decay,
)

__all__ = [
    "ClipByNorm",
    "ClipByValue",
    "GradientTransform",
    "Scale",
    "clip_by_norm",
    "clip_by_value",
    "extend_with_exponential_moving_average",
    "extend_with_gradient_accumulation",
    "extend_with_gradient_transforms",
    "extend_with_layer_adaptation",
    "extend_with_lazy_optimization",
    "extend_with_lookahead",
    "extend_with_parameter_wise_lr",
    "extend_with_piecewise_linear_lr",
    "extend_with_weight_decay",
    "layerwise_lr_multipliers",
    "scale",
]

# Base optimizers (import them below, then `__all__ += [...]`).
from nlp4keras.optimizers.adafactor import AdaFactor  # noqa: E402
from nlp4keras.optimizers.adam import Adam  # noqa: E402
from nlp4keras.optimizers.adax import AdaX  # noqa: E402
from nlp4keras.optimizers.lion import Lion  # noqa: E402

__all__ += ["AdaFactor", "Adam", "AdaX", "Lion"]
