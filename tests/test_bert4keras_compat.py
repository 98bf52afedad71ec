"""bert4keras idioms that scripts rely on, each against its bert4keras meaning."""

import keras
import numpy as np
from helpers import TINY_BERT

from nlp4keras.models import build_transformer_model


def test_initializer_is_an_initializer_object():
    # bert4keras scripts: Dense(..., kernel_initializer=bert.initializer)
    bert = build_transformer_model(**TINY_BERT, initializer_range=0.05, return_keras_model=False)
    dense = keras.layers.Dense(300, kernel_initializer=bert.initializer)
    dense.build((None, 200))
    kernel = keras.ops.convert_to_numpy(dense.kernel)
    assert np.abs(kernel).max() <= 2 * 0.05 + 1e-7  # truncated at 2 stddev
    assert abs(kernel.std() - 0.05 * 0.88) < 0.002  # a 2-sigma truncated normal's std
    other = keras.ops.convert_to_numpy(bert.initializer((200, 300)))
    assert not np.allclose(other, kernel)  # each access draws afresh


# --------------------------------------------- bert4keras.backend helpers
RNG = np.random.default_rng(0)


def np_of(x):
    return keras.ops.convert_to_numpy(x)


def test_sequence_masking_with_bert4keras_arguments():
    from nlp4keras.backend import sequence_masking

    scores = RNG.normal(size=(2, 3, 4, 4)).astype("float32")  # [batch, heads, q, k]
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    both = mask[:, None, :, None] & mask[:, None, None, :]
    out, full = sequence_masking(scores, mask, -1e4, axis=[2, 3], return_mask=True)
    np.testing.assert_array_equal(np_of(out), np.where(both, scores, -1e4))
    np.testing.assert_array_equal(np_of(full), np.broadcast_to(both, (2, 1, 4, 4)))
    bias = RNG.normal(size=(1, 1, 4, 4)).astype("float32")
    out = sequence_masking(scores, mask, 0.0, axis=-1, bias=bias)
    np.testing.assert_allclose(np_of(out), np.where(mask[:, None, None], scores + bias, 0.0))
    causal = np.tril(np.ones((4, 4), bool))
    out = sequence_masking(scores, None, -5.0, bias=causal)  # a bool bias is a mask
    np.testing.assert_array_equal(np_of(out), np.where(causal, scores, -5.0))
    assert sequence_masking(scores) is scores


def test_search_layer_walks_back_through_the_graph():
    from nlp4keras.backend import search_layer

    bert = build_transformer_model(**TINY_BERT)
    head = keras.layers.Dense(3, name="head")(bert.output)
    classifier = keras.Model(bert.inputs, head)
    found = search_layer(classifier.output, "Embedding-Token")
    assert found is bert.get_layer("Embedding-Token")
    assert search_layer(classifier.output, "head").name == "head"
    assert search_layer(classifier.get_layer("head"), "Transformer-1-FeedForward") is not None
    assert search_layer(classifier.output, "no-such-layer") is None


def test_batch_gather_is_tf_gather_with_batch_dims():
    from nlp4keras.backend import batch_gather

    params = RNG.normal(size=(2, 5, 3)).astype("float32")
    indices = np.array([[4, 0], [1, 1]])
    expected = np.stack([params[b][indices[b]] for b in range(2)])
    np.testing.assert_array_equal(np_of(batch_gather(params, indices)), expected)
    rows = np.array([1, 0, 1])  # 1-D indices: batch_dims 0, rows of axis 0 (as tf.gather)
    np.testing.assert_array_equal(np_of(batch_gather(params, rows)), params[rows])
    floats = batch_gather(params, indices.astype("float32"))  # cast as bert4keras did
    np.testing.assert_array_equal(np_of(floats), expected)


def test_small_backend_helpers():
    from nlp4keras import backend as B

    x = RNG.normal(size=(2, 5, 4)).astype("float32")
    np.testing.assert_array_equal(np_of(B.align(np.ones((2, 4)), [0, 2], 4)).shape, (2, 1, 4, 1))
    np.testing.assert_allclose(np_of(B.root_mean_square(x, axis=-1)), np.sqrt((x**2).mean(-1)))
    np.testing.assert_allclose(np_of(B.swish(x)), x / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_allclose(np_of(B.leaky_relu(x)), np.where(x > 0, x, 0.2 * x), rtol=1e-6)
    padded = np_of(B.divisible_temporal_padding(x, 4))
    assert padded.shape == (2, 8, 4) and not padded[:, 5:].any()
    np.testing.assert_array_equal(padded[:, :5], x)
    pooled = np_of(B.pool1d(x, 2, strides=2))
    np.testing.assert_allclose(pooled, np.maximum(x[:, 0:4:2], x[:, 1:5:2]))
    average = np_of(B.pool1d(x, 5, pool_mode="avg"))
    np.testing.assert_allclose(average[:, 0], x.mean(1), rtol=1e-5)


def test_get_output_at_and_get_input_at_follow_the_calls():
    """Keras 2's per-call accessors on nlp4keras layers (a shared layer called twice)."""
    import pytest

    from nlp4keras.layers import LayerNormalization

    first, second = keras.Input((3, 4)), keras.Input((3, 4))
    norm = LayerNormalization(name="shared_norm")
    out_first, out_second = norm(first), norm(second)
    assert norm.get_output_at(0) is out_first
    assert norm.get_output_at(1) is out_second and norm.get_output_at(-1) is out_second
    assert norm.get_input_at(-2) is first
    with pytest.raises(ValueError, match=r"shared_norm.get_output_at: `node_index` 2 .*2 time"):
        norm.get_output_at(2)
    with pytest.raises(TypeError, match="node_index"):
        norm.get_output_at("last")
    # The bert4keras pattern: the last block's residual sum, before its LayerNorm.
    bert = build_transformer_model(**TINY_BERT, return_keras_model=False)
    before_norm = bert.model.layers[-2].get_output_at(-1)
    assert bert.model.layers[-2].name == "Transformer-1-FeedForward-Add"
    assert tuple(before_norm.shape) == (None, None, TINY_BERT["hidden_size"])
