"""Attention masks for language-model applications.

Each layer returns a boolean mask (True = may attend) broadcastable to
[batch, heads, q_len, k_len]; padding is applied separately by the attention
layer from the Keras mask of its inputs.
"""

import keras
from keras import ops

from nlp4keras.layers.base import Layer, serializable


def causal_mask(q_len, k_len=None):
    """Lower-triangular [1, 1, q_len, k_len] mask: i sees j iff j <= i."""
    k_len = q_len if k_len is None else k_len
    rows = ops.arange(q_len)[:, None]
    cols = ops.arange(k_len)[None, :]
    return ops.expand_dims(ops.expand_dims(cols <= rows, 0), 0)


def unilm_mask(segment_ids):
    """UniLM seq2seq mask from segment ids: position i sees j iff
    cumsum(segment)[j] <= cumsum(segment)[i]. Segment 0 (the source) is
    fully visible to itself; segment 1 (the target) is causal and sees the
    whole source."""
    order = ops.cumsum(ops.cast(segment_ids, "int32"), axis=1)
    return ops.expand_dims(order[:, None, :] <= order[:, :, None], 1)


class _MaskLayer(Layer):
    """A layer whose output is a boolean attention mask (and carries no mask)."""

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype="bool")


@serializable
class LMMask(_MaskLayer):
    """Causal mask built from token ids (bert4keras' Attention-LM-Mask)."""

    def call(self, inputs):
        return causal_mask(ops.shape(inputs)[1])

    def compute_output_shape(self, input_shape):
        return (1, 1, input_shape[1], input_shape[1])


@serializable
class UniLMMask(_MaskLayer):
    """Seq2seq mask built from segment ids (bert4keras' Attention-UniLM-Mask)."""

    def call(self, inputs):
        return unilm_mask(inputs)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, input_shape[1], input_shape[1])
