"""nlp4keras' `K` against the Keras 2 meaning of each function, computed
independently with numpy (defaults included: the axis `concatenate` joins,
`one_hot`'s float dtype, per-sample losses, variables from `zeros`)."""

import math

import keras
import numpy as np
import pytest

from nlp4keras import keras2_backend as K

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 4)).astype("float32")
Y = RNG.normal(size=(2, 3, 4)).astype("float32")
POSITIVE = np.abs(X) + 0.1


def np_of(x):
    return keras.ops.convert_to_numpy(x)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


# name: (call, numpy expectation)
ELEMENTWISE_AND_REDUCTIONS = {
    "sum": (lambda: K.sum(X, axis=1), X.sum(1)),
    "sum_keepdims": (lambda: K.sum(X, 1, keepdims=True), X.sum(1, keepdims=True)),
    "sum_all": (lambda: K.sum(X), X.sum()),
    "mean": (lambda: K.mean(X, axis=-1), X.mean(-1)),
    "max": (lambda: K.max(X, axis=0), X.max(0)),
    "min": (lambda: K.min(X, axis=2), X.min(2)),
    "prod": (lambda: K.prod(X, axis=1), X.prod(1)),
    "std": (lambda: K.std(X, axis=1), X.std(1)),
    "var": (lambda: K.var(X, axis=1), X.var(1)),
    "logsumexp": (lambda: K.logsumexp(X, axis=-1), np.log(np.exp(X).sum(-1))),
    "any": (lambda: K.any(X > 1, axis=1), (X > 1).any(1)),
    "all": (lambda: K.all(X > -3, axis=1), (X > -3).all(1)),
    "cumsum": (lambda: K.cumsum(X, axis=1), X.cumsum(1)),
    "cumprod": (lambda: K.cumprod(X, axis=2), X.cumprod(2)),
    "argmax_last_axis": (lambda: K.argmax(X), X.argmax(-1)),
    "argmin": (lambda: K.argmin(X, axis=0), X.argmin(0)),
    "square": (lambda: K.square(X), X**2),
    "sqrt": (lambda: K.sqrt(POSITIVE), np.sqrt(POSITIVE)),
    "abs": (lambda: K.abs(X), np.abs(X)),
    "exp": (lambda: K.exp(X), np.exp(X)),
    "log": (lambda: K.log(POSITIVE), np.log(POSITIVE)),
    "pow": (lambda: K.pow(POSITIVE, 1.5), POSITIVE**1.5),
    "sign": (lambda: K.sign(X), np.sign(X)),
    "sin": (lambda: K.sin(X), np.sin(X)),
    "cos": (lambda: K.cos(X), np.cos(X)),
    "tanh": (lambda: K.tanh(X), np.tanh(X)),
    "sigmoid": (lambda: K.sigmoid(X), 1 / (1 + np.exp(-X))),
    "softplus": (lambda: K.softplus(X), np.log1p(np.exp(X))),
    "clip": (lambda: K.clip(X, -0.5, 0.5), np.clip(X, -0.5, 0.5)),
    "maximum": (lambda: K.maximum(X, Y), np.maximum(X, Y)),
    "minimum": (lambda: K.minimum(X, Y), np.minimum(X, Y)),
    "equal": (lambda: K.equal(X, X), np.ones_like(X, bool)),
    "not_equal": (lambda: K.not_equal(X, Y), X != Y),
    "greater": (lambda: K.greater(X, Y), X > Y),
    "less_equal": (lambda: K.less_equal(X, Y), X <= Y),
    "relu": (lambda: K.relu(X), np.maximum(X, 0)),
    "relu_alpha_max": (
        lambda: K.relu(X, alpha=0.1, max_value=0.5),
        np.minimum(np.where(X > 0, X, 0.1 * X), 0.5),
    ),
    "elu": (lambda: K.elu(X), np.where(X > 0, X, np.exp(X) - 1)),
    "softmax": (lambda: K.softmax(X), softmax(X)),
    "softmax_axis": (lambda: K.softmax(X, axis=1), softmax(X, 1)),
    "l2_normalize": (
        lambda: K.l2_normalize(X, axis=-1),
        X / np.sqrt((X**2).sum(-1, keepdims=True)),
    ),
    "round": (lambda: K.round(X * 3), np.round(X * 3)),
    "stop_gradient": (lambda: K.stop_gradient(X), X),
    "cast": (lambda: K.cast(X > 0, "float32"), (X > 0).astype("float32")),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE_AND_REDUCTIONS))
def test_element_wise_and_reductions(name):
    call, expected = ELEMENTWISE_AND_REDUCTIONS[name]
    np.testing.assert_allclose(np_of(call()), expected, rtol=1e-5, atol=1e-6)


SHAPES = {
    "reshape": (lambda: K.reshape(X, (6, 4)), X.reshape(6, 4)),
    # bert4keras' reshape: axis 2 (4) becomes (2, -1) -> (2, 2)
    "reshape_axes": (lambda: K.reshape(X, (2, -1), 2), X.reshape(2, 3, 2, 2)),
    "reshape_two_axes": (lambda: K.reshape(X, (1, 2), 0, (-1,), 2), X.reshape(1, 2, 3, 4)),
    "flatten_all": (lambda: K.flatten(X), X.reshape(-1)),
    "flatten_range": (lambda: K.flatten(X, 1), X.reshape(2, 12)),
    "flatten_start_end": (lambda: K.flatten(X, 0, 2), X.reshape(6, 4)),
    "batch_flatten": (lambda: K.batch_flatten(X), X.reshape(2, 12)),
    "expand_dims_default_last": (lambda: K.expand_dims(X), X[..., None]),
    "squeeze": (lambda: K.squeeze(X[:, :1], 1), X[:, 0]),
    "concatenate_last_axis": (lambda: K.concatenate([X, Y]), np.concatenate([X, Y], -1)),
    "concatenate_axis": (lambda: K.concatenate([X, Y], axis=1), np.concatenate([X, Y], 1)),
    "stack": (lambda: K.stack([X, Y]), np.stack([X, Y])),
    "tile": (lambda: K.tile(X, (1, 2, 1)), np.tile(X, (1, 2, 1))),
    "repeat_elements": (lambda: K.repeat_elements(X, 2, 1), np.repeat(X, 2, 1)),
    "transpose": (lambda: K.transpose(X[0]), X[0].T),
    "permute_dimensions": (lambda: K.permute_dimensions(X, (2, 0, 1)), X.transpose(2, 0, 1)),
    "arange": (lambda: K.arange(2, 9, 3), np.arange(2, 9, 3)),
    "arange_stop": (lambda: K.arange(5), np.arange(5)),
    "gather_rows": (lambda: K.gather(X[0], np.array([2, 0])), X[0][[2, 0]]),
    "one_hot_float": (
        lambda: K.one_hot(np.array([[1, 3]]), 4),
        np.eye(4, dtype="float32")[[[1, 3]]],
    ),
    "temporal_padding": (
        lambda: K.temporal_padding(X, (1, 2)),
        np.pad(X, [(0, 0), (1, 2), (0, 0)]),
    ),
    "dot_matrix": (lambda: K.dot(X[0], Y[0].T), X[0] @ Y[0].T),
    "dot_nd": (lambda: K.dot(X, Y[0].T), X @ Y[0].T),
    "dot_nd_nd": (
        lambda: K.dot(X, Y.transpose(0, 2, 1)),
        np.tensordot(X, Y.transpose(0, 2, 1), axes=[[2], [1]]),
    ),
    "where_broadcast_numbers": (lambda: K.where(X > 0, X, 0), np.where(X > 0, X, 0)),
    "where_numbers_both": (lambda: K.where(X > 0, 1, -1), np.where(X > 0, 1.0, -1.0)),
    "where_nonbool_condition": (
        lambda: K.where((X > 0).astype("int32"), X, Y),
        np.where(X > 0, X, Y),
    ),
    "switch": (lambda: K.switch(X > 0, X, Y), np.where(X > 0, X, Y)),
    "switch_callables": (lambda: K.switch(X > 0, lambda: X, lambda: -X), np.abs(X)),
    "zeros_like": (lambda: K.zeros_like(X), np.zeros_like(X)),
    "ones_like": (lambda: K.ones_like(X), np.ones_like(X)),
    "constant_shape": (lambda: K.constant(2.0, shape=(2, 2)), np.full((2, 2), 2.0)),
    "bias_add": (lambda: K.bias_add(X, Y[0, 0]), X + Y[0, 0]),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shapes_and_indices(name):
    call, expected = SHAPES[name]
    result = np_of(call())
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


def test_shape_helpers():
    assert K.int_shape(X) == (2, 3, 4) and K.ndim(X) == 3
    assert K.dtype(X) == "float32" and K.count_params(X) == 24
    assert tuple(K.shape(X)) == (2, 3, 4)
    shape = K.shape(X)
    # gplinker: K.reshape(y, (shape[0], -1, K.prod(shape[2:]))) needs a Python int
    assert K.prod(shape[1:]) == 12 and isinstance(K.prod(shape[1:]), int)
    assert K.int_shape(keras.Input((None, 5))) == (None, None, 5)
    assert K.is_keras_tensor(keras.Input((3,))) and not K.is_keras_tensor(X)
    assert K.is_tensor(keras.ops.convert_to_tensor(X)) and not K.is_tensor(X)


def test_config_functions():
    assert K.floatx() == "float32" and K.epsilon() == keras.config.epsilon()
    assert K.backend() == keras.backend.backend()
    assert K.image_data_format() == "channels_last"
    assert K.symbolic(len) is len


def test_variables_and_values():
    v = K.variable(np.ones((2, 2)))
    assert isinstance(v, keras.Variable) and K.dtype(v) == "float32"
    K.set_value(v, np.full((2, 2), 3.0))
    np.testing.assert_array_equal(K.eval(v), np.full((2, 2), 3.0))
    K.update(v, np.zeros((2, 2)))
    K.update_add(v, np.ones((2, 2)))
    K.update_sub(v, np.full((2, 2), 0.5))
    np.testing.assert_array_equal(K.get_value(v), np.full((2, 2), 0.5))
    w = K.zeros((3,))
    assert isinstance(w, keras.Variable) and K.eval(w).tolist() == [0, 0, 0]
    assert isinstance(K.ones((2,), dtype="int32"), keras.Variable)
    np.testing.assert_array_equal(K.eval(K.eye(2)), np.eye(2))
    K.batch_set_value([(v, np.ones((2, 2))), (w, np.arange(3.0))])
    values = K.batch_get_value([v, w])
    assert values[0].sum() == 4 and values[1].tolist() == [0, 1, 2]
    assert isinstance(K.eval(keras.ops.ones(2)), np.ndarray)


def test_losses_keep_their_keras2_reductions():
    probs = softmax(X)  # [2, 3, 4]
    labels = RNG.integers(0, 4, size=(2, 3))
    expected = -np.log(np.take_along_axis(probs, labels[..., None], -1))[..., 0]
    sparse = K.sparse_categorical_crossentropy(labels, probs)
    np.testing.assert_allclose(np_of(sparse), expected, rtol=1e-5)
    trailing = K.sparse_categorical_crossentropy(labels[..., None].astype("float32"), probs)
    np.testing.assert_allclose(np_of(trailing), expected, rtol=1e-5)  # [b, t, 1] labels
    logits = K.sparse_categorical_crossentropy(labels, X, from_logits=True)
    np.testing.assert_allclose(np_of(logits), expected, rtol=1e-5)
    one_hot = np.eye(4, dtype="float32")[labels]
    categorical = K.categorical_crossentropy(one_hot, probs)
    np.testing.assert_allclose(np_of(categorical), expected, rtol=1e-5)
    p = 1 / (1 + np.exp(-X))
    target = (Y > 0).astype("float32")
    binary = -(target * np.log(p) + (1 - target) * np.log(1 - p))  # per element
    np.testing.assert_allclose(np_of(K.binary_crossentropy(target, p)), binary, rtol=1e-4)


def test_randomness():
    keras.utils.set_random_seed(0)
    draws = np_of(K.random_binomial((20000,), p=0.3))
    assert set(np.unique(draws)) == {0.0, 1.0} and abs(draws.mean() - 0.3) < 0.02
    uniform = np_of(K.random_uniform((20000,), 2.0, 4.0))
    assert uniform.min() >= 2 and uniform.max() < 4 and abs(uniform.mean() - 3) < 0.05
    normal = np_of(K.random_normal((20000,), 1.0, 2.0))
    assert abs(normal.mean() - 1) < 0.06 and abs(normal.std() - 2) < 0.06
    truncated = np_of(K.truncated_normal((20000,), 0.0, 1.0))
    assert np.abs(truncated).max() <= 2.0 + 1e-6
    kept = np_of(K.dropout(np.ones((20000,), "float32"), 0.25))
    np.testing.assert_allclose(kept[kept > 0], 1 / 0.75, rtol=1e-6)  # inverted dropout
    assert abs((kept > 0).mean() - 0.75) < 0.02


def test_learning_phase_follows_the_call():
    class Probe(keras.layers.Layer):
        def call(self, x, training=None):
            return K.in_train_phase(x * 0 + 1.0, x * 0 - 1.0)

    probe = Probe()
    x = np.zeros((1, 2), "float32")
    assert np_of(probe(x, training=True)).tolist() == [[1.0, 1.0]]
    assert np_of(probe(x, training=False)).tolist() == [[-1.0, -1.0]]
    assert K.learning_phase() == 0
    assert K.in_train_phase(lambda: 1, lambda: 2, training=True) == 1
    assert K.in_test_phase(1, 2, training=True) == 2


def test_function_runs_a_functional_graph():
    inputs = keras.Input((3,))
    doubled = keras.layers.Lambda(lambda t: t * 2)(inputs)
    f = K.function([inputs], [doubled])
    np.testing.assert_array_equal(f([np.ones((2, 3), "float32")])[0], np.full((2, 3), 2.0))
    single = K.function(inputs, doubled)
    assert single(np.ones((1, 3), "float32"))[0].shape == (1, 3)


@pytest.mark.parametrize(
    "name, hint",
    [
        ("gradients", "AdversarialModel"),
        ("get_session", "TF1 sessions"),
        ("set_session", "TF1 sessions"),
        ("rnn", "keras.layers.RNN"),
        ("batch_dot", "einsum"),
    ],
)
def test_keras2_only_calls_say_what_to_use(name, hint):
    with pytest.raises(NotImplementedError, match=rf"K.{name} has no Keras 3 meaning: .*{hint}"):
        getattr(K, name)(None, None)


def test_name_scope_and_clear_session_exist():
    with K.name_scope("block"):
        pass
    K.clear_session()
    assert math.isfinite(K.epsilon())
