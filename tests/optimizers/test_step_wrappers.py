"""Once-per-update wrappers: piecewise-linear lr and lookahead against numpy
(fixed gradients through `optimizer.apply`, Adam and SGD bases, rtol 1e-5,
atol 1e-6); gradient accumulation inside `model.fit` against one step on the
concatenated batch (rtol 1e-5, atol 1e-6)."""

import keras
import numpy as np
from optimizers import reference as ref

from nlp4keras.optimizers import (
    extend_with_gradient_accumulation,
    extend_with_lookahead,
    extend_with_piecewise_linear_lr,
)

LR = ref.LR


def test_piecewise_linear_lr_matches_numpy(base):
    keras_base, kwargs, numpy_base = base
    schedule = {2: 1.0, 4: 0.25}
    opt = extend_with_piecewise_linear_lr(keras_base)(LR, lr_schedule=schedule, **kwargs)
    params, steps = ref.initial_params(), ref.gradient_steps(6)
    expected = ref.run_numpy(
        numpy_base(), params, steps, LR, lr_of_step=lambda t: ref.piecewise_linear(t, schedule)
    )
    ref.assert_params_close(ref.run_keras(opt, params, steps), expected)
    # The base learning rate stays what the user set (for Keras' lr callbacks).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(opt.learning_rate), LR)


def test_lookahead_matches_numpy(base):
    keras_base, kwargs, numpy_base = base
    opt = extend_with_lookahead(keras_base)(
        LR, steps_per_slow_update=2, slow_step_size=0.4, **kwargs
    )
    params, steps = ref.initial_params(), ref.gradient_steps(5)

    expected = {p: v.astype("float32").astype("float64") for p, v in params.items()}
    slow, numpy_opt = dict(expected), numpy_base()
    for t, grads in enumerate(steps):
        for path in expected:
            g = grads[path].astype("float32").astype("float64")
            expected[path] = numpy_opt.step(path, expected[path], g, LR, t + 1)
            if (t + 1) % 2 == 0:
                slow[path] = slow[path] + 0.4 * (expected[path] - slow[path])
                expected[path] = slow[path]
    ref.assert_params_close(ref.run_keras(opt, params, steps), expected)


def _dense_model(optimizer):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)]
    )
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_gradient_accumulation_equals_one_step_on_the_concatenated_batch():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    schedule = {2: 1.0, 3: 0.5}
    Accumulating = extend_with_gradient_accumulation(
        extend_with_piecewise_linear_lr(keras.optimizers.SGD)
    )
    accumulating = Accumulating(0.1, momentum=0.9, lr_schedule=schedule, grad_accum_steps=2)
    plain = extend_with_piecewise_linear_lr(keras.optimizers.SGD)(
        0.1, momentum=0.9, lr_schedule=schedule
    )
    small, big = _dense_model(accumulating), _dense_model(plain)
    small.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    big.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(small.get_weights(), big.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # 8 batches, 4 updates: iterations (and the lr schedule) count updates.
    assert int(keras.ops.convert_to_numpy(accumulating.iterations)) == 4
    assert int(keras.ops.convert_to_numpy(plain.iterations)) == 4
    # The schedule took effect: with a flat schedule the result differs.
    flat = _dense_model(keras.optimizers.SGD(0.1, momentum=0.9))
    flat.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert np.abs(flat.get_weights()[0] - big.get_weights()[0]).max() > 1e-3


def test_grad_accum_steps_one_is_plain_training():
    opt = extend_with_gradient_accumulation(keras.optimizers.SGD)(LR, grad_accum_steps=1)
    assert opt.gradient_accumulation_steps is None
    params, steps = ref.initial_params(), ref.gradient_steps(2)
    ref.assert_params_close(
        ref.run_keras(opt, params, steps), ref.run_numpy(ref.SGD(), params, steps, LR)
    )
