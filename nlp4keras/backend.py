"""Backend-neutral helpers built on `keras.ops`: activations and small ops.

bert4keras exposed these from `bert4keras.backend`; the names are kept.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from nlp4keras import validation
from nlp4keras.tensor_checks import check_range

# Registers a class or function under the nlp4keras package so that
# `keras.saving.load_model` finds it.
serializable = keras.saving.register_keras_serializable(package="nlp4keras")


@serializable
def gelu_erf(x):
    """Exact GELU, x * Phi(x) (what HF calls "gelu")."""
    return ops.gelu(x, approximate=False)


@serializable
def gelu_tanh(x):
    """Tanh approximation of GELU (Google BERT's original, HF "gelu_new")."""
    return ops.gelu(x, approximate=True)


# What the bare name "gelu" means; bert4keras let users switch it globally.
_gelu_default = {"gelu": "gelu_erf"}

# Activation names found in Google / HF configs, mapped to one canonical name.
_ACTIVATION_ALIASES = {
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_python": "gelu_erf",
    "silu": "swish",
}

_OWN_ACTIVATIONS = {"gelu_erf": gelu_erf, "gelu_tanh": gelu_tanh}


def set_gelu(version):
    """Choose what the name "gelu" means from now on: 'erf' (default) or 'tanh'."""
    version = str(version).lower()
    if version not in ("erf", "tanh"):
        raise ValueError(f"set_gelu() takes 'erf' or 'tanh', got {version!r}")
    _gelu_default["gelu"] = "gelu_" + version


def resolve_activation(name):
    """The canonical name of an activation (so saved configs do not depend on
    the global `set_gelu` state). Non-string activations are returned as is."""
    if not isinstance(name, str):
        return name
    key = name.lower()
    key = _gelu_default.get(key, key)
    return _ACTIVATION_ALIASES.get(key, key)


def get_activation(name):
    """An activation callable from a name (config or canonical) or callable."""
    resolved = resolve_activation(name)
    if resolved is None:
        return keras.activations.linear
    if callable(resolved):
        return resolved
    if resolved in _OWN_ACTIVATIONS:
        return _OWN_ACTIVATIONS[resolved]
    try:
        return keras.activations.get(resolved)
    except ValueError:
        raise ValueError(
            f"unknown activation {name!r}; use a Keras activation name or one of "
            f"{', '.join(sorted(['gelu', *_OWN_ACTIVATIONS, *_ACTIVATION_ALIASES]))}"
        ) from None


def infinity():
    """A large finite number used instead of inf where inf would make NaNs."""
    return 1e12


# ---------------------------------------------------------------------------
# Checks on tensor values (labels, indices) for losses and layers
# ---------------------------------------------------------------------------


def integer_labels(values, num_classes, message):
    """`values` as int32, after checking that each is an integer in
    [0, num_classes): on every backend, inside compiled code too
    (nlp4keras.tensor_checks). Keras hands `y_true` to losses as floats, so a
    float must hold a whole number (1.5 is refused, not truncated)."""
    values = ops.convert_to_tensor(values)
    if "int" not in str(values.dtype):
        values = ops.cast(values, "float32")
        whole = ops.logical_and(
            ops.equal(values, ops.floor(values)),
            ops.logical_and(values >= 0, values < ops.cast(num_classes, "float32")),
        )
        values = ops.where(whole, values, -1.0)  # fractional, NaN or huge: out of range
    return check_range(ops.cast(values, "int32"), 0, num_classes, message)


def require_all(ok, tensor, message):
    """`tensor`, after checking that the boolean tensor `ok` is all True (on
    every backend, inside compiled code too; see `integer_labels`)."""
    failures = ops.sum(ops.cast(ops.logical_not(ok), "int32"))
    failures = check_range(failures, 0, 1, message)
    # Ties the check to the result (TensorFlow graphs run what is used).
    return ops.where(ops.equal(failures, 0), tensor, ops.zeros_like(tensor))


def dimension(x, axis):
    """The size of `x` along `axis`: a Python int where the static shape knows
    it, else a scalar tensor (TensorFlow traces `fit` with unknown lengths)."""
    size = x.shape[axis]
    return size if size is not None else ops.shape(x)[axis]


def describe(size, name):
    """`size` for a message: the number where static, else `name`."""
    return str(size) if isinstance(size, int) else name


def shapes_compatible(a, b):
    """True when two static shapes have the same rank and agree wherever both
    dimensions are known (None is unknown while tracing)."""
    a, b = tuple(a), tuple(b)
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


# ---------------------------------------------------------------------------
# Sequence ops (bert4keras.backend names and semantics)
# ---------------------------------------------------------------------------


def _fill_value(value):
    """A masking value: a finite number (or a bool, for bool tensors), or
    '-inf' / 'inf' for -/+ infinity()."""
    if isinstance(value, str) and value in ("-inf", "inf"):
        return -infinity() if value == "-inf" else infinity()
    if isinstance(value, (bool, np.bool_)):
        return value
    is_number = isinstance(value, numbers.Real)
    if not is_number or not math.isfinite(value):
        wrong_type = not (is_number or isinstance(value, str))
        error = validation.InvalidType if wrong_type else validation.InvalidValue
        raise error(
            "masking value must be a finite number, '-inf' or 'inf' (-/+ infinity(), a large "
            f"finite number), got {value!r}",
            "value",
        )
    return value


def _mask_axis(axis, ndim, who="sequence_masking"):
    """The positive axis a [batch, time] mask lands on (default 1)."""
    axis = 1 if axis is None else validation.integer(axis, "axis", who)
    if axis < 0:
        axis += ndim
    if not 0 < axis < ndim:
        raise ValueError(
            f"mask axis must be one of the non-batch axes 1..{ndim - 1} of a rank-{ndim} "
            f"tensor (or negative), got {axis}"
        )
    return axis


def _align_mask(mask, axis, ndim, x_shape=None):
    """A [batch, time] mask reshaped (as bool) to broadcast onto a rank-`ndim`
    tensor whose time axis is `axis` (and checked against its shape, when given:
    a mismatch could broadcast silently)."""
    mask = ops.convert_to_tensor(mask)
    if len(mask.shape) != 2:
        raise ValueError(f"mask must have rank 2 [batch, time], got shape {tuple(mask.shape)}")
    if x_shape is not None:
        wanted = (x_shape[0], x_shape[axis])
        if not shapes_compatible(mask.shape, wanted):
            raise ValueError(
                f"mask must have shape [batch, time] = {wanted} (axes 0 and {axis} of a tensor "
                f"of shape {tuple(x_shape)}), got {tuple(mask.shape)}"
            )
    mask = ops.cast(mask, "bool")
    for _ in range(axis - 1):
        mask = ops.expand_dims(mask, 1)
    for _ in range(ndim - axis - 1):
        mask = ops.expand_dims(mask, -1)
    return mask


def sequence_masking(x, mask=None, value=0, axis=None, bias=None, return_mask=False):
    """Sets the padded positions of `x` to `value` (bert4keras' signature).

    mask: [batch, time], True/1 = keep; its time axis lands on `axis` of x
    (default 1), or on each axis of a list (e.g. [2, 3]: both axes of an
    attention matrix). value: a number, or '-inf' / 'inf' for -/+
    `infinity()`. bias: a bool tensor (one more mask, AND-ed) or a float
    tensor added to x first. return_mask: also return the full broadcast mask.
    """
    if mask is None and bias is None:
        return (x, None) if return_mask else x
    x = ops.convert_to_tensor(x)
    fill = _fill_value(value)
    ndim = len(x.shape)
    full = None
    if mask is not None:
        for each in axis if isinstance(axis, (list, tuple)) else [axis]:
            aligned = _align_mask(mask, _mask_axis(each, ndim), ndim, x.shape)
            full = aligned if full is None else ops.logical_and(full, aligned)
    if bias is not None:
        bias = ops.convert_to_tensor(bias)
        if "bool" in str(bias.dtype):
            full = bias if full is None else ops.logical_and(full, bias)
        else:
            x = x + ops.cast(bias, x.dtype)
    if full is not None:
        x = ops.where(full, x, ops.cast(fill, x.dtype))
    return (x, full) if return_mask else x


ATTENTION_NORMALIZATIONS = ("softmax", "squared_relu", "softmax_plus")


def attention_normalize(a, mask=None, axis=-1, method="softmax"):
    """Attention weights from logits `a`, ignoring masked keys.

    softmax: the usual softmax. squared_relu: relu(a)^2 / n (FLASH, arXiv
    2202.10447). softmax_plus: softmax(a * log(n) / log(512)), the entropy-
    invariant scale of kexue.fm/archives/8823, with n floored at 16 as in
    bert4keras. n is the number of valid keys along `axis` (at least 1).
    """
    if not isinstance(method, str) or method not in ATTENTION_NORMALIZATIONS:
        raise ValueError(
            f"unknown attention normalization {method!r}; "
            f"use one of {', '.join(ATTENTION_NORMALIZATIONS)}"
        )
    a = ops.convert_to_tensor(a)
    ndim = len(a.shape)
    axis = _mask_axis(axis, ndim, "attention_normalize")
    a = sequence_masking(a, mask, "-inf", axis)
    if method == "softmax":
        return ops.softmax(a, axis=axis)
    if mask is None:
        n = ops.cast(ops.shape(a)[axis], a.dtype)
    else:
        n = ops.sum(ops.cast(_align_mask(mask, axis, ndim), a.dtype), axis=axis, keepdims=True)
    if method == "squared_relu":
        return ops.square(ops.relu(a)) / ops.maximum(n, 1)
    scale = ops.log(ops.maximum(n, 16)) / math.log(512)  # very short sequences: no boost
    return ops.softmax(a * scale, axis=axis)


def sinusoidal_embeddings(pos, dim, base=10000):
    """Sinusoidal encodings of positions `pos` (any shape) -> pos.shape + (dim,),
    interleaved as [sin(p w_0), cos(p w_0), sin(p w_1), cos(p w_1), ...]
    with w_i = base^(-2i/dim)."""
    dim = validation.integer(dim, "dim", "sinusoidal_embeddings", minimum=2)
    if dim % 2:
        raise validation.InvalidValue(f"sinusoidal embeddings need an even dim, got {dim}", "dim")
    base = validation.real(base, "base", "sinusoidal_embeddings", above=0)
    pos = ops.cast(pos, "float32")
    freqs = ops.power(float(base), -2.0 * ops.arange(dim // 2, dtype="float32") / dim)
    angles = ops.expand_dims(pos, -1) * freqs
    pairs = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)
    return ops.reshape(pairs, ops.shape(pos) + (dim,))


def _rotate_pairs(x):
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)."""
    pairs = ops.stack([-x[..., 1::2], x[..., ::2]], axis=-1)
    return ops.reshape(pairs, ops.shape(x))


def _rotate_halves(x):
    """(a, b) halves -> (-b, a): the rotation of GPT-NeoX / HF Llama's RoPE."""
    half = ops.shape(x)[-1] // 2
    return ops.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rotary_position_embeddings(sinusoidal, *tensors, halves=False):
    """Rotary position embeddings (RoPE, kexue.fm/archives/8265).

    sinusoidal: interleaved sin/cos from `sinusoidal_embeddings`, shaped
    [time, dim] or [batch or 1, time, dim]. tensors: [batch, time, ..., dim],
    all the same shape. Each pair (x_2i, x_2i+1) is rotated by the angle of
    its position, so q.k depends only on the relative position. Returns one
    tensor for one input, else a list. halves=True rotates the pairs
    (x_i, x_i+dim/2) instead (HF Llama / GPT-NeoX layout): the same maths on
    q/k features in another order.
    """
    if not tensors:
        raise ValueError("apply_rotary_position_embeddings needs at least one tensor")
    tensors = [ops.convert_to_tensor(t) for t in tensors]
    shape = tuple(tensors[0].shape)
    if any(tuple(t.shape) != shape for t in tensors[1:]):
        raise ValueError("apply_rotary_position_embeddings: all tensors must have the same shape")
    sinusoidal = ops.convert_to_tensor(sinusoidal)
    if len(sinusoidal.shape) == 2:
        sinusoidal = ops.expand_dims(sinusoidal, 0)
    if len(sinusoidal.shape) != 3 or len(shape) < 3:
        raise ValueError(
            "apply_rotary_position_embeddings expects sinusoidal [(batch,) time, dim] and "
            f"tensors [batch, time, ..., dim]; got {tuple(sinusoidal.shape)} and {shape}"
        )
    _check_rotary_shapes(tuple(sinusoidal.shape), shape)
    for _ in range(len(shape) - 3):
        sinusoidal = ops.expand_dims(sinusoidal, -2)  # broadcast over e.g. heads
    if halves:
        cos = ops.tile(sinusoidal[..., 1::2], [1] * (len(shape) - 1) + [2])
        sin = ops.tile(sinusoidal[..., ::2], [1] * (len(shape) - 1) + [2])
        rotate = _rotate_halves
    else:
        cos = ops.repeat(sinusoidal[..., 1::2], 2, axis=-1)
        sin = ops.repeat(sinusoidal[..., ::2], 2, axis=-1)
        rotate = _rotate_pairs
    outputs = []
    for tensor in tensors:
        cos_t, sin_t = ops.cast(cos, tensor.dtype), ops.cast(sin, tensor.dtype)
        outputs.append(tensor * cos_t + rotate(tensor) * sin_t)
    return outputs[0] if len(outputs) == 1 else outputs


def _check_rotary_shapes(sinusoidal, tensor):
    """sinusoidal [batch or 1, time, dim] against tensors [batch, time, ..., dim]."""
    pairs = [(sinusoidal[-1], tensor[-1], "dim"), (sinusoidal[1], tensor[1], "time")]
    if sinusoidal[0] != 1:
        pairs.append((sinusoidal[0], tensor[0], "batch"))
    for a, b, what in pairs:
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"apply_rotary_position_embeddings: sinusoidal {tuple(sinusoidal)} and tensors "
                f"{tuple(tensor)} differ in {what} ({a} vs {b})"
            )
    if tensor[-1] is not None and tensor[-1] % 2:
        raise ValueError(
            f"apply_rotary_position_embeddings: the last axis must be even (pairs are "
            f"rotated), got tensors of shape {tuple(tensor)}"
        )


def piecewise_linear(t, schedule, from_zero=True):
    """Piecewise-linear function of `t` through the points {t_i: value_i}:
    linear between points, constant before the first and after the last.
    from_zero adds the point (0, 0) when the schedule does not start at 0
    (so {1000: 1} is a 1000-step warmup from 0)."""
    points = _schedule_points(schedule)
    if validation.boolean(from_zero, "from_zero", "piecewise_linear") and points[0][0] != 0:
        points.insert(0, (0.0, 0.0))
    t = ops.cast(t, "float32")
    x = ops.full_like(t, points[0][1])
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        slope = (v1 - v0) / (t1 - t0)
        x = ops.where(t >= t0, v0 + slope * (t - t0), x)
    return ops.where(t >= points[-1][0], ops.full_like(t, points[-1][1]), x)


def _schedule_points(schedule):
    """Sorted (t, value) pairs of a non-empty {t: value} dict of finite numbers
    (keys may be numeric strings, as JSON stores them), without repeated t."""
    who = "piecewise_linear"
    if not isinstance(schedule, dict) or not schedule:
        raise ValueError(f"{who} needs a non-empty schedule {{step: value}}, got {schedule!r}")
    points = {}
    for key, value in schedule.items():
        name = f"schedule[{key!r}]"
        point = _number_key(key, who)
        if point in points:
            raise validation.InvalidValue(
                f"{who}: the schedule names the point {point:g} twice", "schedule"
            )
        points[point] = validation.real(value, name, who)
    return sorted(points.items())


def _number_key(key, who):
    """A schedule key as a finite float (JSON turns numeric keys into strings)."""
    if isinstance(key, str):
        try:
            key = float(key)
        except ValueError:
            raise validation.InvalidValue(
                f"{who}: schedule keys must be numbers, got {key!r}", "schedule"
            ) from None
    return validation.real(key, f"schedule key {key!r}", who)


# ---------------------------------------------------------------------------
# More bert4keras.backend helpers scripts import
# ---------------------------------------------------------------------------


def search_layer(inputs, name, exclude_from=None):
    """The layer named `name` found by walking back from `inputs` (a layer
    or a Keras tensor) through the functional graph, looking inside nested
    models too; None if there is none (bert4keras)."""
    seen = set() if exclude_from is None else exclude_from
    pending = [inputs]
    while pending:
        item = pending.pop()
        layer = item if isinstance(item, keras.layers.Layer) else item._keras_history.operation
        if layer in seen:
            continue
        seen.add(layer)
        if layer.name == name:
            return layer
        for inner in getattr(layer, "layers", ()):
            if inner.name == name:
                return inner
        for node in layer._inbound_nodes:
            pending.extend(node.input_tensors)
    return None


def batch_gather(params, indices):
    """tf.gather(params, indices, batch_dims=ndim(indices) - 1): for each
    batch position, the rows of `params` its indices name (bert4keras)."""
    params = ops.convert_to_tensor(params)
    indices = ops.convert_to_tensor(indices)
    if "int" not in str(indices.dtype):
        indices = ops.cast(indices, "int32")
    axis = len(indices.shape) - 1
    trailing = tuple(params.shape[axis + 1 :])
    expanded = ops.reshape(indices, tuple(ops.shape(indices)) + (1,) * len(trailing))
    expanded = ops.broadcast_to(expanded, tuple(ops.shape(indices)) + trailing)
    return ops.take_along_axis(params, expanded, axis=axis)


def align(tensor, axes, ndim=None):
    """Place axis i of `tensor` at axis axes[i] of a rank-`ndim` result, with
    new axes of size 1 elsewhere (a batched expand_dims; bert4keras)."""
    tensor = ops.convert_to_tensor(tensor)
    if len(axes) != len(tensor.shape):
        raise ValueError(
            f"align: `axes` needs one entry per axis of the tensor ({len(tensor.shape)})"
        )
    ndim = ndim or max(axes) + 1
    axes = [a % ndim for a in axes]
    for axis in range(ndim):
        if axis not in axes:
            tensor = ops.expand_dims(tensor, axis)
    return tensor


def root_mean_square(x, axis=None, keepdims=False):
    return ops.sqrt(ops.mean(ops.square(x), axis=axis, keepdims=keepdims))


def swish(x):
    x = ops.convert_to_tensor(x)
    return x * ops.sigmoid(x)


def leaky_relu(x, alpha=0.2):
    return ops.leaky_relu(x, negative_slope=alpha)


def divisible_temporal_padding(x, n):
    """Right-pad the time axis (1) of `x` to a multiple of `n`."""
    n = validation.integer(n, "n", "divisible_temporal_padding", minimum=1)
    length = ops.shape(x)[1]
    pad = (-length) % n
    return ops.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (len(x.shape) - 2))


def pool1d(x, pool_size, strides=1, padding="valid", data_format=None, pool_mode="max"):
    """Max or average pooling over the time axis of [batch, time, dim]."""
    pool_mode = validation.one_of(pool_mode, "pool_mode", ("max", "avg"), "pool1d")
    pool = ops.max_pool if pool_mode == "max" else ops.average_pool
    return pool(x, pool_size, strides, padding, data_format)


# The losses used to live in bert4keras.backend; keep them importable from here.
# `from bert4keras.backend import keras, K`: Keras itself, and the Keras 2
# backend functions bert4keras scripts call (nlp4keras/keras2_backend.py).
from nlp4keras import keras2_backend as K  # noqa: E402, F401  (re-export)
from nlp4keras.losses import (  # noqa: E402, F401  (re-exports)
    multilabel_categorical_crossentropy,
    sparse_multilabel_categorical_crossentropy,
)

# Gradient checkpointing (bert4keras.backend.recompute_grad).
from nlp4keras.recompute import recompute_grad  # noqa: E402, F401  (re-export)
