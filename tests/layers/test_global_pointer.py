"""GlobalPointer and EfficientGlobalPointer against float64 numpy
re-implementations from the layers' own weights (RoPE written as explicit
2x2 rotations), atol 1e-4 on the valid spans; padding and end < start spans
at or below -infinity(); training with model.fit and .keras round trips."""

import keras
import numpy as np
import pytest

from nlp4keras.backend import infinity
from nlp4keras.layers import EfficientGlobalPointer, Embedding, GlobalPointer
from nlp4keras.losses import global_pointer_crossentropy

RNG = np.random.default_rng(0)


def as_np(x):
    return keras.ops.convert_to_numpy(x)


def apply_layer(layer, x, mask):
    """layer(x, mask) as numpy; jitted under JAX (op-by-op mode is slow)."""
    if not layer.built:
        layer.build(x.shape)
    if keras.backend.backend() == "jax":
        import jax

        return as_np(jax.jit(lambda v, m: layer(v, mask=m))(x, mask))
    return as_np(layer(x, mask=mask))


def numpy_rope(x):
    """RoPE on [batch, n, ..., d]: pair (x_2i, x_2i+1) at position p turned by
    the angle p * 10000^(-2i/d) with an explicit rotation."""
    d = x.shape[-1]
    out = np.empty_like(x)
    for p in range(x.shape[1]):
        for i in range(d // 2):
            angle = p * 10000.0 ** (-2 * i / d)
            c, s = np.cos(angle), np.sin(angle)
            a, b = x[:, p, ..., 2 * i], x[:, p, ..., 2 * i + 1]
            out[:, p, ..., 2 * i] = a * c - b * s
            out[:, p, ..., 2 * i + 1] = a * s + b * c
    return out


def weights64(layer):
    return [w.astype("float64") for w in layer.get_weights()]


def numpy_global_pointer(layer, x, rope):
    kernel, bias = weights64(layer)
    heads, size = layer.heads, layer.head_size
    h = (x.astype("float64") @ kernel + bias).reshape(x.shape[:2] + (heads, 2 * size))
    q, k = h[..., :size], h[..., size:]
    if rope:
        q, k = numpy_rope(q), numpy_rope(k)
    return np.einsum("bmhd,bnhd->bhmn", q, k) / np.sqrt(size)


def numpy_efficient_global_pointer(layer, x, rope):
    p_kernel, p_bias, q_kernel, q_bias = weights64(layer)
    h = x.astype("float64") @ p_kernel + p_bias
    q, k = h[..., 0::2], h[..., 1::2]
    if rope:
        q, k = numpy_rope(q), numpy_rope(k)
    shared = np.einsum("bmd,bnd->bmn", q, k) / np.sqrt(layer.head_size)
    terms = h @ q_kernel + q_bias  # [batch, n, 2 * heads]
    batch, n = x.shape[:2]
    out = np.empty((batch, layer.heads, n, n))
    for b in range(batch):
        for head in range(layer.heads):
            for start in range(n):
                for end in range(n):
                    extra = terms[b, end, 2 * head] + terms[b, start, 2 * head + 1]
                    out[b, head, start, end] = shared[b, start, end] + extra / 2
    return out


REFERENCES = {
    GlobalPointer: numpy_global_pointer,
    EfficientGlobalPointer: numpy_efficient_global_pointer,
}


def random_bias(layer):
    """Give the (zero-initialised) biases random values so they are checked."""
    layer.set_weights(
        [
            w if w.ndim > 1 else RNG.normal(size=w.shape).astype("float32")
            for w in layer.get_weights()
        ]
    )


@pytest.mark.parametrize("cls", [GlobalPointer, EfficientGlobalPointer])
@pytest.mark.parametrize("rope, tril", [(True, True), (False, False)])
def test_logits_match_numpy_with_masking(cls, rope, tril):
    batch, n, dim, heads, size = 2, 6, 8, 3, 4
    x = RNG.normal(size=(batch, n, dim)).astype("float32")
    mask = np.arange(n)[None, :] < np.array([n, 4])[:, None]
    layer = cls(heads, size, RoPE=rope, tril_mask=tril)
    layer.build(x.shape)
    random_bias(layer)
    got = apply_layer(layer, x, mask)
    assert got.shape == (batch, heads, n, n) == layer.compute_output_shape(x.shape)
    expected = REFERENCES[cls](layer, x, rope)
    padded = np.broadcast_to(~(mask[:, None, :, None] & mask[:, None, None, :]), got.shape)
    below = np.broadcast_to(np.tril(np.ones((n, n), bool), -1) & tril, got.shape)
    valid = ~padded & ~below
    assert valid.sum() > 0.4 * valid.size and padded.any()
    np.testing.assert_allclose(got[valid], expected[valid], atol=1e-4)
    assert (got[padded] <= -infinity() * 0.99).all()
    assert (got[below] <= -infinity() * 0.99).all()
    if rope:  # the rotation really changes the scores
        assert np.abs(REFERENCES[cls](layer, x, False) - expected)[valid].max() > 0.1


@pytest.mark.parametrize("cls", [GlobalPointer, EfficientGlobalPointer])
def test_config_shapes_and_errors(cls):
    layer = cls(3, 4, RoPE=False, use_bias=False, tril_mask=False, kernel_initializer="zeros")
    clone = cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.get_config()["RoPE"] is False and clone.get_config()["use_bias"] is False
    layer.build((None, None, 5))
    assert all(w.ndim == 2 for w in layer.get_weights())  # no biases
    assert layer.compute_output_shape((None, None, 5)) == (None, 3, None, None)
    assert layer.compute_mask(np.zeros((1, 2, 5)), np.ones((1, 2), bool)) is None
    symbolic = cls(2, 4)(keras.Input((None, 5)))
    assert tuple(symbolic.shape) == (None, 2, None, None)
    with pytest.raises(ValueError, match="even head_size"):
        cls(2, 5)
    with pytest.raises(ValueError, match="`heads` must be an integer >= 1, got 0"):
        cls(0, 4)
    with pytest.raises(ValueError, match=r"inputs \[batch, n, dim\]"):
        cls(2, 4).build((3, 5))


def span_dataset(samples=32, n=8, vocab=12):
    """Token ids (0 = padding) and two span types to learn: head 0 marks
    (i, i) on even tokens, head 1 marks (i, i + 1) when the id goes up."""
    lengths = RNG.integers(4, n + 1, size=samples)
    ids = RNG.integers(1, vocab, size=(samples, n))
    ids[np.arange(n)[None, :] >= lengths[:, None]] = 0
    labels = np.zeros((samples, 2, n, n), "float32")
    for s in range(samples):
        for i in range(lengths[s]):
            labels[s, 0, i, i] = float(ids[s, i] % 2 == 0)
            if i + 1 < lengths[s]:
                labels[s, 1, i, i + 1] = float(ids[s, i] < ids[s, i + 1])
    return ids.astype("int32"), labels


def test_fit_lowers_the_loss_and_keras_file_round_trips(tmp_path):
    ids, labels = span_dataset()
    tokens = keras.Input((None,), dtype="int32")
    hidden = Embedding(12, 16, mask_zero=True)(tokens)
    outputs = [GlobalPointer(2, 8)(hidden), EfficientGlobalPointer(2, 8)(hidden)]
    model = keras.Model(tokens, outputs)
    model.compile(keras.optimizers.Adam(0.05), loss=[global_pointer_crossentropy] * 2)
    history = model.fit(ids, [labels, labels], batch_size=16, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.6 * losses[0], losses
    before = model.predict(ids, verbose=0)
    path = tmp_path / "global_pointer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    after = loaded.predict(ids, verbose=0)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.loss == [global_pointer_crossentropy] * 2  # the loss came back too
