"""GlobalPointer span scorers for nested / flat named-entity recognition.

Each head scores every (start, end) span of the sequence; train with
`nlp4keras.losses.global_pointer_crossentropy` (a span is an entity iff its
logit > 0).
"""

import math

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import (
    apply_rotary_position_embeddings,
    infinity,
    sequence_masking,
    sinusoidal_embeddings,
)
from nlp4keras.layers.base import Layer, first_mask, linear, serializable


@serializable
class GlobalPointer(Layer):
    """GlobalPointer (kexue.fm/archives/8373).

    Input [batch, n, dim] with an optional Keras padding mask; output span
    logits [batch, heads, n, n] (row = start, column = end). A Dense layer
    gives per head a query and a key; with RoPE both are rotated by their
    position, and logit(i, j) = q_i . k_j / sqrt(head_size). Spans touching
    padding get -infinity(); with tril_mask, spans with end < start get a
    further -infinity(). The output carries no mask.
    """

    def __init__(
        self,
        heads,
        head_size,
        RoPE=True,  # noqa: N803  (bert4keras' argument name)
        use_bias=True,
        tril_mask=True,
        kernel_initializer="lecun_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = type(self).__name__
        self.heads = validation.integer(heads, "heads", who, minimum=1)
        self.head_size = validation.integer(head_size, "head_size", who, minimum=1)
        self.RoPE = validation.boolean(RoPE, "RoPE", who)
        if self.RoPE and self.head_size % 2:
            raise validation.InvalidValue(
                f"{who}: RoPE needs an even head_size (it rotates pairs of channels), "
                f"got `head_size` {self.head_size}",
                "head_size",
            )
        self.use_bias = validation.boolean(use_bias, "use_bias", who)
        self.tril_mask = validation.boolean(tril_mask, "tril_mask", who)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} expects inputs [batch, n, dim] with a known dim, "
                f"got shape {input_shape}"
            )

    def _dense_weights(self, prefix, in_dim, units):
        kernel = self.add_weight(
            name=prefix + "kernel", shape=(in_dim, units), initializer=self.kernel_initializer
        )
        bias = None
        if self.use_bias:
            bias = self.add_weight(name=prefix + "bias", shape=(units,), initializer="zeros")
        return kernel, bias

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        units = self.heads * self.head_size * 2
        self.kernel, self.bias = self._dense_weights("", input_shape[-1], units)

    def _rotate(self, q, k):
        """Apply RoPE to q and k, [batch, n, ..., head_size]."""
        if not self.RoPE:
            return q, k
        positions = ops.arange(ops.shape(q)[1], dtype="float32")
        return apply_rotary_position_embeddings(
            sinusoidal_embeddings(positions, self.head_size), q, k
        )

    def _span_logits(self, inputs):
        # Per head, the Dense output holds [q (head_size), k (head_size)].
        x = linear(inputs, self.kernel, self.bias)
        x = ops.reshape(x, ops.shape(x)[:-1] + (self.heads, 2 * self.head_size))
        q, k = self._rotate(x[..., : self.head_size], x[..., self.head_size :])
        return ops.einsum("bmhd,bnhd->bhmn", q, k) / math.sqrt(self.head_size)

    def call(self, inputs, mask=None):
        logits = self._span_logits(inputs)
        mask = first_mask(mask)
        logits = sequence_masking(logits, mask, "-inf", axis=2)
        logits = sequence_masking(logits, mask, "-inf", axis=3)
        if self.tril_mask:
            n = ops.shape(logits)[-1]
            below = ops.arange(n)[:, None] > ops.arange(n)[None, :]  # end < start
            logits = ops.where(below, logits - ops.cast(infinity(), logits.dtype), logits)
        return logits

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        self._check_input_shape(input_shape)
        return (input_shape[0], self.heads, input_shape[1], input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            heads=self.heads,
            head_size=self.head_size,
            RoPE=self.RoPE,
            use_bias=self.use_bias,
            tril_mask=self.tril_mask,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@serializable
class EfficientGlobalPointer(GlobalPointer):
    """Parameter-efficient GlobalPointer (kexue.fm/archives/8877).

    One Dense(2 * head_size) gives a query/key shared by all heads (q the even
    channels, k the odd ones) and one shared score q_i . k_j / sqrt(head_size).
    Each head adds its own start and end terms, read by a Dense(2 * heads)
    from that same projection and halved: channel 2h is added by end position
    (columns), channel 2h + 1 by start position (rows), as in bert4keras.
    Same arguments, masking and output as GlobalPointer.
    """

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        inner = 2 * self.head_size
        self.p_kernel, self.p_bias = self._dense_weights("p_", input_shape[-1], inner)
        self.q_kernel, self.q_bias = self._dense_weights("q_", inner, 2 * self.heads)

    def _span_logits(self, inputs):
        x = linear(inputs, self.p_kernel, self.p_bias)
        q, k = self._rotate(x[..., ::2], x[..., 1::2])
        shared = ops.einsum("bmd,bnd->bmn", q, k) / math.sqrt(self.head_size)
        head_terms = ops.transpose(linear(x, self.q_kernel, self.q_bias), (0, 2, 1)) / 2
        by_end = head_terms[:, ::2, None, :]  # [batch, heads, 1, n]
        by_start = head_terms[:, 1::2, :, None]  # [batch, heads, n, 1]
        return shared[:, None] + by_end + by_start
