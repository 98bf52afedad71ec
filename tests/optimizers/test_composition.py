"""Composed wrappers: three wrappers in two orders give the same numpy result
where the maths commutes; the documented example (accumulation + schedule +
weight decay on Adam) equals numpy; the wrappers act on every Keras optimizer
(and nlp4keras' own), including the fused torch classes Keras swaps in.
Tolerance: rtol 1e-5, atol 1e-6."""

import keras
import numpy as np
import pytest
from optimizers import reference as ref

from nlp4keras.optimizers import (
    extend_with_exponential_moving_average,
    extend_with_gradient_accumulation,
    extend_with_parameter_wise_lr,
    extend_with_piecewise_linear_lr,
    extend_with_weight_decay,
)
from nlp4keras.optimizers.adafactor import AdaFactor
from nlp4keras.optimizers.adax import AdaX
from nlp4keras.optimizers.lion import Lion

LR, RATE, SCHEDULE, MOMENTUM = 0.05, 0.2, {2: 1.0, 3: 0.5}, 0.7


def test_three_wrappers_in_two_orders_equal_numpy():
    wd, pw, ema = (
        extend_with_weight_decay,
        extend_with_piecewise_linear_lr,
        extend_with_exponential_moving_average,
    )
    kwargs = dict(
        weight_decay_rate=RATE,
        exclude_from_weight_decay=["bias"],
        lr_schedule=SCHEDULE,
        ema_momentum=MOMENTUM,
    )
    params, steps = ref.initial_params(), ref.gradient_steps(4)
    params["dense/bias"] += 0.5

    def rewrite(path, old, new, g, lr):
        return new if path.endswith("bias") else ref.weight_decay(old, new, lr, RATE)

    expected = ref.run_numpy(
        ref.Adam(), params, steps, LR, rewrite, lambda t: ref.piecewise_linear(t, SCHEDULE)
    )
    results = []
    for Opt in (ema(pw(wd(keras.optimizers.Adam))), wd(pw(ema(keras.optimizers.Adam)))):
        variables = ref.make_variables(params)
        opt = Opt(LR, **kwargs)
        ref.apply_steps(opt, variables, steps)
        ref.assert_params_close(ref.numpy_values(variables), expected)
        opt.apply_ema_weights()
        results.append(ref.numpy_values(variables))
    ref.assert_params_close(results[0], results[1], rtol=1e-6, atol=1e-7)


def test_accumulation_schedule_and_weight_decay_on_adam():
    Opt = extend_with_gradient_accumulation(
        extend_with_piecewise_linear_lr(extend_with_weight_decay(keras.optimizers.Adam))
    )
    opt = Opt(LR, weight_decay_rate=RATE, lr_schedule=SCHEDULE, grad_accum_steps=2)
    params, steps = ref.initial_params(), ref.gradient_steps(8)

    expected = {p: v.astype("float32").astype("float64") for p, v in params.items()}
    adam, updates = ref.Adam(), 0
    summed = {p: 0.0 for p in params}
    for batch, grads in enumerate(steps):
        for path in params:
            summed[path] = summed[path] + grads[path].astype("float32").astype("float64")
        if (batch + 1) % 2:
            continue
        lr = LR * ref.piecewise_linear(updates, SCHEDULE)
        for path in params:
            old = expected[path]
            new = adam.step(path, old, summed[path] / 2, lr, updates + 1)
            expected[path] = ref.weight_decay(old, new, lr, RATE)
            summed[path] = 0.0
        updates += 1
    ref.assert_params_close(ref.run_keras(opt, params, steps), expected)
    assert int(keras.ops.convert_to_numpy(opt.iterations)) == 4


BASES = {
    "SGD": lambda: keras.optimizers.SGD,
    "RMSprop": lambda: keras.optimizers.RMSprop,
    "AdamW": lambda: keras.optimizers.AdamW,
    "keras.Lion": lambda: keras.optimizers.Lion,
    "keras.Adafactor": lambda: keras.optimizers.Adafactor,
    # Under torch, Keras hands out a fused twin class for an exact built-in.
    "type(Adam())": lambda: type(keras.optimizers.Adam(LR)),
    "nlp4keras.AdaFactor": lambda: AdaFactor,
    "nlp4keras.AdaX": lambda: AdaX,
    "nlp4keras.Lion": lambda: Lion,
}


@pytest.mark.parametrize("name", sorted(BASES))
def test_wrappers_act_on_any_optimizer(name):
    Base = BASES[name]()
    Opt = extend_with_weight_decay(extend_with_parameter_wise_lr(Base))
    params, steps = ref.initial_params(), ref.gradient_steps(1)
    params["dense/bias"] += 0.5
    plain_optimizer = Base(LR)
    plain = ref.run_keras(plain_optimizer, params, steps)
    wrapped = ref.run_keras(
        Opt(LR, weight_decay_rate=RATE, paramwise_lr_schedule={"dense": 3.0}), params, steps
    )
    # Keras' own weight_decay (AdamW's) acts before update_step, outside the wrappers.
    native_decay = plain_optimizer.weight_decay or 0.0
    for path, old in params.items():
        old = old.astype("float32").astype("float64") * (1 - LR * native_decay)
        multiplier = 3.0 if path.startswith("dense") else 1.0
        expected = ref.weight_decay(old, old + (plain[path] - old) * multiplier, LR, RATE)
        np.testing.assert_allclose(wrapped[path], expected, rtol=1e-5, atol=1e-6, err_msg=path)
