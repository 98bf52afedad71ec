"""`K`: the Keras 2 backend functions bert4keras scripts call, on Keras 3.

`from nlp4keras.backend import keras, K` gives this module as `K`, as
`from bert4keras.backend import keras, K` gave `keras.backend` (with
bert4keras' own `reshape`, `flatten`, `where`, `logsumexp` and `symbolic`).
Each function keeps its Keras 2 meaning (defaults included: `concatenate`
joins the last axis, `one_hot` gives floats, the losses are per element or
per sample, `zeros`/`ones`/`variable` make variables) and runs on any
backend through `keras.ops`, `keras.random` and `keras.config`. Nothing in
Keras is patched.

Keras 2 calls with no Keras 3 meaning raise NotImplementedError saying what
to use instead: `gradients` (symbolic gradients: use
nlp4keras.training.AdversarialModel or input_gradients), `get_session` /
`set_session` (TF1 sessions), `rnn`, `batch_dot`.
"""

import builtins
import math

import keras
import numpy as np
from keras import ops

# ------------------------------------------------------------ config, dtypes
floatx = keras.config.floatx
set_floatx = keras.config.set_floatx
epsilon = keras.config.epsilon
set_epsilon = keras.config.set_epsilon
image_data_format = keras.config.image_data_format
backend = keras.config.backend
clear_session = keras.utils.clear_session
is_keras_tensor = keras.backend.is_keras_tensor
name_scope = keras.name_scope


def is_tensor(x):
    return ops.is_tensor(x) or isinstance(x, keras.Variable)


def dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def int_shape(x):
    """The static shape as a tuple of ints (None where unknown)."""
    return tuple(None if d is None else int(d) for d in x.shape)


def ndim(x):
    return len(x.shape)


def shape(x):
    """The shape; static dimensions are ints (Keras 2 gave a tensor: index it,
    slice it or pass it to reshape as before)."""
    return ops.shape(x)


def count_params(x):
    return int(np.prod(int_shape(x)))


def symbolic(f):
    """bert4keras' decorator for graph-mode functions: nothing to do in Keras 3."""
    return f


# --------------------------------------------------- variables and values
def _variable(value, dtype, name, constraint=None):
    # Integer variables cannot be trained (torch refuses them gradients).
    trainable = "float" in keras.backend.standardize_dtype(dtype)
    return keras.Variable(value, dtype=dtype, name=name, constraint=constraint, trainable=trainable)


def variable(value, dtype=None, name=None, constraint=None):
    return _variable(value, dtype or floatx(), name, constraint)


def constant(value, dtype=None, shape=None, name=None):
    tensor = ops.convert_to_tensor(value, dtype=dtype or floatx())
    return tensor if shape is None else ops.broadcast_to(tensor, shape)


def zeros(shape, dtype=None, name=None):
    """A variable of zeros (as Keras 2)."""
    return _variable(ops.zeros(shape, dtype=dtype or floatx()), dtype or floatx(), name)


def ones(shape, dtype=None, name=None):
    """A variable of ones (as Keras 2)."""
    return _variable(ops.ones(shape, dtype=dtype or floatx()), dtype or floatx(), name)


def eye(size, dtype=None, name=None):
    return _variable(ops.eye(size, dtype=dtype or floatx()), dtype or floatx(), name)


def zeros_like(x, dtype=None, name=None):
    return ops.zeros_like(x, dtype=dtype)


def ones_like(x, dtype=None, name=None):
    return ops.ones_like(x, dtype=dtype)


def eval(x):
    """The value as a numpy array."""
    return ops.convert_to_numpy(x.value if isinstance(x, keras.Variable) else x)


get_value = eval


def batch_get_value(tensors):
    return [eval(x) for x in tensors]


def set_value(x, value):
    x.assign(np.asarray(value))


def batch_set_value(tuples):
    for x, value in tuples:
        set_value(x, value)


def update(x, new_x):
    x.assign(new_x)
    return x


def update_add(x, increment):
    x.assign_add(increment)
    return x


def update_sub(x, decrement):
    x.assign_sub(decrement)
    return x


def cast(x, dtype):
    return ops.cast(x, dtype)


def stop_gradient(variables):
    if isinstance(variables, (list, tuple)):
        return [stop_gradient(v) for v in variables]
    return ops.stop_gradient(ops.convert_to_tensor(variables))


# ------------------------------------------------------------- reductions
def _reduction(op):
    def reduce(x, axis=None, keepdims=False):
        return op(x, axis=axis, keepdims=keepdims)

    reduce.__name__ = op.__name__
    return reduce


sum = _reduction(ops.sum)
mean = _reduction(ops.mean)
max = _reduction(ops.max)
min = _reduction(ops.min)
std = _reduction(ops.std)
var = _reduction(ops.var)
any = _reduction(ops.any)
all = _reduction(ops.all)
logsumexp = _reduction(ops.logsumexp)


def prod(x, axis=None, keepdims=False):
    """A Python int for a shape (a tuple of ints), as reshapes need; else a tensor."""
    if isinstance(x, (tuple, list)) and builtins.all(isinstance(d, int) for d in x):
        return math.prod(x)
    return ops.prod(x, axis=axis, keepdims=keepdims)


def cumsum(x, axis=0):
    return ops.cumsum(x, axis=axis)


def cumprod(x, axis=0):
    return ops.cumprod(x, axis=axis)


def argmax(x, axis=-1):
    return ops.argmax(x, axis=axis)


def argmin(x, axis=-1):
    return ops.argmin(x, axis=axis)


# ---------------------------------------------------------- element-wise
square, sqrt, abs, exp, log, sign = ops.square, ops.sqrt, ops.abs, ops.exp, ops.log, ops.sign
sin, cos, tanh, sigmoid, softplus = ops.sin, ops.cos, ops.tanh, ops.sigmoid, ops.softplus
round, maximum, minimum = ops.round, ops.maximum, ops.minimum
equal, not_equal, greater, greater_equal = ops.equal, ops.not_equal, ops.greater, ops.greater_equal
less, less_equal = ops.less, ops.less_equal


def pow(x, a):
    return ops.power(x, a)


def clip(x, min_value, max_value):
    return ops.clip(x, min_value, max_value)


def relu(x, alpha=0.0, max_value=None, threshold=0.0):
    return keras.activations.relu(x, negative_slope=alpha, max_value=max_value, threshold=threshold)


def elu(x, alpha=1.0):
    return keras.activations.elu(x, alpha=alpha)


def softmax(x, axis=-1):
    return ops.softmax(x, axis=axis)


def l2_normalize(x, axis=None):
    """x / sqrt(max(sum(x^2), 1e-12)), as tf.nn.l2_normalize."""
    x = ops.convert_to_tensor(x)
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), 1e-12))


def bias_add(x, bias, data_format=None):
    return x + bias


# ------------------------------------------------------ shapes and indices
def reshape(tensor, *args):
    """`reshape(x, shape)`, or bert4keras' `reshape(x, shape1, axis1, shape2,
    axis2, ...)`: axis_i becomes the dimensions shape_i (one of them -1)."""
    if len(args) == 1:
        return ops.reshape(tensor, args[0])
    if len(args) % 2:
        raise ValueError("K.reshape(x, shape1, axis1, shape2, axis2, ...): pairs expected")
    dims = [[d] for d in ops.shape(tensor)]
    for new, axis in zip(args[::2], args[1::2]):
        new = list(new)
        if new.count(-1) == 1:
            known = math.prod(d for d in new if d != -1)
            new[new.index(-1)] = dims[axis][0] // known
        dims[axis] = new
    return ops.reshape(tensor, [d for group in dims for d in group])


def flatten(tensor, start=None, end=None):
    """bert4keras' flatten: merge the axes start..end-1 (all of them by default)."""
    start, end = start or 0, end or ndim(tensor)
    dims = list(ops.shape(tensor))
    return ops.reshape(tensor, dims[:start] + [prod(dims[start:end])] + dims[end:])


def batch_flatten(x):
    return ops.reshape(x, (ops.shape(x)[0], -1))


def expand_dims(x, axis=-1):
    return ops.expand_dims(x, axis)


def squeeze(x, axis):
    return ops.squeeze(x, axis)


def concatenate(tensors, axis=-1):
    return ops.concatenate(tensors, axis=axis)


def stack(x, axis=0):
    return ops.stack(x, axis=axis)


def tile(x, n):
    return ops.tile(x, n)


def repeat_elements(x, rep, axis):
    return ops.repeat(x, rep, axis=axis)


def transpose(x):
    return ops.transpose(x)


def permute_dimensions(x, pattern):
    return ops.transpose(x, pattern)


def arange(start, stop=None, step=1, dtype="int32"):
    return ops.arange(start, stop, step, dtype=dtype)


def gather(reference, indices):
    """Rows of `reference` (axis 0)."""
    return ops.take(reference, indices, axis=0)


def one_hot(indices, num_classes):
    return ops.one_hot(indices, num_classes, dtype=floatx())


def temporal_padding(x, padding=(1, 1)):
    return ops.pad(x, [(0, 0), tuple(padding), (0, 0)])


def dot(x, y):
    """Keras 2's dot: matmul; for n-D inputs the last axis of x with the
    second-to-last of y."""
    if ndim(y) <= 2:
        return ops.matmul(x, y)
    return ops.tensordot(x, y, axes=[[ndim(x) - 1], [ndim(y) - 2]])


def where(cond, x, y):
    """bert4keras' where: tf.where with broadcasting (and Python numbers)."""
    cond = ops.cast(cond, "bool")
    if not is_tensor(x) and not is_tensor(y):
        x, y = constant(x), constant(y)
    elif not is_tensor(x):
        x = ops.convert_to_tensor(x, dtype=y.dtype)
    elif not is_tensor(y):
        y = ops.convert_to_tensor(y, dtype=x.dtype)
    return ops.where(cond, x, y)


def switch(condition, then_expression, else_expression):
    """Keras 2's switch: branches may be callables; a scalar condition picks one."""
    then_value = then_expression() if callable(then_expression) else then_expression
    else_value = else_expression() if callable(else_expression) else else_expression
    return where(condition, then_value, else_value)


# ------------------------------------------------------- learning phase
def learning_phase():
    """1 inside a training call, else 0 (the Keras 3 call context's flag)."""
    from keras.src.backend.common import global_state

    context = global_state.get_global_attribute("current_call_ctx")
    training = getattr(context, "training", None)
    return 1 if training else 0


def in_train_phase(x, alt, training=None):
    """`x` in training, `alt` otherwise; `training` defaults to the call's."""
    if training is None:
        training = learning_phase()
    if isinstance(training, (bool, int)):
        chosen = x if training else alt
        return chosen() if callable(chosen) else chosen
    return switch(training, x, alt)


def in_test_phase(x, alt, training=None):
    return in_train_phase(alt, x, training=training)


# ------------------------------------------------------------- randomness
def random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    return keras.random.uniform(shape, minval, maxval, dtype=dtype or floatx(), seed=seed)


def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return keras.random.normal(shape, mean, stddev, dtype=dtype or floatx(), seed=seed)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return keras.random.truncated_normal(shape, mean, stddev, dtype=dtype or floatx(), seed=seed)


def random_binomial(shape, p=0.0, dtype=None, seed=None):
    """Bernoulli draws: 1 with probability p."""
    draws = keras.random.uniform(shape, seed=seed)
    return ops.cast(draws < p, dtype or floatx())


random_bernoulli = random_binomial


def dropout(x, level, noise_shape=None, seed=None):
    return keras.random.dropout(ops.convert_to_tensor(x), level, noise_shape=noise_shape, seed=seed)


# ----------------------------------------------------------------- losses
def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    return ops.categorical_crossentropy(target, output, from_logits=from_logits, axis=axis)


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Per sample (no reduction); `target` may keep a trailing axis of 1."""
    if len(target.shape) == len(output.shape):
        target = ops.squeeze(target, axis)
    target = ops.cast(target, "int32")
    return ops.sparse_categorical_crossentropy(target, output, from_logits=from_logits, axis=axis)


def binary_crossentropy(target, output, from_logits=False):
    """Per element (no mean over the last axis)."""
    return ops.binary_crossentropy(target, output, from_logits=from_logits)


# ------------------------------------------------------- graph functions
def function(inputs, outputs, updates=None, name=None, **kwargs):
    """Keras 2's K.function over a functional graph: f(list of arrays) ->
    list of numpy arrays (through a keras.Model; no updates)."""
    if updates:
        raise NotImplementedError("K.function(updates=...) has no Keras 3 meaning")
    model = keras.Model(inputs, outputs)

    def run(values):
        results = model(values, training=False)
        if not isinstance(results, (list, tuple)):
            results = [results]
        return [ops.convert_to_numpy(r) for r in results]

    return run


def _not_in_keras3(name, instead):
    def unsupported(*args, **kwargs):
        raise NotImplementedError(f"K.{name} has no Keras 3 meaning: {instead}")

    unsupported.__name__ = name
    return unsupported


gradients = _not_in_keras3(
    "gradients",
    "symbolic gradients do not exist; for adversarial training or a gradient penalty use "
    "nlp4keras.training.AdversarialModel, for input gradients (saliency, integrated "
    "gradients) nlp4keras.training.input_gradients (`nlp4keras migrate` lists such lines)",
)
get_session = _not_in_keras3("get_session", "TF1 sessions do not exist in Keras 3")
set_session = _not_in_keras3("set_session", "TF1 sessions do not exist in Keras 3")
rnn = _not_in_keras3("rnn", "use keras.layers.RNN or keras.ops.scan")
batch_dot = _not_in_keras3("batch_dot", "use keras.ops.einsum or keras.ops.matmul")


get_graph = _not_in_keras3("get_graph", "Keras 3 has no global graph")
