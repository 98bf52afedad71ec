"""Exponential moving averages: the optimizer wrapper and `EMACallback` against
a numpy recurrence over the weights each update produced (rtol 1e-5,
atol 1e-6), `apply_ema_weights` / `reset_old_weights` restoring bit for bit,
bias correction, the t=0 guard (bert4keras #332), gradient accumulation
(averages advance on real updates only), and evaluation with EMA weights
inside `model.fit` on the backend under test."""

import keras
import numpy as np
import pytest
from optimizers import reference as ref

from nlp4keras.callbacks import EMACallback
from nlp4keras.optimizers import (
    extend_with_exponential_moving_average,
    extend_with_gradient_accumulation,
)

MOMENTUM = 0.6
AdamEMA = extend_with_exponential_moving_average(keras.optimizers.Adam)


def _numpy(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _numpy_ema(snapshots, momentum):
    """Zero-started EMA of a list of weight lists, and its bias-corrected value."""
    average = [np.zeros_like(w, dtype="float64") for w in snapshots[0]]
    for weights in snapshots:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    scale = 1 - momentum ** len(snapshots)
    return average, [a / scale for a in average]


def test_wrapper_follows_the_recurrence_and_restores_exactly():
    params, steps = ref.initial_params(), ref.gradient_steps(4)
    variables = ref.make_variables(params)
    opt = AdamEMA(0.05, ema_momentum=MOMENTUM)
    snapshots = []
    ref.apply_steps(opt, variables, steps, trace=lambda v: snapshots.append(_numpy(v.values())))
    # The weights themselves are plain Adam's.
    expected_weights = ref.run_numpy(ref.Adam(), params, steps, 0.05)
    ref.assert_params_close(ref.numpy_values(variables), expected_weights)

    raw, corrected = _numpy_ema(snapshots, MOMENTUM)
    for average, expected in zip(opt.ema_weights, raw):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(average), expected, 1e-5, 1e-6)

    trained = _numpy(variables.values())
    opt.apply_ema_weights()
    for variable, expected in zip(variables.values(), corrected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, 1e-5, 1e-6)
    assert np.abs(_numpy(variables.values())[0] - trained[0]).max() > 1e-3
    opt.apply_ema_weights(bias_correction=False)  # a second apply keeps the first backup
    for variable, expected in zip(variables.values(), raw):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, 1e-5, 1e-6)
    opt.reset_old_weights()
    for variable, before in zip(variables.values(), trained):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), before)


def test_wrapper_refuses_to_apply_before_any_update():
    variables = ref.make_variables(ref.initial_params())
    opt = AdamEMA(0.05)
    with pytest.raises(ValueError, match="not been built"):
        opt.apply_ema_weights()
    opt.build(list(variables.values()))
    for bias_correction in (True, False):
        with pytest.raises(ValueError, match="iterations == 0"):
            opt.apply_ema_weights(bias_correction=bias_correction)
    with pytest.raises(ValueError, match="apply_ema_weights\\(\\) has not been called"):
        opt.reset_old_weights()


class Recorder(keras.callbacks.Callback):
    """Weights and optimizer step after every batch (`self.model` syncs JAX's state)."""

    def __init__(self):
        super().__init__()
        self.weights, self.iterations = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append(_numpy(self.model.trainable_variables))
        self.iterations.append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))


def _data(n=16, seed=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def _model(optimizer):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_wrapper_and_callback_in_fit_with_accumulation():
    Opt = extend_with_gradient_accumulation(
        extend_with_exponential_moving_average(keras.optimizers.Adam)
    )
    opt = Opt(0.05, ema_momentum=MOMENTUM, grad_accum_steps=2)
    model = _model(opt)
    callback = EMACallback(MOMENTUM, apply_on_train_end=True)
    recorder = Recorder()
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[callback, recorder])

    # 8 batches, 4 updates: the averages only see the weights after each update.
    assert recorder.iterations == [0, 1, 1, 2, 2, 3, 3, 4]
    updated = [
        w
        for w, t, prev in zip(recorder.weights, recorder.iterations, [0] + recorder.iterations)
        if t != prev
    ]
    assert len(updated) == 4 and callback.updates == 4
    _, corrected = _numpy_ema(updated, MOMENTUM)

    # The callback left its EMA weights in the model; reset brings back the trained ones.
    for variable, expected in zip(model.trainable_variables, corrected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, 1e-5, 1e-6)
    callback.reset_old_weights()
    for variable, last in zip(model.trainable_variables, recorder.weights[-1]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), last)

    # The optimizer's own average (computed inside the compiled step) agrees.
    opt.apply_ema_weights()
    for variable, expected in zip(model.trainable_variables, corrected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, 1e-5, 1e-6)
    opt.reset_old_weights()
    for variable, last in zip(model.trainable_variables, recorder.weights[-1]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), last)


class Probe(keras.callbacks.Callback):
    """Weights seen by evaluation (after EMACallback swapped) and after it."""

    def __init__(self):
        super().__init__()
        self.during, self.after = [], []

    def on_test_begin(self, logs=None):
        self.during.append(_numpy(self.model.trainable_variables))

    def on_test_end(self, logs=None):
        self.after.append(_numpy(self.model.trainable_variables))


def test_callback_evaluates_with_ema_weights_and_restores():
    x, y = _data()
    model = _model(keras.optimizers.SGD(0.1))
    callback, recorder, probe = EMACallback(MOMENTUM), Recorder(), Probe()
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        verbose=0,
        validation_data=(x, y),
        callbacks=[callback, recorder, probe],
    )
    # Epoch 1 validation: EMA of the 2 updates so far; epoch 2: of all 4.
    for epoch, batches in ((0, 2), (1, 4)):
        _, corrected = _numpy_ema(recorder.weights[:batches], MOMENTUM)
        for seen, expected in zip(probe.during[epoch], corrected):
            np.testing.assert_allclose(seen, expected, 1e-5, 1e-6)
        for seen, trained in zip(probe.after[epoch], recorder.weights[batches - 1]):
            np.testing.assert_array_equal(seen, trained)
    # The reported validation loss is the EMA weights' loss.
    callback.apply_ema_weights()
    ema_loss = model.evaluate(x, y, batch_size=8, verbose=0)
    callback.reset_old_weights()
    raw_loss = model.evaluate(x, y, batch_size=8, verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][-1], ema_loss, rtol=1e-5)
    assert abs(raw_loss - ema_loss) > 1e-4
    for variable, trained in zip(model.trainable_variables, recorder.weights[-1]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), trained)


class ApplyMidEpoch(keras.callbacks.Callback):
    """bert4keras style: apply/reset through a global optimizer, between batches,
    never touching `self.model` (which would sync JAX's state)."""

    def __init__(self, optimizer):
        super().__init__()
        self.optimizer = optimizer

    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            self.optimizer.apply_ema_weights()
            self.optimizer.reset_old_weights()


def test_apply_between_batches_needs_the_jax_state():
    x, y = _data()
    optimizer = AdamEMA(0.05)
    model = _model(optimizer)
    if keras.backend.backend() == "jax":  # the variables hold no weights there
        with pytest.raises(RuntimeError, match="jax_state_sync"):
            model.fit(x, y, batch_size=4, verbose=0, callbacks=[ApplyMidEpoch(optimizer)])
    else:
        recorder = Recorder()
        model.fit(x, y, batch_size=4, verbose=0, callbacks=[ApplyMidEpoch(optimizer), recorder])
        assert recorder.iterations == [1, 2, 3, 4]
