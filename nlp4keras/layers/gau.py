"""The gated attention unit (FLASH, arXiv 2202.10447), GAU-α's block."""

import math

import keras
from keras import ops

from nlp4keras import validation as check
from nlp4keras.backend import (
    ATTENTION_NORMALIZATIONS,
    apply_rotary_position_embeddings,
    attention_normalize,
    get_activation,
    infinity,
    resolve_activation,
)
from nlp4keras.layers.base import Layer, first_mask, linear, serializable
from nlp4keras.layers.positions import check_positions


@serializable
class GatedAttentionUnit(Layer):
    """Single-head gated attention over `x` ([batch, len, dim]):
    u, v, z = split(act(x W_i)) into [units, units, key_size];
    q, k = z * gamma_q (+ beta_q), z * gamma_k (+ beta_k), rotated by RoPE when
    position_mode='rotary' (`positions`: SinusoidalPositionEmbedding's output);
    A = normalization(q k^T / sqrt(key_size)) over the valid keys;
    out = (u * (A v)) W_o.

    Inputs: x, or [x, *extras] with boolean masks (True = may attend) or
    additive float biases [batch, (1,) q_len, k_len] (LM / UniLM masks).
    normalization: 'softmax', 'squared_relu' or 'softmax_plus' (GAU-α).
    Weights in order: i kernel (bias), o kernel (bias), q gamma (beta),
    k gamma (beta).
    """

    def __init__(
        self,
        units,
        key_size,
        activation="swish",
        use_bias=True,
        normalization="squared_relu",
        attention_scale=True,
        attention_dropout=None,
        kernel_initializer="glorot_uniform",
        position_mode=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = f"GatedAttentionUnit {self.name!r}"
        self.units = check.integer(units, "units", who, minimum=1)
        self.key_size = check.integer(key_size, "key_size", who, minimum=1)
        self.activation = resolve_activation(check.activation(activation, "activation", who))
        self.use_bias = check.boolean(use_bias, "use_bias", who)
        self.normalization = check.one_of(
            normalization, "normalization", ATTENTION_NORMALIZATIONS, who
        )
        self.attention_scale = check.boolean(attention_scale, "attention_scale", who)
        self.attention_dropout = check.probability(attention_dropout, "attention_dropout", who)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.position_mode = (
            None
            if position_mode is None
            else check.one_of(position_mode, "position_mode", ("rotary",), who)
        )
        self.dropout = (
            keras.layers.Dropout(self.attention_dropout) if self.attention_dropout else None
        )

    def build(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        dim = shape[-1]
        if dim is None:
            raise ValueError(f"{self.name}: needs a known feature size, got {tuple(shape)}")

        def dense(prefix, in_dim, out_dim):
            kernel = self.add_weight(
                name=prefix + "_kernel",
                shape=(in_dim, out_dim),
                initializer=self.kernel_initializer,
            )
            bias = None
            if self.use_bias:
                bias = self.add_weight(name=prefix + "_bias", shape=(out_dim,), initializer="zeros")
            return kernel, bias

        def scale_offset(prefix):
            gamma = self.add_weight(
                name=prefix + "_gamma", shape=(self.key_size,), initializer="ones"
            )
            beta = None
            if self.use_bias:
                beta = self.add_weight(
                    name=prefix + "_beta", shape=(self.key_size,), initializer="zeros"
                )
            return gamma, beta

        self._i = dense("i", dim, 2 * self.units + self.key_size)
        self._o = dense("o", self.units, dim)
        self._q = scale_offset("q")
        self._k = scale_offset("k")

    @staticmethod
    def _scale_offset(z, gamma, beta):
        z = z * gamma
        return z if beta is None else z + beta

    def call(self, inputs, mask=None, training=None, positions=None, inputs_mask=None):
        mask = check_positions(self, positions, inputs_mask, mask)
        x, extras = (inputs[0], inputs[1:]) if isinstance(inputs, (list, tuple)) else (inputs, [])
        h = get_activation(self.activation)(linear(x, *self._i))
        u = h[..., : self.units]
        v = h[..., self.units : 2 * self.units]
        z = h[..., 2 * self.units :]
        q, k = self._scale_offset(z, *self._q), self._scale_offset(z, *self._k)
        if positions is not None:
            q, k = apply_rotary_position_embeddings(positions, q, k)
        dtype = keras.backend.result_type(q.dtype, "float32")
        a = ops.einsum("bmd,bnd->bmn", ops.cast(q, dtype), ops.cast(k, dtype))
        if self.attention_scale:
            a = a / math.sqrt(self.key_size)
        for extra in extras:
            if "bool" in str(extra.dtype):
                a = ops.where(_rank3(extra), a, -infinity())
            else:
                a = a + ops.cast(_rank3(extra), dtype)
        probs = attention_normalize(a, first_mask(mask), axis=-1, method=self.normalization)
        probs = ops.cast(probs, v.dtype)
        if self.dropout is not None:
            probs = self.dropout(probs, training=training)
        return linear(u * ops.einsum("bmn,bnd->bmd", probs, v), *self._o)

    def compute_mask(self, inputs, mask=None, positions=None):
        return first_mask(mask)

    def compute_output_shape(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            key_size=self.key_size,
            activation=self.activation,
            use_bias=self.use_bias,
            normalization=self.normalization,
            attention_scale=self.attention_scale,
            attention_dropout=self.attention_dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            position_mode=self.position_mode,
        )
        return config


def _rank3(extra):
    """A [batch, 1, q, k] mask or bias (as LMMask / UniLMMask give) as [batch, q, k]."""
    return extra[:, 0] if len(extra.shape) == 4 else extra
