"""Checks on the values of tensors (token ids, labels) that hold on every
backend, inside compiled code too.

Outside compiled code the check raises a ValueError at once. Inside it:

- JAX (jit, as in `fit`/`predict`): XLA cannot raise, so the check hands one
  boolean to the host through `jax.debug.callback`, which raises; the error
  reaches the caller as a `JaxRuntimeError` whose text holds the message.
- TensorFlow (tf.function): a `tf.debugging.Assert`, raised as
  `InvalidArgumentError` with the message.
- torch runs eagerly: a ValueError.

On JAX, Keras hands the model's weights to its compiled step (donated,
or held outside the variables until the loop ends), so after such an error
the model object must be rebuilt or reloaded: the error is loud, the weights
in memory are gone. NaN outputs (what XLA gives for an out-of-range lookup)
would be worse: in `fit` they turn every weight into NaN after one update,
silently. Checking the data where it enters Keras' loop is not possible
without patching Keras (generators and datasets stream it).

The cost is one reduction and, on JAX, one host callback per checked tensor
and step. `set_tensor_checks(False)` (or NLP4KERAS_TENSOR_CHECKS=0) turns the
checks off; bad values then give what the backend gives (an error on torch
and on TensorFlow's CPU, NaN rows from JAX lookups).
"""

import functools
import os

import keras
from keras import ops

_enabled = os.environ.get("NLP4KERAS_TENSOR_CHECKS", "1").strip().lower() not in (
    "0",
    "false",
    "no",
    "off",
)


def set_tensor_checks(enabled):
    """Turn the checks on or off for models called from now on (JAX and
    TensorFlow compile them in: set this before the first call)."""
    global _enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"set_tensor_checks: `enabled` must be True or False, got {enabled!r}")
    _enabled = enabled


def tensor_checks_enabled():
    return _enabled


def check_range(values, low, high, message):
    """`values` (integers), after checking that each is in [low, high)."""
    if not _enabled:
        return values
    backend = keras.backend.backend()
    if backend == "torch" and values.device.type == "meta":
        return values  # shape inference while building a functional model
    valid = ops.all(ops.logical_and(values >= low, values < high))
    if backend == "tensorflow":
        return _tensorflow_check(values, valid, message)
    if backend == "jax":
        import jax

        if isinstance(valid, jax.core.Tracer):
            jax.debug.callback(functools.partial(_raise_unless, message=message), valid)
            return values
    _raise_unless(ops.convert_to_numpy(valid), message)
    return values


def _raise_unless(valid, message):
    if not bool(valid):
        raise ValueError(message)


def _tensorflow_check(values, valid, message):
    import tensorflow as tf

    if tf.executing_eagerly():
        _raise_unless(valid, message)
        return values
    with tf.control_dependencies([tf.debugging.Assert(valid, [message])]):
        return tf.identity(values)


def check_same_shape(tensors, message):
    """`tensors`, after checking that they all have the same shape (no
    broadcasting). Static shapes are compared at once (also while JAX or
    TensorFlow trace); dimensions known only at run time (TensorFlow graphs)
    through an assertion. Not switched off by `set_tensor_checks`: it costs
    nothing where shapes are static."""
    shapes = [tuple(t.shape) for t in tensors]
    for shape in shapes[1:]:
        if len(shape) != len(shapes[0]) or any(
            a is not None and b is not None and a != b for a, b in zip(shape, shapes[0])
        ):
            raise ValueError(f"{message}, got shapes {', '.join(map(str, shapes))}")
    dynamic = any(d is None for shape in shapes for d in shape)
    if not dynamic or keras.backend.backend() != "tensorflow":
        return tensors
    import tensorflow as tf

    first = tf.shape(tensors[0])
    checks = [tf.debugging.assert_equal(first, tf.shape(t), message=message) for t in tensors[1:]]
    with tf.control_dependencies(checks):
        return [tf.identity(t) for t in tensors]
