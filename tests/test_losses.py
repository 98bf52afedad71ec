"""nlp4keras.losses against float64 numpy closed forms: multi-label CE (dense,
soft, sparse, GlobalPointer), its gradient through the backend's autodiff,
extreme logits, InfoNCE, and FlatNCE's gradient being InfoNCE's rescaled."""

import keras
import numpy as np
import pytest

from nlp4keras import losses
from nlp4keras.backend import infinity
from nlp4keras.backend import multilabel_categorical_crossentropy as backend_mce

RNG = np.random.default_rng(0)


def as_np(x):
    return keras.ops.convert_to_numpy(x)


def evaluate(fn, *args):
    """fn(*args) as numpy; jitted under JAX, whose op-by-op mode compiles
    every single op (slow for a test suite)."""
    if keras.backend.backend() == "jax":
        import jax

        fn = jax.jit(fn)
    return as_np(fn(*args))


def value_and_grad(fn, x):
    """(fn(x), d sum(fn(x)) / dx) as numpy, through the autodiff of the
    backend under test."""
    name = keras.backend.backend()
    x = np.asarray(x, "float32")
    if name == "jax":
        import jax

        def total(v):
            out = fn(v)
            return jax.numpy.sum(out), out

        (_, out), grad = jax.jit(jax.value_and_grad(total, has_aux=True))(x)
        return np.asarray(out), np.asarray(grad)
    if name == "torch":
        import torch

        v = torch.tensor(x, requires_grad=True)
        out = fn(v)
        torch.sum(out).backward()
        return out.detach().numpy(), v.grad.numpy()
    if name == "tensorflow":
        import tensorflow as tf

        v = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(v)
            out = fn(v)
            total = tf.reduce_sum(out)
        return out.numpy(), tape.gradient(total, v).numpy()
    raise NotImplementedError(f"no autodiff helper for backend {name}")


# --- multi-label categorical cross-entropy -----------------------------------


def numpy_mce(labels, logits):
    """log(1 + sum_neg e^s) + log(1 + sum_pos e^-s), written out directly."""
    s = logits.astype("float64")
    pos = labels > 0.5
    neg_sum = np.where(pos, 0.0, np.exp(s)).sum(-1)
    pos_sum = np.where(pos, np.exp(-s), 0.0).sum(-1)
    return np.log1p(neg_sum) + np.log1p(pos_sum)


def numpy_mce_grad(labels, logits):
    """Analytic gradient: e^{s_i} / (1 + sum_neg e^s) on negatives and
    -e^{-s_j} / (1 + sum_pos e^-s) on positives (in log space, so that
    extreme logits do not overflow)."""
    s = logits.astype("float64")
    pos = labels > 0.5
    neg_terms = np.where(pos, -np.inf, s)
    pos_terms = np.where(pos, -s, -np.inf)
    neg_total = np.logaddexp(0, np.logaddexp.reduce(neg_terms, axis=-1, keepdims=True))
    pos_total = np.logaddexp(0, np.logaddexp.reduce(pos_terms, axis=-1, keepdims=True))
    return np.exp(neg_terms - neg_total) - np.exp(pos_terms - pos_total)


def stable_numpy_mce(labels, logits):
    """Same closed form through np.logaddexp, for extreme logits."""
    s = logits.astype("float64")
    pos = labels > 0.5
    neg = np.logaddexp.reduce(np.where(pos, -np.inf, s), axis=-1)
    posl = np.logaddexp.reduce(np.where(pos, -s, -np.inf), axis=-1)
    return np.logaddexp(0, neg) + np.logaddexp(0, posl)


def random_problem(shape=(3, 4, 12)):
    logits = (RNG.normal(size=shape) * 3).astype("float32")
    labels = (RNG.random(shape) < 0.3).astype("float32")
    return labels, logits


def test_mce_equals_closed_form_and_backend_alias():
    labels, logits = random_problem()
    expected = numpy_mce(labels, logits)
    got = evaluate(losses.multilabel_categorical_crossentropy, labels, logits)
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        evaluate(backend_mce, labels, logits), expected, rtol=1e-5, atol=1e-6
    )


def test_mce_gradient_matches_analytic():
    labels, logits = random_problem()
    _, got = value_and_grad(lambda s: losses.multilabel_categorical_crossentropy(labels, s), logits)
    np.testing.assert_allclose(got, numpy_mce_grad(labels, logits), atol=1e-5)


def test_mce_soft_labels():
    labels, logits = random_problem((5, 9))
    soft = np.where(RNG.random(labels.shape) < 0.5, labels, RNG.random(labels.shape))
    s = logits.astype("float64")
    expected = np.log1p(((1 - soft) * np.exp(s)).sum(-1)) + np.log1p((soft * np.exp(-s)).sum(-1))
    got = evaluate(losses.multilabel_categorical_crossentropy, soft.astype("float32"), logits)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_mce_ignores_masked_logits():
    """Logits at -infinity() (GlobalPointer padding) are neither class."""
    labels, logits = random_problem((4, 10))
    masked = logits.copy()
    masked[:, 7:] = -infinity()
    labels[:, 7] = 1.0  # a positive label on a masked logit must not count
    expected = numpy_mce(labels[:, :7], logits[:, :7])
    got = evaluate(losses.multilabel_categorical_crossentropy, labels, masked)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("margin", [20.0, 1e4])
@pytest.mark.parametrize("right", [True, False])
def test_mce_extreme_logits_stay_finite_and_exact(margin, right):
    """Logits far on the right (or wrong) side of 0: dense and sparse losses
    keep the exact value (bert4keras' clipped sparse formula does not) and
    finite gradients."""
    indices = np.argsort(RNG.random((3, 16)), axis=-1)[:, :4].astype("int32")
    labels = np.zeros((3, 16), "float32")
    np.put_along_axis(labels, indices, 1.0, axis=-1)
    sign = 1.0 if right else -1.0
    logits = (np.where(labels > 0, margin, -margin) * sign).astype("float32")
    logits += RNG.normal(size=logits.shape).astype("float32")
    expected = stable_numpy_mce(labels, logits)
    dense = losses.multilabel_categorical_crossentropy
    sparse = losses.sparse_multilabel_categorical_crossentropy
    for value, grad in (
        value_and_grad(lambda s: dense(labels, s), logits),
        value_and_grad(lambda s: sparse(indices, s), logits),
    ):
        np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-5)
        assert np.isfinite(grad).all()
        # float32 spacing near 1e4 is ~1e-3, hence the relative tolerance
        np.testing.assert_allclose(grad, numpy_mce_grad(labels, logits), rtol=2e-3, atol=1e-5)


def test_mce_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        losses.multilabel_categorical_crossentropy(np.zeros((2, 3)), np.zeros((2, 4)))


# --- sparse multi-label CE ---------------------------------------------------


def padded_indices(labels, width=None, pad=0):
    """Positive class indices of each row, padded with `pad` to `width`."""
    flat = labels.reshape(-1, labels.shape[-1])
    width = width or max(1, int((flat > 0.5).sum(-1).max()))
    rows = [list(np.flatnonzero(row > 0.5)) for row in flat]
    out = np.array([r + [pad] * (width - len(r)) for r in rows], "int32")
    return out.reshape(labels.shape[:-1] + (width,))


def test_sparse_equals_dense_without_padding():
    """Every row lists exactly K distinct positives: no padding needed."""
    logits = (RNG.normal(size=(3, 4, 12)) * 3).astype("float32")
    indices = np.argsort(RNG.random((3, 4, 12)), axis=-1)[..., :3].astype("int32")
    labels = np.zeros_like(logits)
    np.put_along_axis(labels, indices, 1.0, axis=-1)
    got, grad = value_and_grad(
        lambda s: losses.sparse_multilabel_categorical_crossentropy(indices, s), logits
    )
    np.testing.assert_allclose(got, numpy_mce(labels, logits), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, numpy_mce_grad(labels, logits), atol=1e-5)


def test_sparse_mask_zero_drops_class_zero():
    logits = (RNG.normal(size=(6, 10)) * 3).astype("float32")
    labels = (RNG.random((6, 10)) < 0.3).astype("float32")
    labels[:, 0] = 0.0  # index 0 is padding, never a real class
    labels[0] = 0.0  # a row with no positives at all
    indices = padded_indices(labels, width=6)
    expected = numpy_mce(labels[:, 1:], logits[:, 1:])
    got, grad = value_and_grad(
        lambda s: losses.sparse_multilabel_categorical_crossentropy(indices, s, True), logits
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad[:, 1:], numpy_mce_grad(labels[:, 1:], logits[:, 1:]), atol=1e-5)
    np.testing.assert_array_equal(grad[:, 0], 0.0)
    # without mask_zero the padding would count class 0 as a positive
    unmasked = evaluate(losses.sparse_multilabel_categorical_crossentropy, indices, logits)
    assert np.abs(unmasked - expected).max() > 1e-3


def test_sparse_rank_mismatch():
    with pytest.raises(ValueError, match="same rank"):
        losses.sparse_multilabel_categorical_crossentropy(np.zeros((2,), "int32"), np.zeros((2, 4)))


# --- GlobalPointer span losses -----------------------------------------------


def test_global_pointer_losses_dense_and_sparse():
    batch, heads, n = 2, 3, 5
    logits = (RNG.normal(size=(batch, heads, n, n)) * 3).astype("float32")
    spans = np.zeros((batch, heads, 2, 2), "int32")  # up to 2 spans, (0, 0) = padding
    labels = np.zeros_like(logits)
    for b in range(batch):
        for h in range(heads):
            for slot in range(int(RNG.integers(0, 3))):
                start = int(RNG.integers(1, n))
                end = int(RNG.integers(start, n))
                if labels[b, h, start, end] == 0:
                    labels[b, h, start, end] = 1.0
                    spans[b, h, slot] = (start, end)
    flat_labels = labels.reshape(batch, heads, -1)
    flat_logits = logits.reshape(batch, heads, -1)
    expected = numpy_mce(flat_labels, flat_logits).mean(axis=1)
    dense = evaluate(losses.global_pointer_crossentropy, labels, logits)
    np.testing.assert_allclose(dense, expected, rtol=1e-5, atol=1e-6)
    # the sparse form pads with span (0, 0), which therefore takes no part
    expected = numpy_mce(flat_labels[..., 1:], flat_logits[..., 1:]).mean(axis=1)
    sparse = evaluate(losses.sparse_global_pointer_crossentropy, spans, logits)
    np.testing.assert_allclose(sparse, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\[batch, heads, n, n\]"):
        losses.global_pointer_crossentropy(labels[0], logits[0])


# --- contrastive losses ------------------------------------------------------


def numpy_paired_logits(embeddings, temperature):
    x = embeddings.astype("float64")
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    logits = x @ x.T / temperature
    np.fill_diagonal(logits, -np.inf)
    partners = np.arange(len(x)) ^ 1  # 0<->1, 2<->3, ...
    return logits, partners


def numpy_cross_entropy(logits, positives):
    top = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(-1)) + top[:, 0]
    return lse - logits[np.arange(len(logits)), positives]


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_infonce_on_paired_embeddings(temperature):
    embeddings = RNG.normal(size=(8, 6)).astype("float32")
    expected = numpy_cross_entropy(*numpy_paired_logits(embeddings, temperature))
    got = evaluate(lambda e: losses.infonce_loss(None, e, temperature), embeddings)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    got = evaluate(losses.InfoNCE(temperature), np.zeros(8), embeddings)  # mean over rows
    np.testing.assert_allclose(got, expected.mean(), rtol=1e-5)


def test_infonce_from_logits_defaults_to_the_diagonal():
    logits = (RNG.normal(size=(5, 5)) * 4).astype("float32")
    expected = numpy_cross_entropy(logits.astype("float64"), np.arange(5))
    np.testing.assert_allclose(evaluate(losses.infonce_from_logits, logits), expected, rtol=1e-5)
    positives = np.array([4, 0, 3, 3, 1])
    expected = numpy_cross_entropy(logits.astype("float64"), positives)
    got = evaluate(losses.infonce_from_logits, logits, positives)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_flatnce_gradient_is_infonce_gradient_rescaled():
    """Row by row, d FlatNCE = d InfoNCE / sigmoid(L): parallel, and larger."""
    logits = (RNG.normal(size=(6, 9)) * 2).astype("float32")
    positives = RNG.integers(0, 9, size=6)
    flat, g_flat = value_and_grad(lambda s: losses.flatnce_from_logits(s, positives), logits)
    np.testing.assert_allclose(flat, 1.0, rtol=1e-6)  # the value is always 1
    _, g_info = value_and_grad(lambda s: losses.infonce_from_logits(s, positives), logits)
    cosine = (g_flat * g_info).sum(-1) / np.linalg.norm(g_flat, axis=-1)
    cosine /= np.linalg.norm(g_info, axis=-1)
    assert cosine.min() > 0.999
    info = numpy_cross_entropy(logits.astype("float64"), positives)
    # InfoNCE = softplus(L), so L = log(e^InfoNCE - 1) and sigmoid(L) = 1 - e^-InfoNCE
    ratio = np.linalg.norm(g_flat, axis=-1) / np.linalg.norm(g_info, axis=-1)
    np.testing.assert_allclose(ratio, 1 / (1 - np.exp(-info)), rtol=1e-4)


def test_flatnce_on_paired_embeddings_matches_weighted_infonce():
    embeddings = RNG.normal(size=(6, 4)).astype("float32")
    info = numpy_cross_entropy(*numpy_paired_logits(embeddings, 0.5))
    weights = (1 / (1 - np.exp(-info))).astype("float32")
    _, g_flat = value_and_grad(lambda e: losses.flatnce_loss(None, e, 0.5), embeddings)
    _, g_info = value_and_grad(
        lambda e: keras.ops.multiply(losses.infonce_loss(None, e, temperature=0.5), weights),
        embeddings,
    )
    np.testing.assert_allclose(g_flat, g_info, rtol=1e-4, atol=1e-5)
    assert np.abs(g_flat).max() > 1e-3


def test_contrastive_errors():
    with pytest.raises(ValueError, match="even number of rows"):
        losses.infonce_loss(None, np.zeros((5, 3), "float32"))
    with pytest.raises(ValueError, match=r"\[2B, dim\]"):
        losses.infonce_loss(None, np.zeros((4,), "float32"))
    with pytest.raises(ValueError, match="FlatNCE: `temperature` must be a finite real number > 0"):
        losses.FlatNCE(temperature=0)


# --- serialisation -----------------------------------------------------------


@pytest.mark.parametrize(
    "loss, y_true, y_pred",
    [
        (losses.SparseMultilabelCategoricalCrossentropy(mask_zero=True), [[0, 2]], [[3.0, -1, 2]]),
        (losses.MultilabelCategoricalCrossentropy(), [[0, 1.0, 1]], [[3.0, -1, 2]]),
        (losses.InfoNCE(temperature=0.2), [0, 0], [[1.0, 2], [2, 1.5]]),
        (losses.FlatNCE(temperature=0.3), [0, 0], [[1.0, 2], [2, 1.5]]),
    ],
)
def test_loss_classes_round_trip(loss, y_true, y_pred):
    y_true, y_pred = np.array(y_true, "float32"), np.array(y_pred, "float32")
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
    np.testing.assert_allclose(evaluate(clone, y_true, y_pred), evaluate(loss, y_true, y_pred))


def test_loss_functions_are_registered():
    fn = losses.sparse_global_pointer_crossentropy
    name = keras.saving.serialize_keras_object(fn)
    assert keras.saving.deserialize_keras_object(name) is fn
