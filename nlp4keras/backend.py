"""Backend-neutral helpers built on `keras.ops`: activations and small ops.

bert4keras exposed these from `bert4keras.backend`; the names are kept.
"""

import math

import keras
from keras import ops

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
# Sequence ops (bert4keras.backend names and semantics)
# ---------------------------------------------------------------------------


def _fill_value(value):
    """A masking value: a number, or '-inf' / 'inf' for -/+ infinity()."""
    if isinstance(value, str):
        if value == "-inf":
            return -infinity()
        if value == "inf":
            return infinity()
        raise ValueError(f"masking value must be a number, '-inf' or 'inf', got {value!r}")
    return value


def _mask_axis(axis, ndim):
    """The positive axis a [batch, time] mask lands on (default 1)."""
    axis = 1 if axis is None else int(axis)
    if axis < 0:
        axis += ndim
    if not 0 < axis < ndim:
        raise ValueError(
            f"mask axis must be one of the non-batch axes 1..{ndim - 1} of a rank-{ndim} "
            f"tensor (or negative), got {axis}"
        )
    return axis


def _align_mask(mask, axis, ndim):
    """A [batch, time] mask reshaped (as bool) to broadcast onto a rank-`ndim`
    tensor whose time axis is `axis`."""
    mask = ops.convert_to_tensor(mask)
    if len(mask.shape) != 2:
        raise ValueError(f"mask must have rank 2 [batch, time], got shape {tuple(mask.shape)}")
    mask = ops.cast(mask, "bool")
    for _ in range(axis - 1):
        mask = ops.expand_dims(mask, 1)
    for _ in range(ndim - axis - 1):
        mask = ops.expand_dims(mask, -1)
    return mask


def sequence_masking(x, mask=None, value=0, axis=None):
    """Sets the padded positions of `x` to `value`.

    mask: [batch, time], True/1 = keep; its time axis lands on `axis` of x
    (default 1). value: a number, or '-inf' / 'inf' for -/+ `infinity()`.
    """
    if mask is None:
        return x
    x = ops.convert_to_tensor(x)
    ndim = len(x.shape)
    mask = _align_mask(mask, _mask_axis(axis, ndim), ndim)
    return ops.where(mask, x, ops.cast(_fill_value(value), x.dtype))


ATTENTION_NORMALIZATIONS = ("softmax", "squared_relu", "softmax_plus")


def attention_normalize(a, mask=None, axis=-1, method="softmax"):
    """Attention weights from logits `a`, ignoring masked keys.

    softmax: the usual softmax. squared_relu: relu(a)^2 / n (FLASH, arXiv
    2202.10447). softmax_plus: softmax(a * log(n) / log(512)), the entropy-
    invariant scale of kexue.fm/archives/8823, with n floored at 16 as in
    bert4keras. n is the number of valid keys along `axis` (at least 1).
    """
    if method not in ATTENTION_NORMALIZATIONS:
        raise ValueError(
            f"unknown attention normalization {method!r}; "
            f"use one of {', '.join(ATTENTION_NORMALIZATIONS)}"
        )
    a = ops.convert_to_tensor(a)
    ndim = len(a.shape)
    axis = _mask_axis(axis, ndim)
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
    if dim % 2:
        raise ValueError(f"sinusoidal embeddings need an even dim, got {dim}")
    pos = ops.cast(pos, "float32")
    freqs = ops.power(float(base), -2.0 * ops.arange(dim // 2, dtype="float32") / dim)
    angles = ops.expand_dims(pos, -1) * freqs
    pairs = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)
    return ops.reshape(pairs, ops.shape(pos) + (dim,))


def _rotate_pairs(x):
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)."""
    pairs = ops.stack([-x[..., 1::2], x[..., ::2]], axis=-1)
    return ops.reshape(pairs, ops.shape(x))


def apply_rotary_position_embeddings(sinusoidal, *tensors):
    """Rotary position embeddings (RoPE, kexue.fm/archives/8265).

    sinusoidal: interleaved sin/cos from `sinusoidal_embeddings`, shaped
    [time, dim] or [batch or 1, time, dim]. tensors: [batch, time, ..., dim],
    all the same shape. Each pair (x_2i, x_2i+1) is rotated by the angle of
    its position, so q.k depends only on the relative position. Returns one
    tensor for one input, else a list.
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
    for _ in range(len(shape) - 3):
        sinusoidal = ops.expand_dims(sinusoidal, -2)  # broadcast over e.g. heads
    cos = ops.repeat(sinusoidal[..., 1::2], 2, axis=-1)
    sin = ops.repeat(sinusoidal[..., ::2], 2, axis=-1)
    outputs = []
    for tensor in tensors:
        cos_t, sin_t = ops.cast(cos, tensor.dtype), ops.cast(sin, tensor.dtype)
        outputs.append(tensor * cos_t + _rotate_pairs(tensor) * sin_t)
    return outputs[0] if len(outputs) == 1 else outputs


def piecewise_linear(t, schedule, from_zero=True):
    """Piecewise-linear function of `t` through the points {t_i: value_i}:
    linear between points, constant before the first and after the last.
    from_zero adds the point (0, 0) when the schedule does not start at 0
    (so {1000: 1} is a 1000-step warmup from 0)."""
    points = sorted((float(k), float(v)) for k, v in dict(schedule).items())
    if not points:
        raise ValueError("piecewise_linear needs a non-empty schedule {step: value}")
    if from_zero and points[0][0] != 0:
        points.insert(0, (0.0, 0.0))
    t = ops.cast(t, "float32")
    x = ops.full_like(t, points[0][1])
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        slope = (v1 - v0) / (t1 - t0)
        x = ops.where(t >= t0, v0 + slope * (t - t0), x)
    return ops.where(t >= points[-1][0], ops.full_like(t, points[-1][1]), x)


# The losses used to live in bert4keras.backend; keep them importable from here.
from nlp4keras.losses import (  # noqa: E402, F401  (re-exports)
    multilabel_categorical_crossentropy,
    sparse_multilabel_categorical_crossentropy,
)

# Gradient checkpointing (bert4keras.backend.recompute_grad).
from nlp4keras.recompute import recompute_grad  # noqa: E402, F401  (re-export)
