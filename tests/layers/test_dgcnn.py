"""DGCNN block against a numpy re-implementation (dilated 'same' convolution,
sigmoid gate, gated residual, padding zeroed), atol 1e-5 in float32."""

import keras
import numpy as np
import pytest
from helpers import run

from nlp4keras.layers import DGCNN, Embedding


def numpy_dgcnn(layer, x, mask=None, skip_connect=True):
    """The block in float64 from the layer's own weights."""
    x = x.astype("float64")
    valid = np.ones(x.shape[:2]) if mask is None else mask.astype("float64")
    x = x * valid[..., None]
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype("float64")
    bias = keras.ops.convert_to_numpy(layer.bias).astype("float64")
    size, dilation, steps = layer.kernel_size, layer.dilation_rate, x.shape[1]
    # 'same' padding: the receptive field minus one, the smaller half in front.
    total = (size - 1) * dilation
    padded = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    h = bias + sum(padded[:, j * dilation : j * dilation + steps] @ kernel[j] for j in range(size))
    units = kernel.shape[-1] // 2
    h1, gate = h[..., :units], 1 / (1 + np.exp(-h[..., units:]))
    if skip_connect:
        shortcut = x
        if layer.residual_kernel is not None:
            shortcut = x @ keras.ops.convert_to_numpy(layer.residual_kernel)
        y = shortcut * (1 - gate) + h1 * gate
    else:
        y = h1 * gate
    return y * valid[..., None], h1, shortcut if skip_connect else None


def batch(seed, lengths, steps=11, features=6):
    """Random inputs and right-padded masks (tests share shapes: on JAX every
    new shape costs a compile)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(lengths), steps, features)).astype("float32")
    mask = np.arange(steps)[None, :] < np.array(lengths)[:, None]
    return x, mask


def make(**kwargs):
    # A random bias so that the bias path is checked too.
    return DGCNN(bias_initializer=keras.initializers.RandomNormal(seed=1), **kwargs)


@pytest.mark.parametrize("kernel_size,dilation_rate", [(3, 1), (3, 4), (2, 3)])
def test_matches_numpy_with_padding_zeroed(kernel_size, dilation_rate):
    x, mask = batch(kernel_size + dilation_rate, [11, 7, 3, 1])
    layer = make(kernel_size=kernel_size, dilation_rate=dilation_rate)
    got = keras.ops.convert_to_numpy(layer(x, mask=mask))
    assert got.shape == x.shape
    np.testing.assert_allclose(got, numpy_dgcnn(layer, x, mask)[0], atol=1e-5)
    np.testing.assert_array_equal(got[~mask], 0.0)
    # And without a mask every step is used.
    got = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, numpy_dgcnn(layer, x)[0], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [dict(dim=4), dict(dim=4, skip_connect=False), {}],
    ids=["projected_residual", "no_skip", "same_width"],
)
def test_width_change_and_skip_connect(kwargs):
    x, mask = batch(8, [11, 5, 5, 2])
    layer = make(**kwargs)
    got = keras.ops.convert_to_numpy(layer(x, mask=mask))
    width = kwargs.get("dim", x.shape[-1])
    assert got.shape == x.shape[:2] + (width,)
    assert layer.compute_output_shape((None, None, 6)) == (None, None, width)
    skip = kwargs.get("skip_connect", True)
    # A projection exists exactly when the residual needs a width change.
    assert (layer.residual_kernel is not None) == (skip and width != x.shape[-1])
    expected = numpy_dgcnn(layer, x, mask, skip_connect=skip)[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_padded_values_cannot_leak_into_valid_steps():
    x, mask = batch(9, [6, 4, 9, 11])
    layer = make(kernel_size=3, dilation_rate=4)
    noisy = x.copy()
    noisy[~mask] = np.random.default_rng(9).normal(scale=100.0, size=noisy[~mask].shape)
    clean_out = keras.ops.convert_to_numpy(layer(x, mask=mask))
    noisy_out = keras.ops.convert_to_numpy(layer(noisy, mask=mask))
    np.testing.assert_array_equal(noisy_out[mask], clean_out[mask])
    np.testing.assert_array_equal(noisy_out[~mask], 0.0)
    # Without the mask the same change does reach valid steps (the test can see a leak).
    leaked = keras.ops.convert_to_numpy(layer(noisy)) - keras.ops.convert_to_numpy(layer(x))
    assert np.abs(leaked[mask]).max() > 1e-3


@pytest.mark.parametrize("steps", [1, 11])
def test_stacked_dilations_keep_shape_and_mask_in_a_model(steps):
    """Receptive fields far wider than the sequence (steps=1) still keep its shape."""
    ids_in = keras.Input((None,), dtype="int32")
    h = Embedding(40, 6, mask_zero=True, name="embed")(ids_in)
    blocks = [make(dilation_rate=rate, name=f"dgcnn_{rate}") for rate in (1, 2, 4)]
    for block in blocks:
        h = block(h)
    assert getattr(h, "_keras_mask", None) is not None  # the mask propagates
    model = keras.Model(ids_in, h)

    rng = np.random.default_rng(steps)
    ids = rng.integers(1, 40, size=(4, steps)).astype("int32")
    lengths = np.array([steps, max(steps // 2, 1), 1, steps])
    mask = np.arange(steps)[None, :] < lengths[:, None]
    ids[~mask] = 0
    got = run(model, ids)
    assert got.shape == (4, steps, 6)
    expected = keras.ops.convert_to_numpy(model.get_layer("embed").embeddings)[ids]
    for block in blocks:
        expected = numpy_dgcnn(block, expected, mask)[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_gate_dropout_acts_in_training_and_keeps_gates_inside_0_1():
    x, mask = batch(10, [11, 8, 6, 11])
    layer = make(dropout_rate=0.5)
    inference = keras.ops.convert_to_numpy(layer(x, mask=mask, training=False))
    expected, h1, shortcut = numpy_dgcnn(layer, x, mask)
    np.testing.assert_allclose(inference, expected, atol=1e-5)
    trained = keras.ops.convert_to_numpy(layer(x, mask=mask, training=True))
    assert np.abs(trained - inference).max() > 1e-3
    # A gate in (0, 1) puts every output between its shortcut and h1.
    low = np.minimum(shortcut, h1)[mask] - 1e-5
    high = np.maximum(shortcut, h1)[mask] + 1e-5
    assert ((trained[mask] >= low) & (trained[mask] <= high)).all()


def test_config_and_save_load_round_trip(tmp_path):
    layer = DGCNN(dim=5, kernel_size=2, dilation_rate=3, dropout_rate=0.1, skip_connect=False)
    config = layer.get_config()
    for key, value in dict(
        dim=5, kernel_size=2, dilation_rate=3, dropout_rate=0.1, skip_connect=False
    ).items():
        assert config[key] == value
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is DGCNN and clone.get_config() == config

    ids_in = keras.Input((None,), dtype="int32")
    h = Embedding(20, 6, mask_zero=True)(ids_in)
    h = DGCNN(dim=4, dilation_rate=2, name="block")(h)
    model = keras.Model(ids_in, DGCNN(dilation_rate=3)(h))
    ids = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]], dtype="int32")
    model.save(tmp_path / "dgcnn.keras")
    restored = keras.saving.load_model(tmp_path / "dgcnn.keras")
    assert restored.get_layer("block").residual_kernel is not None
    np.testing.assert_array_equal(run(restored, ids), run(model, ids))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="dim"):
        DGCNN(dim=0)
    with pytest.raises(TypeError, match="DGCNN: `kernel_size` must be an integer >= 1, got 2.5"):
        DGCNN(kernel_size=2.5)
    with pytest.raises(ValueError, match="dilation_rate"):
        DGCNN(dilation_rate=-1)
    with pytest.raises(ValueError, match="dropout_rate"):
        DGCNN(dropout_rate=1.0)
    with pytest.raises(ValueError, match="batch, steps, features"):
        DGCNN()(np.zeros((2, 3), "float32"))
