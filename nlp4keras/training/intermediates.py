"""Intermediate values of an existing model (layer outputs, attention
probabilities) for given inputs, without rebuilding it.

Layer outputs come from a sub-model sharing the layers (first call of each
layer). Attention probabilities come from the MultiHeadAttention layers
themselves: while `record_attention_probs` is set they take their explicit
path (float32 softmax) and keep the probabilities; it is reset afterwards, so
the model's own calls keep the fused fast path.
"""

from dataclasses import dataclass, field

import keras

from nlp4keras import validation
from nlp4keras.layers import MultiHeadAttention
from nlp4keras.layers.base import walk_layers
from nlp4keras.messages import did_you_mean


@dataclass
class Intermediates:
    """outputs: {layer name: numpy output}; attention_probs: {attention layer
    name: numpy [batch, heads, q_len, k_len]} (0 on masked keys)."""

    outputs: dict = field(default_factory=dict)
    attention_probs: dict = field(default_factory=dict)


def get_intermediates(model, inputs, names, attention_probs=False):
    """Outputs of the layers `names` (and, with attention_probs=True, the
    attention probabilities of those that are MultiHeadAttention layers) for
    `inputs`, in inference mode (training=False)."""
    who = "get_intermediates"
    names = [names] if isinstance(names, str) else names
    validation.instance(names, "names", (list, tuple), who, "a layer name or a list of them")
    if not names:
        raise ValueError("get_intermediates needs at least one layer name")
    names = [validation.string(name, f"names[{n}]", who) for n, name in enumerate(names)]
    attention_probs = validation.boolean(attention_probs, "attention_probs", who)
    layers = [find_layer(model, name) for name in names]
    attention = [layer for layer in layers if isinstance(layer, MultiHeadAttention)]
    if attention_probs and not attention:
        valid = [
            layer.name for layer in walk_layers(model) if isinstance(layer, MultiHeadAttention)
        ]
        raise ValueError(
            "attention_probs=True but none of the names is a MultiHeadAttention layer; "
            f"those are: {', '.join(valid) or 'none'}"
        )
    submodel = keras.Model(model.input, [_first_output(layer) for layer in layers])
    recording = attention if attention_probs else []
    for layer in recording:
        layer.record_attention_probs = True
        layer.recorded_attention_probs = None
    try:
        outputs = submodel(inputs, training=False)
        outputs = [outputs] if len(layers) == 1 else outputs  # Keras unwraps one output
        probs = {layer.name: layer.recorded_attention_probs for layer in recording}
    finally:
        for layer in recording:
            layer.record_attention_probs = False
            layer.recorded_attention_probs = None
    return Intermediates(
        outputs={name: _to_numpy(out) for name, out in zip(names, outputs, strict=True)},
        attention_probs={name: _to_numpy(p) for name, p in probs.items()},
    )


def find_layer(model, name):
    """The layer called `name` in `model` or its nested models (an error that
    lists the names otherwise)."""
    layers = {layer.name: layer for layer in walk_layers(model)}
    if name not in layers:
        raise ValueError(
            f"model has no layer {name!r}.{did_you_mean(name, list(layers))} "
            f"Valid layer names: {', '.join(layers)}"
        )
    return layers[name]


def _first_output(layer):
    """The (first) output tensor of the layer's first call."""
    output = layer.output
    return output[0] if isinstance(output, (list, tuple)) else output


def _to_numpy(x):
    return keras.ops.convert_to_numpy(x)
