"""Numpy helpers of bert4keras: `softmax` and `orthogonally_resize`."""

import numpy as np

from nlp4keras import validation


def softmax(x, axis=-1):
    """Numpy softmax of `x` along `axis` (max-subtracted, so large logits do
    not overflow); integer input gives float64."""
    who = "softmax"
    x = _float_array(x, "x", who)
    if x.ndim == 0:
        raise ValueError(f"{who}: `x` must have at least one dimension, got a scalar")
    axis = validation.integer(axis, "axis", who, minimum=-x.ndim, maximum=x.ndim - 1)
    x = x - x.max(axis=axis, keepdims=True)
    x = np.exp(x)
    return x / x.sum(axis=axis, keepdims=True)


def orthogonally_resize(a, new_shape, window=2):
    """Resize a weight array to `new_shape` keeping its norm (bert4keras
    used it to load weights into a wider or narrower model).

    Along each dimension that shrinks, the leading entries are kept. Along
    one that grows by a factor up to k (the smallest k with k * old >= new),
    the entries are cut into blocks of `window`, each block is repeated k
    times in place, and the leading `new` entries are kept. The result is
    then scaled to the Frobenius norm of `a`. A growing dimension must be a
    multiple of `window`."""
    who = "orthogonally_resize"
    a = _float_array(a, "a", who)
    new_shape = validation.integer_list(new_shape, "new_shape", who, minimum=1, allow_empty=True)
    window = validation.integer(window, "window", who, minimum=1)
    if len(new_shape) != a.ndim:
        raise ValueError(
            f"{who}: `new_shape` {tuple(new_shape)} has {len(new_shape)} dimensions but `a` "
            f"has {a.ndim} (shape {a.shape})"
        )
    norm = np.linalg.norm(a)
    for axis, (old, new) in enumerate(zip(a.shape, new_shape)):
        if new > old:
            if old % window:
                raise ValueError(
                    f"{who}: dimension {axis} grows from {old} to {new}, so its size {old} "
                    f"must be a multiple of `window` ({window})"
                )
            repeats = -(-new // old)
            blocks = a.reshape(a.shape[:axis] + (old // window, window) + a.shape[axis + 1 :])
            blocks = np.repeat(blocks, repeats, axis=axis)
            a = blocks.reshape(a.shape[:axis] + (old * repeats,) + a.shape[axis + 1 :])
        a = np.take(a, np.arange(new), axis=axis)
    resized_norm = np.linalg.norm(a)
    return a if resized_norm == 0 else a / resized_norm * norm


def _float_array(x, name, who):
    """`x` as a numpy array of floats (integers and bools become float64)."""
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{who}: `{name}` must be an array of numbers ({error})") from None
    if array.dtype.kind in "biu":
        array = array.astype(np.float64)
    if array.dtype.kind != "f":
        validation.instance(x, name, (), who, what="an array of numbers")
    return array
