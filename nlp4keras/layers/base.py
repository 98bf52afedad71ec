"""Shared plumbing for nlp4keras layers."""

import keras
from keras import ops

from nlp4keras.backend import serializable  # noqa: F401  (re-exported for the layers)


class Layer(keras.layers.Layer):
    """A Keras layer that passes masks through unless it says otherwise."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True


def first_mask(mask):
    """The mask of the first input when a layer takes a list of inputs."""
    if isinstance(mask, (list, tuple)):
        return mask[0] if mask else None
    return mask


def linear(x, kernel, bias=None):
    """x @ kernel (+ bias): the projection inside attention and feed-forward."""
    y = ops.matmul(x, kernel)
    return y if bias is None else y + bias


def walk_layers(model):
    """Every layer of a model, depth first, with the layers of nested models
    (e.g. the blocks that `recompute=True` wraps), each once."""
    seen = set()

    def walk(layers):
        for layer in layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            yield layer
            yield from walk(getattr(layer, "layers", None) or [])

    yield from walk(model.layers)
