"""Position tensors computed once, before the blocks, and handed to every
attention layer: rotary sinusoids (RoFormer, GAU-α), NEZHA's functional
relative positions and T5's bucketed relative attention bias."""

import math

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


def relative_distances(q_len, k_len, query_positions=None):
    """[q_len, k_len] int32 key position - query position, keys at
    0..k_len-1; queries at 0..q_len-1, or (decoding) at `query_positions`
    [batch, q_len], the same in every row (cache slots: left padding shifts
    queries and keys alike, so distances between real tokens are kept)."""
    if query_positions is None:
        queries = ops.arange(q_len, dtype="int32")
    else:
        queries = ops.cast(query_positions[0], "int32")
    return ops.arange(k_len, dtype="int32")[None, :] - queries[:, None]


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

    def call(self, inputs, query_positions=None):
        """query_positions (decoding): as RelativePositionEmbeddingT5's."""
        q, k = inputs
        distance = relative_distances(ops.shape(q)[1], ops.shape(k)[1], query_positions)
        distance = ops.clip(distance, -self.max_distance, self.max_distance)
        table = ops.convert_to_tensor(self._table, dtype=self.compute_dtype)
        return ops.take(table, distance + self.max_distance, axis=0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs, query_positions=None):
        shape = (inputs[0].shape[1], inputs[1].shape[1], self.output_dim)
        return keras.KerasTensor(shape, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(output_dim=self.output_dim, max_distance=self.max_distance)
        return config


def t5_bucket_table(num_buckets, max_distance):
    """T5's bucket of each one-sided distance 0..max_distance (larger ones
    share the last): distances below num_buckets / 2 get their own bucket, the
    rest log-spaced buckets up to max_distance. float32 maths, as mesh-TF and
    HF compute it (the rounding decides the bucket edges)."""
    exact = num_buckets // 2
    distance = np.arange(max_distance + 1)
    ratio = np.maximum(distance, 1).astype(np.float32) / np.float32(exact)
    scale = np.float32(num_buckets - exact) / np.float32(math.log(max_distance / exact))
    large = exact + (np.log(ratio) * scale).astype(np.int64)
    return np.where(distance < exact, distance, np.minimum(large, num_buckets - 1))


@serializable
class RelativePositionEmbeddingT5(Layer):
    """T5's relative attention bias: inputs [q, k] ([batch, len, ...], only
    their lengths are read); output [1, heads, q_len, k_len], the learned bias
    of each (query, key) pair's bucket (`embeddings` [input_dim, output_dim]:
    one row per bucket, one column per head). The relative position is
    key - query; bidirectional (encoder) splits the buckets between keys
    before and after the query, otherwise (decoder) later keys share bucket 0.
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        max_distance=128,
        bidirectional=True,
        embeddings_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = f"RelativePositionEmbeddingT5 {self.name!r}"
        self.input_dim = check.integer(input_dim, "input_dim", who, minimum=2)
        self.output_dim = check.integer(output_dim, "output_dim", who, minimum=1)
        self.max_distance = check.integer(max_distance, "max_distance", who, minimum=1)
        self.bidirectional = check.boolean(bidirectional, "bidirectional", who)
        if self.bidirectional and self.input_dim < 4:
            raise check.InvalidValue(f"{who}: bidirectional needs input_dim >= 4", "input_dim")
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        side = self.input_dim // 2 if self.bidirectional else self.input_dim
        self._table = t5_bucket_table(side, self.max_distance).astype("int32")

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
        )

    def buckets(self, q_len, k_len, query_positions=None):
        """[q_len, k_len] bucket ids."""
        relative = relative_distances(q_len, k_len, query_positions)
        table = ops.convert_to_tensor(self._table)
        if not self.bidirectional:
            return ops.take(table, ops.clip(-relative, 0, self.max_distance), axis=0)
        after = ops.cast(relative > 0, "int32") * (self.input_dim // 2)
        return after + ops.take(table, ops.clip(ops.abs(relative), 0, self.max_distance), axis=0)

    def call(self, inputs, query_positions=None):
        """query_positions (decoding): [batch, q_len] the queries' positions
        (the same in every row); default 0..q_len-1. Keys are at 0..k_len-1."""
        q, k = inputs
        buckets = self.buckets(ops.shape(q)[1], ops.shape(k)[1], query_positions)
        bias = ops.take(self.embeddings, buckets, axis=0)  # [q_len, k_len, heads]
        return ops.expand_dims(ops.transpose(bias, (2, 0, 1)), 0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs, query_positions=None):
        shape = (1, self.output_dim, inputs[0].shape[1], inputs[1].shape[1])
        return keras.KerasTensor(shape, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            max_distance=self.max_distance,
            bidirectional=self.bidirectional,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config


__all__ = [
    "RelativePositionEmbedding",
    "RelativePositionEmbeddingT5",
    "SinusoidalPositionEmbedding",
    "check_positions",
    "relative_distances",
    "relative_sinusoid_table",
    "t5_bucket_table",
]
