"""Which input tokens a prediction depends on: gradients of a chosen output
with respect to a layer's output (the token embeddings by default), and
integrated gradients (Sundararajan et al., arXiv 1703.01365; kexue.fm/archives/7533,
bert4keras' `task_sentiment_integrated_gradients.py`), for an existing model
without rebuilding it. The model runs in inference mode (training=False).

The chosen output f_i of example i is, with `output_index`:
- None: the probability (or score) of the class the model predicts for it
  (argmax of the output's last axis), as bert4keras' example does;
- an int, or one int per example: that class;
- a function: f(model outputs) -> one value per example (any model output).
Examples are treated independently: the gradient for example i is that of f_i.

Integrated gradients of example i, with e its layer output and b a baseline:
    (e - b) * integral over a in [0, 1] of df_i/de at b + a (e - b),
summed over the feature axis for per-token attributions; the sum over tokens
approaches f_i(e) - f_i(b) (completeness) as `steps` grows. The integral is a
Riemann sum over `steps` points (`rule`: 'midpoint', error O(1/steps^2);
'trapezoid', `steps + 1` points, O(1/steps^2); 'left' or 'right', O(1/steps)).
bert4keras' example scales the embedding matrix along the same path (a * e,
baseline 0) but averages (a e) * df/de(a e) over 20 points, a weighting that
breaks completeness; its scores (the norm, or largest absolute value, over
the feature axis) can be computed from `per_token=False`.
"""

import keras
import numpy as np
from keras import ops

from nlp4keras import validation
from nlp4keras.training.adversarial import functional_parts
from nlp4keras.training.intermediates import find_layer, get_intermediates
from nlp4keras.training.layer_gradients import output_gradient

RULES = ("midpoint", "trapezoid", "left", "right")


def input_gradients(model, inputs, output_index=None, layer="Embedding-Token"):
    """d f_i / d e_i for every example i of the batch `inputs`, with e the output
    of `layer` and f_i chosen by `output_index` (module docstring): a float32
    numpy array shaped like e, e.g. [batch, tokens, hidden]."""
    step = _gradient_step(model, inputs, output_index, layer, "input_gradients")
    return step(None)


def integrated_gradients(
    model,
    inputs,
    output_index=None,
    layer="Embedding-Token",
    baseline=None,
    steps=20,
    rule="midpoint",
    per_token=True,
):
    """Integrated gradients of f_i (chosen by `output_index`) with respect to the
    output e of `layer`, from `baseline` (zeros by default, as bert4keras; or an
    array broadcastable to e, e.g. one embedding row) to e, along the straight
    path, by a Riemann sum over `steps` points (module docstring). Returns a
    float32 numpy array: per-token attributions [batch, tokens] (summed over the
    last axis of e) with per_token=True, else shaped like e."""
    who = "integrated_gradients"
    steps = validation.integer(steps, "steps", who, minimum=1)
    rule = validation.one_of(rule, "rule", RULES, who)
    per_token = validation.boolean(per_token, "per_token", who)
    step = _gradient_step(model, inputs, output_index, layer, who)
    outputs = get_intermediates(model, inputs, [layer]).outputs[layer].astype("float32")
    if baseline is None:
        baseline = np.zeros_like(outputs)
    else:
        baseline = _broadcast(baseline, outputs.shape, who)
    total = np.zeros_like(outputs)
    for alpha, weight in zip(*_quadrature(steps, rule), strict=True):
        total += weight * step((alpha, baseline))
    attributions = (outputs - baseline) * total
    return attributions.sum(axis=-1) if per_token else attributions


def _quadrature(steps, rule):
    """Points a in [0, 1] and their weights for the integral over the path."""
    if rule == "trapezoid":
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, steps + 1), weights
    offset = {"left": 0.0, "midpoint": 0.5, "right": 1.0}[rule]
    return (np.arange(steps) + offset) / steps, np.full(steps, 1.0 / steps)


def _broadcast(baseline, shape, who):
    try:
        return np.broadcast_to(np.asarray(baseline, "float32"), shape).copy()
    except (ValueError, TypeError):
        raise validation.InvalidValue(
            f"{who}: `baseline` must be an array broadcastable to the layer output's shape "
            f"{shape}, got one of shape {np.shape(baseline)}",
            "baseline",
        ) from None


def _gradient_step(model, inputs, output_index, layer, who):
    """point -> d f / d e as numpy, where point is None (e itself) or
    (alpha, baseline) (e replaced by baseline + alpha (e - baseline))."""
    functional_parts(model, who)
    layer = find_layer(model, validation.string(layer, "layer", who))
    select = _selection(model, inputs, output_index, who)

    def transform(point):
        if point is None:
            return None
        alpha, baseline = point

        def along_path(out):
            start = ops.cast(baseline, out.dtype)
            return start + ops.cast(alpha, out.dtype) * (out - start)

        return along_path

    if keras.backend.backend() != "jax":

        def run():
            values = select(model(inputs, training=False))
            return ops.sum(values), None

        return lambda point: _numpy(output_gradient(layer, run, transform(point))[2])

    import jax

    def gradient(trainable, non_trainable, x, point):
        def run():
            outputs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return ops.sum(select(outputs)), None

        return output_gradient(layer, run, transform(point))[2]

    compiled = jax.jit(gradient)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    return lambda point: _numpy(compiled(trainable, non_trainable, inputs, point))


def _selection(model, inputs, output_index, who):
    """outputs -> f_i, one value per example."""
    if callable(output_index):
        return output_index
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ValueError(
            f"{who}: a class `output_index` needs a model with one output [batch, classes]; "
            "pass a function of the outputs instead (one value per example)"
        )
    predictions = _numpy(model(inputs, training=False))
    batch, classes = predictions.shape
    if output_index is None:
        indices = predictions.argmax(axis=-1)
    elif validation.is_integer(output_index):
        indices = np.full(batch, int(output_index))
    else:
        indices = validation.integer_list(output_index, "output_index", who)
        if len(indices) != batch:
            raise validation.InvalidValue(
                f"{who}: `output_index` has {len(indices)} entries for a batch of {batch}",
                "output_index",
            )
    indices = np.asarray(indices)
    if indices.min() < 0 or indices.max() >= classes:
        raise validation.InvalidValue(
            f"{who}: `output_index` must be in [0, {classes}) for an output of {classes} "
            f"classes, got {output_index!r}",
            "output_index",
        )
    mask = ops.convert_to_tensor(np.eye(classes, dtype="float32")[indices])
    return lambda outputs: ops.sum(ops.cast(outputs, "float32") * mask, axis=-1)


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), "float32")
