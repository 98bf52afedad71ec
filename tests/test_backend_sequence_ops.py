"""Sequence ops of nlp4keras.backend against independent numpy computations:
sequence_masking, attention_normalize, sinusoidal_embeddings, RoPE and
piecewise_linear."""

import math

import keras
import numpy as np
import pytest

from nlp4keras import backend

RNG = np.random.default_rng(0)


def as_np(x):
    return keras.ops.convert_to_numpy(x)


def lengths_mask(lengths, seq_len):
    return np.arange(seq_len)[None, :] < np.asarray(lengths)[:, None]


# --- sequence_masking --------------------------------------------------------


@pytest.mark.parametrize("axis", [None, 2, 3, -2])
@pytest.mark.parametrize("value", [7.5, "-inf", "inf"])
def test_sequence_masking_axis_and_value(axis, value):
    x = RNG.normal(size=(2, 3, 4, 5)).astype("float32")
    real_axis = {None: 1, -1: 3, -2: 2}.get(axis, axis)
    mask = lengths_mask([1, x.shape[real_axis] - 1], x.shape[real_axis])
    fill = {"-inf": -backend.infinity(), "inf": backend.infinity()}.get(value, value)
    expected = x.copy()
    for b in range(2):
        for t in np.flatnonzero(~mask[b]):
            index = [b, slice(None), slice(None), slice(None)]
            index[real_axis] = t
            expected[tuple(index)] = fill
    got = as_np(backend.sequence_masking(x, mask, value, axis))
    np.testing.assert_array_equal(got, expected)
    # a 0/1 float mask means the same as a boolean one
    np.testing.assert_array_equal(as_np(backend.sequence_masking(x, mask * 1.0, value, axis)), got)


def test_sequence_masking_without_mask_is_identity():
    x = RNG.normal(size=(2, 3)).astype("float32")
    np.testing.assert_array_equal(as_np(backend.sequence_masking(x, None, "-inf")), x)


def test_sequence_masking_errors():
    x = np.zeros((2, 3, 4), "float32")
    with pytest.raises(ValueError, match="rank 2"):
        backend.sequence_masking(x, np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="non-batch axes"):
        backend.sequence_masking(x, np.ones((2, 3)), axis=0)
    with pytest.raises(ValueError, match="'-inf' or 'inf'"):
        backend.sequence_masking(x, np.ones((2, 3)), value="nan")


# --- attention_normalize -----------------------------------------------------


def numpy_attention(a, mask, method):
    """Reference: every row normalised over its valid keys only (last axis)."""
    a = a.astype("float64")
    valid = np.broadcast_to(mask[:, None, None, :], a.shape)
    n = valid.sum(-1, keepdims=True)
    if method == "squared_relu":
        return np.where(valid, np.maximum(a, 0) ** 2 / n, 0.0)
    if method == "softmax_plus":
        a = a * np.log(np.maximum(n, 16)) / np.log(512)
    e = np.where(valid, np.exp(a - a.max(-1, keepdims=True)), 0.0)
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("method", ["softmax", "squared_relu", "softmax_plus"])
@pytest.mark.parametrize("lengths", [[40, 7], [40, 40]])
def test_attention_normalize_matches_numpy(method, lengths):
    a = RNG.normal(size=(2, 3, 4, 40)).astype("float32") * 3
    mask = lengths_mask(lengths, 40)
    got = as_np(backend.attention_normalize(a, mask, axis=-1, method=method))
    np.testing.assert_allclose(got, numpy_attention(a, mask, method), rtol=1e-5, atol=1e-7)
    if lengths[0] == lengths[1]:  # no mask means every key counts
        got = as_np(backend.attention_normalize(a, None, axis=-1, method=method))
        np.testing.assert_allclose(got, numpy_attention(a, mask, method), rtol=1e-5, atol=1e-7)


def test_attention_normalize_on_another_axis():
    a = RNG.normal(size=(2, 6, 3)).astype("float32")
    mask = lengths_mask([6, 2], 6)
    got = as_np(backend.attention_normalize(a, mask, axis=1, method="softmax"))
    moved = np.moveaxis(a, 1, -1)[:, None]  # [2, 1, 3, 6]: keys last
    expected = np.moveaxis(numpy_attention(moved, mask, "softmax")[:, 0], -1, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_attention_normalize_unknown_method():
    with pytest.raises(ValueError, match="unknown attention normalization 'sparsemax'"):
        backend.attention_normalize(np.zeros((1, 2, 3)), method="sparsemax")


# --- sinusoidal embeddings and RoPE ------------------------------------------


def numpy_sinusoidal(pos, dim, base=10000.0):
    freqs = base ** (-2.0 * np.arange(dim // 2) / dim)
    angles = np.asarray(pos, "float64")[..., None] * freqs
    out = np.empty(angles.shape[:-1] + (dim,))
    out[..., 0::2] = np.sin(angles)
    out[..., 1::2] = np.cos(angles)
    return out


def numpy_rope(x, positions, base=10000.0):
    """Rotate each pair (x_2i, x_2i+1), seen as a complex number, by p * w_i.
    x: [batch, time, ..., dim]."""
    dim = x.shape[-1]
    freqs = base ** (-2.0 * np.arange(dim // 2) / dim)
    turn = np.exp(1j * positions[:, None] * freqs)  # [time, dim/2]
    turn = turn.reshape((1, len(positions)) + (1,) * (x.ndim - 3) + (dim // 2,))
    z = (x[..., 0::2] + 1j * x[..., 1::2]).astype("complex128") * turn
    out = np.empty(x.shape)
    out[..., 0::2], out[..., 1::2] = z.real, z.imag
    return out


@pytest.mark.parametrize("base", [10000, 500])
def test_sinusoidal_embeddings_interleaved(base):
    pos = np.array([[0, 1, 2, 5], [3, 7, 11, 13]], "float32")
    got = as_np(backend.sinusoidal_embeddings(pos, 8, base=base))
    assert got.shape == (2, 4, 8)
    np.testing.assert_allclose(got, numpy_sinusoidal(pos, 8, base), atol=2e-6)


def test_sinusoidal_embeddings_odd_dim():
    with pytest.raises(ValueError, match="even dim"):
        backend.sinusoidal_embeddings(np.arange(3), 5)


def test_rope_matches_complex_rotation_and_keeps_norms():
    q = RNG.normal(size=(2, 6, 3, 8)).astype("float32")
    k = RNG.normal(size=(2, 6, 3, 8)).astype("float32")
    positions = np.arange(6, dtype="float32")
    table = backend.sinusoidal_embeddings(positions, 8)
    q_rot, k_rot = (as_np(t) for t in backend.apply_rotary_position_embeddings(table, q, k))
    np.testing.assert_allclose(q_rot, numpy_rope(q, positions), atol=1e-5)
    np.testing.assert_allclose(k_rot, numpy_rope(k, positions), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(q_rot, axis=-1), np.linalg.norm(q, axis=-1), 1e-5)
    # a [1, time, dim] table gives the same; one tensor in, one tensor out
    single = backend.apply_rotary_position_embeddings(keras.ops.expand_dims(table, 0), q)
    np.testing.assert_allclose(as_np(single), q_rot, atol=1e-6)


def test_rope_dot_products_depend_on_relative_position_only():
    n, dim = 9, 16
    q = np.broadcast_to(RNG.normal(size=dim), (1, n, dim)).astype("float32")
    k = np.broadcast_to(RNG.normal(size=dim), (1, n, dim)).astype("float32")
    table = backend.sinusoidal_embeddings(np.arange(n, dtype="float32"), dim)
    q_rot, k_rot = (as_np(t)[0] for t in backend.apply_rotary_position_embeddings(table, q, k))
    scores = q_rot @ k_rot.T  # [m, n]
    for offset in range(-n + 1, n):
        diagonal = np.diagonal(scores, offset)
        np.testing.assert_allclose(diagonal, diagonal[0], atol=1e-4)
    assert np.ptp([np.diagonal(scores, o)[0] for o in range(n)]) > 0.1  # positions matter


def test_rope_errors():
    table = backend.sinusoidal_embeddings(np.arange(3, dtype="float32"), 4)
    with pytest.raises(ValueError, match="same shape"):
        backend.apply_rotary_position_embeddings(table, np.zeros((1, 3, 4)), np.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match="at least one tensor"):
        backend.apply_rotary_position_embeddings(table)


# --- piecewise_linear --------------------------------------------------------


@pytest.mark.parametrize(
    "schedule, from_zero",
    [
        ({1000: 1, 2000: 0.1}, True),
        ({1000: 1, 2000: 0.1}, False),
        ({0: 0.5, 10: 1.0, 30: 0.25}, True),
        ({100: 2.0}, True),
        ({100: 2.0}, False),
    ],
)
def test_piecewise_linear_matches_interp(schedule, from_zero):
    t = np.concatenate([np.linspace(0, 2600, 53), [5, 99.5, 100, 1000, 1999, 2000]])
    points = sorted(schedule.items())
    if from_zero and points[0][0] != 0:
        points = [(0, 0.0)] + points
    keys, values = zip(*points, strict=True)
    expected = np.interp(t, keys, values)  # constant outside the points
    got = as_np(backend.piecewise_linear(t.astype("float32"), schedule, from_zero))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_piecewise_linear_scalar_step_and_empty_schedule():
    got = as_np(backend.piecewise_linear(keras.ops.convert_to_tensor(500, "int32"), {1000: 1}))
    assert math.isclose(float(got), 0.5, rel_tol=1e-6)
    with pytest.raises(ValueError, match="non-empty schedule"):
        backend.piecewise_linear(1, {})
