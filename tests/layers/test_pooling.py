"""Mask-aware GlobalAveragePooling1D / GlobalMaxPooling1D against numpy
computed over the valid steps only (atol 1e-6 in float32)."""

import keras
import numpy as np
import pytest
from helpers import run

from nlp4keras.layers import Embedding, GlobalAveragePooling1D, GlobalMaxPooling1D

LAYERS = [GlobalAveragePooling1D, GlobalMaxPooling1D]


def numpy_pool(layer_class, x, valid):
    """Pool each row over its valid steps; zeros where a row has none."""
    out = np.zeros((x.shape[0], x.shape[2]), dtype="float64")
    for row in range(x.shape[0]):
        steps = x[row][valid[row]]
        if len(steps):
            out[row] = steps.mean(0) if layer_class is GlobalAveragePooling1D else steps.max(0)
    return out


def random_batch(seed, lengths, steps=9, features=5):
    """Random values, right-padded masks of the given lengths, and padding
    filled with large values that would dominate a pooling that saw them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(lengths), steps, features)).astype("float32")
    valid = np.arange(steps)[None, :] < np.array(lengths)[:, None]
    x[~valid] = 1e3
    return x, valid


def as_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


@pytest.mark.parametrize("layer_class", LAYERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_explicit_mask_pools_valid_steps_only(layer_class, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, size=6)
    x, valid = random_batch(seed, lengths)
    # Scattered (not only right-padded) masks too.
    scattered = rng.random(valid.shape) < 0.5
    scattered[:, 0] = True
    for mask in (valid, scattered):
        x = np.where(mask[..., None], rng.normal(size=x.shape), 1e3).astype("float32")
        got = as_numpy(layer_class()(x, mask=mask))
        np.testing.assert_allclose(got, numpy_pool(layer_class, x, mask), atol=1e-6)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_float_mask_is_accepted(layer_class):
    x, valid = random_batch(3, [4, 9, 1])
    got = as_numpy(layer_class()(x, mask=valid.astype("float32")))
    np.testing.assert_allclose(got, numpy_pool(layer_class, x, valid), atol=1e-6)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_no_mask_means_every_step(layer_class):
    x = np.random.default_rng(4).normal(size=(2, 9, 5)).astype("float32")
    every = np.ones(x.shape[:2], dtype=bool)
    np.testing.assert_allclose(
        as_numpy(layer_class()(x)), numpy_pool(layer_class, x, every), atol=1e-6
    )


@pytest.mark.parametrize("layer_class", LAYERS)
def test_keepdims_and_channels_first(layer_class):
    x, valid = random_batch(5, [3, 7, 9])
    expected = numpy_pool(layer_class, x, valid)
    kept = as_numpy(layer_class(keepdims=True)(x, mask=valid))
    assert kept.shape == (3, 1, 5)
    np.testing.assert_allclose(kept[:, 0], expected, atol=1e-6)
    channels_first = np.transpose(x, (0, 2, 1))
    layer = layer_class(data_format="channels_first", keepdims=True)
    got = as_numpy(layer(channels_first, mask=valid))
    assert got.shape == (3, 5, 1)
    np.testing.assert_allclose(got[:, :, 0], expected, atol=1e-6)
    assert layer.compute_output_shape((None, 5, 9)) == (None, 5, 1)


@pytest.mark.parametrize("layer_class", LAYERS)
@pytest.mark.parametrize("embedding", ["nlp4keras", "keras"])
def test_mask_from_embedding_in_functional_model(layer_class, embedding):
    if embedding == "nlp4keras":
        embed = Embedding(30, 6, mask_zero=True, name="embed")
    else:
        embed = keras.layers.Embedding(30, 6, mask_zero=True, name="embed")
    ids_in = keras.Input((None,), dtype="int32")
    pooled = layer_class()(embed(ids_in))
    model = keras.Model(ids_in, pooled)
    assert getattr(pooled, "_keras_mask", None) is None  # the output carries no mask

    rng = np.random.default_rng(6)
    lengths = [1, 4, 7, 7, 2]
    ids = rng.integers(1, 30, size=(5, 7)).astype("int32")
    valid = np.arange(7)[None, :] < np.array(lengths)[:, None]
    ids[~valid] = 0
    table = as_numpy(model.get_layer("embed").embeddings)
    expected = numpy_pool(layer_class, table[ids], valid)
    np.testing.assert_allclose(run(model, ids), expected, atol=1e-6)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_fully_masked_row_gives_zeros_and_finite_gradients(layer_class):
    x, valid = random_batch(7, [0, 5, 0])
    got = as_numpy(layer_class()(x, mask=valid))
    np.testing.assert_array_equal(got[[0, 2]], 0.0)
    np.testing.assert_allclose(got[1], numpy_pool(layer_class, x, valid)[1], atol=1e-6)

    # Training through a fully masked row must not produce NaN either.
    inputs = keras.Input((9, 5))
    mask_in = keras.Input((9,), dtype="bool")
    dense = keras.layers.Dense(3)
    model = keras.Model([inputs, mask_in], layer_class()(dense(inputs), mask=mask_in))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = as_numpy(dense.kernel).copy()
    model.fit([x / 1e3, valid], np.ones((3, 3), "float32"), epochs=1, verbose=0)
    after = as_numpy(dense.kernel)
    assert np.isfinite(after).all()
    assert not np.allclose(before, after)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_config_round_trip_and_output_mask(layer_class):
    layer = layer_class(data_format="channels_first", keepdims=True, name="pool")
    config = layer.get_config()
    assert config["data_format"] == "channels_first" and config["keepdims"] is True
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is layer_class
    assert clone.get_config() == config
    assert layer.compute_mask(np.zeros((1, 2, 3)), np.ones((1, 3), bool)) is None


def test_save_and_load_model(tmp_path):
    ids_in = keras.Input((None,), dtype="int32")
    hidden = Embedding(20, 4, mask_zero=True)(ids_in)
    pooled = keras.layers.Concatenate()(
        [GlobalAveragePooling1D()(hidden), GlobalMaxPooling1D()(hidden)]
    )
    model = keras.Model(ids_in, pooled)
    ids = np.array([[3, 4, 0, 0], [5, 6, 7, 8]], dtype="int32")
    model.save(tmp_path / "pool.keras")
    loaded = keras.saving.load_model(tmp_path / "pool.keras")
    np.testing.assert_allclose(run(loaded, ids), run(model, ids), atol=1e-6)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_bad_arguments_are_named(layer_class):
    with pytest.raises(ValueError, match="data_format"):
        layer_class(data_format="channels_middle")
    with pytest.raises(ValueError, match="3-D"):
        layer_class()(np.zeros((2, 3), "float32"))
