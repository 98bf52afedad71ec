"""Shared plumbing for nlp4keras layers."""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import serializable  # noqa: F401  (re-exported for the layers)


class Layer(keras.layers.Layer):
    """A Keras layer that passes masks through unless it says otherwise."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    # Keras 2's per-call accessors, which bert4keras scripts use on shared
    # layers (ALBERT) and on a model's inner layers; Keras 3 dropped them.
    def get_output_at(self, node_index):
        """The output of this layer's `node_index`-th call (negative: from the last)."""
        return self._node_tensors(node_index, "output_tensors", "get_output_at")

    def get_input_at(self, node_index):
        """The input of this layer's `node_index`-th call (negative: from the last)."""
        return self._node_tensors(node_index, "input_tensors", "get_input_at")

    def _node_tensors(self, node_index, attribute, who):
        node_index = validation.integer(node_index, "node_index", f"{self.name}.{who}")
        calls = len(self._inbound_nodes)
        if not -calls <= node_index < calls:
            raise ValueError(
                f"{self.name}.{who}: `node_index` {node_index} is out of range: the layer "
                f"was called {calls} time(s) on symbolic inputs"
            )
        tensors = getattr(self._inbound_nodes[node_index], attribute)
        return tensors[0] if len(tensors) == 1 else list(tensors)


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
