"""Gradients with respect to a layer's output, on every backend, without
rebuilding the model: the layer's `call` is shadowed for the duration of one
forward pass so that its output o becomes transform(o) + z with z = 0, and the
gradient is taken with respect to z (that is, at the point transform(o)).

Used by the gradient penalty, virtual adversarial training and the input
attributions (`input_gradients`, `integrated_gradients`).
"""

import contextlib

import keras
from keras import ops


@contextlib.contextmanager
def shifted_output(layer, shift):
    """While active, `layer`'s output is replaced by shift(output).

    Done by shadowing the instance's `call` (no change to the layer class);
    calls with mode != 'embedding' (the tied MLM head of an Embedding) are
    left alone."""
    original = layer.call

    def call(*args, **kwargs):
        out = original(*args, **kwargs)
        if kwargs.get("mode", "embedding") != "embedding":
            return out
        return shift(out)

    object.__setattr__(layer, "call", call)
    try:
        yield
    finally:
        object.__delattr__(layer, "call")


def output_gradient(layer, run, transform=None, create_graph=False):
    """(value, aux, gradient) with (value, aux) = run() and gradient = d value / d o'.

    run() makes one forward pass through `layer` and returns a scalar `value`
    and anything `aux`; during it the layer's output o is replaced by
    o' = transform(o) (o itself by default). The gradient is float32, shaped
    like o. It stays differentiable under an enclosing JAX transformation or
    TensorFlow tape; torch keeps its graph only with create_graph=True.
    On JAX, run() must be free of side effects (e.g. use `stateless_call`):
    it is also traced once, abstractly, to learn the output's shape.
    """
    transform = transform or (lambda out: out)
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_output_gradient(layer, run, transform)
    leaves = []
    if backend == "torch":
        import torch

        def shift(out):
            leaf = torch.zeros(out.shape, dtype=torch.float32, device=out.device)
            leaves.append(leaf.requires_grad_())
            return transform(out) + leaf.to(out.dtype)

        with torch.enable_grad(), shifted_output(layer, shift):
            value, aux = run()
        _check_one_call(layer, leaves)
        (gradient,) = torch.autograd.grad(value, leaves, create_graph=create_graph)
        return value, aux, gradient

    import tensorflow as tf

    with tf.GradientTape() as tape:

        def shift(out):
            leaves.append(tf.zeros(tf.shape(out), "float32"))
            tape.watch(leaves[-1])
            return transform(out) + tf.cast(leaves[-1], out.dtype)

        with shifted_output(layer, shift):
            value, aux = run()
    _check_one_call(layer, leaves)
    return value, aux, tf.convert_to_tensor(tape.gradient(value, leaves[0]))


def _jax_output_gradient(layer, run, transform):
    import jax

    # The output's shape, by abstract evaluation (no runtime cost); a new
    # function each time, as JAX caches traces by function.
    shapes = []
    with shifted_output(layer, lambda out: shapes.append(out.shape) or out):
        jax.eval_shape(lambda: run())
    _check_one_call(layer, shapes)

    def shifted(zero):
        with shifted_output(layer, lambda out: transform(out) + ops.cast(zero, out.dtype)):
            return run()

    start = ops.zeros(shapes[0], "float32")
    (value, aux), gradient = jax.value_and_grad(shifted, has_aux=True)(start)
    return value, aux, gradient


def _check_one_call(layer, calls):
    if len(calls) != 1:
        raise ValueError(
            f"layer {layer.name!r} ran {len(calls)} times in one forward pass; the gradient "
            "with respect to its output needs a layer that runs exactly once"
        )


def unit_per_example(x):
    """x / ||x|| with one L2 norm per example (over every axis but the first),
    in float32; 0 where that norm is 0 or not finite. Rescaled by the largest
    entry first, so that tiny gradients do not underflow when squared."""
    x = ops.cast(x, "float32")
    axes = tuple(range(1, len(x.shape)))
    x = x / (ops.max(ops.abs(x), axis=axes, keepdims=True) + 1e-30)
    norm = ops.sqrt(ops.sum(ops.square(x), axis=axes, keepdims=True))
    unit = x / ops.maximum(norm, 1e-30)
    return ops.where(ops.isfinite(norm), unit, ops.zeros_like(unit))
