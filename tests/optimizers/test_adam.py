"""bert4keras' `Adam` (epsilon on the corrected sqrt(v), `bias_correction`
switch) against a float64 numpy Adam, on the backend under test, and its
difference from `keras.optimizers.Adam` early in training."""

import keras
import numpy as np
import pytest

from nlp4keras.optimizers import Adam


def numpy_adam(value, grads, lr, beta_1, beta_2, epsilon, bias_correction):
    w, m, v = value.astype("float64"), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat, v_hat = m, v
        if bias_correction:
            m_hat, v_hat = m / (1 - beta_1**t), v / (1 - beta_2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + epsilon)
    return w


def run(optimizer, value, grads):
    variable = keras.Variable(value)
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
    return keras.ops.convert_to_numpy(variable)


@pytest.mark.parametrize("bias_correction", [True, False])
def test_adam_equals_numpy(bias_correction):
    rng = np.random.default_rng(0)
    value = rng.normal(size=(4, 3)).astype("float32")
    # Small gradients make epsilon matter, where the two Adam forms differ.
    grads = [(rng.normal(size=(4, 3)) * 1e-5).astype("float32") for _ in range(5)]
    config = dict(lr=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-6)
    optimizer = Adam(
        learning_rate=config["lr"],
        beta_1=config["beta_1"],
        beta_2=config["beta_2"],
        epsilon=config["epsilon"],
        bias_correction=bias_correction,
    )
    got = run(optimizer, value, grads)
    want = numpy_adam(value, grads, bias_correction=bias_correction, **config)
    np.testing.assert_allclose(got - value, want - value, rtol=1e-4, atol=1e-8)
    keras_adam = run(keras.optimizers.Adam(0.01, epsilon=1e-6), value, grads)
    assert np.abs(keras_adam - got).max() > 1e-5  # not just keras' Adam


def test_adam_config_round_trip_and_errors():
    optimizer = Adam(learning_rate=0.1, epsilon=1e-8, bias_correction=False)
    clone = Adam.from_config(optimizer.get_config())
    assert (clone.epsilon, clone.bias_correction) == (1e-8, False)
    with pytest.raises(ValueError, match="beta_1"):
        Adam(beta_1=1.0)
    with pytest.raises(ValueError, match="epsilon"):
        Adam(epsilon=-1.0)
