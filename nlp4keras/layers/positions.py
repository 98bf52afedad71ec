"""Position tensors computed once, before the blocks, and handed to every
attention layer: rotary sinusoids (RoFormer, GAU-α) and NEZHA's functional
relative positions."""

import keras
import numpy as np
from keras import ops

from nlp4keras import validation as check
from nlp4keras.backend import sinusoidal_embeddings
from nlp4keras.layers.base import Layer, serializable


def check_positions(layer, positions, inputs_mask, mask):
    """For an attention layer's call: `positions` must be given exactly when
    the layer has a position_mode. Returns the inputs' mask: with a tensor in
    `positions`, Keras hands it over as `inputs_mask` (one `<argument>_mask`
    per tensor argument) instead of `mask`."""
    if (positions is None) != (layer.position_mode is None):
        raise ValueError(
            f"{layer.name}: position_mode={layer.position_mode!r} "
            + ("needs a `positions` tensor" if positions is None else "takes no `positions`")
        )
    return inputs_mask if mask is None else mask


@serializable
class SinusoidalPositionEmbedding(Layer):
    """Sinusoidal encodings of the positions of `x` ([batch, len, ...]):
    [1, len, output_dim] (or [batch, len, output_dim] with custom position
    ids: inputs are then [x, position_ids]), interleaved sin/cos as RoPE
    reads them. bert4keras' merge_mode='zero' (the encodings alone) is the
    only mode: adding them to x is what absolute positions do, not rotary.
    base: the wavelength base (10000; Llama's rope_theta). A `position_ids`
    call argument gives the positions for one call (the decoding graph)."""

    def __init__(
        self, output_dim, custom_position_ids=False, merge_mode="zero", base=10000.0, **kwargs
    ):
        super().__init__(**kwargs)
        who = f"SinusoidalPositionEmbedding {self.name!r}"
        self.output_dim = check.integer(output_dim, "output_dim", who, minimum=2)
        if self.output_dim % 2:
            raise check.InvalidValue(
                f"{who}: output_dim must be even (pairs are rotated), got {output_dim}",
                "output_dim",
            )
        self.custom_position_ids = check.boolean(custom_position_ids, "custom_position_ids", who)
        self.merge_mode = check.one_of(merge_mode, "merge_mode", ("zero",), who)
        self.base = float(check.real(base, "base", who, above=0))

    def call(self, inputs, position_ids=None):
        if self.custom_position_ids:
            _, position_ids = inputs
        if position_ids is None:
            position_ids = ops.expand_dims(ops.arange(ops.shape(inputs)[1]), 0)
        return sinusoidal_embeddings(position_ids, self.output_dim, self.base)

    def compute_output_spec(self, inputs, position_ids=None):
        if position_ids is None:
            return super().compute_output_spec(inputs)
        shape = tuple(position_ids.shape) + (self.output_dim,)
        return keras.KerasTensor(shape, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        if self.custom_position_ids:
            return tuple(input_shape[1]) + (self.output_dim,)
        return (1, input_shape[1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            output_dim=self.output_dim,
            custom_position_ids=self.custom_position_ids,
            merge_mode=self.merge_mode,
            base=self.base,
        )
        return config


def relative_sinusoid_table(max_distance, dim):
    """NEZHA's fixed table [2 * max_distance + 1, dim]: row r holds the
    interleaved sin/cos of position r (relative distance r - max_distance)."""
    rows = np.arange(2 * max_distance + 1, dtype="float64")[:, None]
    freqs = np.power(10000.0, -2.0 * np.arange(dim // 2) / dim)
    table = np.zeros((2 * max_distance + 1, dim))
    table[:, 0 : 2 * (dim // 2) : 2] = np.sin(rows * freqs)
    table[:, 1 : 2 * (dim // 2) : 2] = np.cos(rows * freqs)
    return table.astype("float32")


@serializable
class RelativePositionEmbedding(Layer):
    """NEZHA's functional relative positions: inputs [q, k] ([batch, len, ...]);
    output [q_len, k_len, output_dim], row (i, j) the fixed sinusoid of
    clip(j - i, -max_distance, max_distance). No weights: nothing to load."""

    def __init__(self, output_dim, max_distance=64, **kwargs):
        super().__init__(**kwargs)
        who = f"RelativePositionEmbedding {self.name!r}"
        self.output_dim = check.integer(output_dim, "output_dim", who, minimum=1)
        self.max_distance = check.integer(max_distance, "max_distance", who, minimum=1)
        self._table = relative_sinusoid_table(self.max_distance, self.output_dim)

    def call(self, inputs):
        q, k = inputs
        q_ids = ops.arange(ops.shape(q)[1])[:, None]
        k_ids = ops.arange(ops.shape(k)[1])[None, :]
        distance = ops.clip(k_ids - q_ids, -self.max_distance, self.max_distance)
        table = ops.convert_to_tensor(self._table, dtype=self.compute_dtype)
        return ops.take(table, distance + self.max_distance, axis=0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0][1], input_shape[1][1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(output_dim=self.output_dim, max_distance=self.max_distance)
        return config


__all__ = [
    "RelativePositionEmbedding",
    "SinusoidalPositionEmbedding",
    "check_positions",
    "relative_sinusoid_table",
]
