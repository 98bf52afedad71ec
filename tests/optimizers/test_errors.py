"""Bad input to the wrappers and the EMA callback fails early with an error
naming the problem."""

import keras
import pytest

from nlp4keras.callbacks import EMACallback
from nlp4keras.optimizers import (
    extend_with_exponential_moving_average,
    extend_with_gradient_accumulation,
    extend_with_gradient_transforms,
    extend_with_lazy_optimization,
    extend_with_lookahead,
    extend_with_parameter_wise_lr,
    extend_with_piecewise_linear_lr,
    extend_with_weight_decay,
)

Adam = keras.optimizers.Adam


@pytest.mark.parametrize(
    "base, message",
    [
        (Adam(), "got an instance of Adam; pass the class"),
        (keras.layers.Dense, "subclass of keras.optimizers.Optimizer"),
        ("adam", "subclass of keras.optimizers.Optimizer"),
        (keras.optimizers.LossScaleOptimizer, "LossScaleOptimizer itself cannot be extended"),
    ],
)
def test_base_must_be_an_optimizer_class(base, message):
    with pytest.raises(TypeError, match=message):
        extend_with_weight_decay(base)


def test_class_name_is_checked():
    with pytest.raises(ValueError, match="non-empty string"):
        extend_with_weight_decay(Adam, name="")
    assert extend_with_weight_decay(Adam, name="MyAdamW").__name__ == "MyAdamW"
    assert extend_with_lookahead(extend_with_weight_decay(Adam)).__name__ == (
        "AdamWeightDecayLookahead"
    )


def test_the_same_wrapper_twice_is_refused():
    """Its arguments would reach the outer copy only, the inner one keeping defaults."""
    with pytest.raises(ValueError, match="already has this wrapper \\(WeightDecay\\)"):
        extend_with_weight_decay(extend_with_lookahead(extend_with_weight_decay(Adam)))


WD, LAZY, ACC = (
    extend_with_weight_decay,
    extend_with_lazy_optimization,
    extend_with_gradient_accumulation,
)
LR, LA, EMA = (
    extend_with_piecewise_linear_lr,
    extend_with_lookahead,
    extend_with_exponential_moving_average,
)
PW, GT = extend_with_parameter_wise_lr, extend_with_gradient_transforms
BAD = [
    (WD, dict(weight_decay=0.1, weight_decay_rat=0.1), ValueError, "weight_decay_rat"),
    (WD, dict(exclude_from_weight_decay=["Norm("]), ValueError, "invalid regular expression 'Nor"),
    (WD, dict(exclude_from_weight_decay=[3]), TypeError, "regular expressions"),
    (WD, dict(weight_decay_rate=-1), ValueError, "weight_decay_rate"),
    (LAZY, dict(include_in_lazy_optimization=["[a"]), ValueError, "include_in_lazy_optimization"),
    (ACC, dict(grad_accum_steps=0), ValueError, "grad_accum_steps.*>= 1"),
    (ACC, dict(grad_accum_steps=2.5), TypeError, "`grad_accum_steps` must be an integer"),
    (
        ACC,
        dict(grad_accum_steps=2, gradient_accumulation_steps=4),
        ValueError,
        "grad_accum_steps only",
    ),
    (LR, dict(lr_schedule={}), ValueError, "non-empty dict"),
    (LR, dict(lr_schedule={-5: 1}), ValueError, "integers >= 0"),
    (LR, dict(lr_schedule={"warm": 1}), ValueError, "integers"),
    (LA, dict(steps_per_slow_update=0), ValueError, "steps_per_slow_update"),
    (LA, dict(slow_step_size=1.5), ValueError, "slow_step_size"),
    (EMA, dict(ema_momentum=1.0), ValueError, "ema_momentum"),
    (EMA, dict(use_ema=True), ValueError, "use one of the two"),
    (PW, dict(paramwise_lr_schedule=[("a", 2)]), TypeError, "dict"),
    (PW, dict(paramwise_lr_schedule={"a": "x"}), TypeError, "paramwise_lr_schedule\\['a'\\]"),
    (GT, dict(gradient_transforms=[("a", 3)]), TypeError, "not callable"),
    (GT, dict(gradient_transforms=["a"]), TypeError, "pair"),
]


@pytest.mark.parametrize("extend, kwargs, error, message", BAD)
def test_bad_arguments_are_named(extend, kwargs, error, message):
    with pytest.raises(error, match=message):
        extend(Adam)(0.01, **kwargs)


def test_ema_callback_arguments_and_order_of_calls():
    with pytest.raises(ValueError, match="ema_momentum"):
        EMACallback(ema_momentum=-0.1)
    callback = EMACallback()
    with pytest.raises(ValueError, match="has not seen any training"):
        callback.apply_ema_weights()
    with pytest.raises(ValueError, match="apply_ema_weights\\(\\) has not been called"):
        callback.reset_old_weights()
