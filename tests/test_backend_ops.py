"""Activations: exact vs tanh GELU, config aliases, set_gelu."""

import math

import keras
import numpy as np
import pytest

from nlp4keras import backend

X = np.linspace(-5, 5, 101).astype("float32")
EXACT = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in X.astype("float64")])
TANH = 0.5 * X * (1 + np.tanh(math.sqrt(2 / math.pi) * (X + 0.044715 * X**3)))


def apply(name):
    return keras.ops.convert_to_numpy(backend.get_activation(name)(keras.ops.convert_to_tensor(X)))


@pytest.mark.parametrize("name", ["gelu", "gelu_erf", "gelu_python"])
def test_exact_gelu_names(name):
    np.testing.assert_allclose(apply(name), EXACT, atol=1e-6)


@pytest.mark.parametrize("name", ["gelu_tanh", "gelu_new", "gelu_pytorch_tanh", "gelu_fast"])
def test_tanh_gelu_names(name):
    np.testing.assert_allclose(apply(name), TANH, atol=1e-6)
    assert np.abs(TANH - EXACT).max() > 1e-4  # the two really differ


def test_set_gelu_switches_the_bare_name():
    try:
        backend.set_gelu("tanh")
        np.testing.assert_allclose(apply("gelu"), TANH, atol=1e-6)
        assert backend.resolve_activation("gelu") == "gelu_tanh"
    finally:
        backend.set_gelu("erf")
    np.testing.assert_allclose(apply("gelu"), EXACT, atol=1e-6)
    with pytest.raises(ValueError, match="'erf' or 'tanh'"):
        backend.set_gelu("fast")
