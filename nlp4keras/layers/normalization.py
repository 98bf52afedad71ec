"""Layer normalisation, plain or conditional (bert4keras' Conditional LayerNorm)."""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import get_activation, resolve_activation
from nlp4keras.layers.base import Layer, first_mask, serializable


@serializable
class LayerNormalization(Layer):
    """LayerNorm over the last axis, with bert4keras' options.

    zero_mean / unit_variance: subtract the mean / divide by the RMS
        (zero_mean=False gives RMSNorm).
    offset / scale: learn beta / gamma (weights created in that order, beta
        first, matching Google checkpoints' LayerNorm/beta, LayerNorm/gamma).
    conditional: inputs are [x, cond]; beta and gamma are shifted by zero-
        initialised projections of `cond` (Conditional LayerNorm, kexue.fm 7124).
        With `hidden_units`, cond is first projected to that size with
        `hidden_activation` (None means linear there); both are ignored when
        conditional is False.
    epsilon: added to the variance, a finite number >= 0.
    Statistics are computed in float32 whatever the compute dtype, and under a
    mixed policy gamma and beta are applied in float32 too (not autocast).
    """

    def __init__(
        self,
        zero_mean=True,
        unit_variance=True,
        offset=True,
        scale=True,
        conditional=False,
        hidden_units=None,
        hidden_activation="linear",
        hidden_initializer="glorot_uniform",
        epsilon=1e-12,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = "LayerNormalization"
        self.zero_mean = validation.boolean(zero_mean, "zero_mean", who)
        self.unit_variance = validation.boolean(unit_variance, "unit_variance", who)
        self.offset = validation.boolean(offset, "offset", who)
        self.scale = validation.boolean(scale, "scale", who)
        self.conditional = validation.boolean(conditional, "conditional", who)
        self.hidden_units = validation.optional_integer(
            hidden_units, "hidden_units", who, minimum=1
        )
        if hidden_activation is not None:  # fail early on an unknown name
            validation.activation(hidden_activation, "hidden_activation", who)
        self.hidden_activation = resolve_activation(hidden_activation)
        self.hidden_initializer = keras.initializers.get(hidden_initializer)
        self.epsilon = validation.real(epsilon, "epsilon", who, minimum=0)

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        x_shape = input_shape[0] if self.conditional else input_shape
        dim = x_shape[-1]
        if self.offset:
            self.beta = self.add_weight(
                name="beta", shape=(dim,), initializer="zeros", autocast=False
            )
        if self.scale:
            self.gamma = self.add_weight(
                name="gamma", shape=(dim,), initializer="ones", autocast=False
            )
        if not self.conditional:
            return
        cond_dim = input_shape[1][-1]
        if self.hidden_units:
            self.hidden_kernel = self.add_weight(
                name="hidden_kernel",
                shape=(cond_dim, self.hidden_units),
                initializer=self.hidden_initializer,
            )
            cond_dim = self.hidden_units
        if self.offset:
            self.beta_kernel = self.add_weight(
                name="beta_kernel", shape=(cond_dim, dim), initializer="zeros"
            )
        if self.scale:
            self.gamma_kernel = self.add_weight(
                name="gamma_kernel", shape=(cond_dim, dim), initializer="zeros"
            )

    def _check_input_shape(self, input_shape):
        nested = (
            isinstance(input_shape, (list, tuple))
            and len(input_shape) > 0
            and all(isinstance(shape, (list, tuple)) for shape in input_shape)
        )
        if self.conditional and not (nested and len(input_shape) == 2):
            raise ValueError(
                "LayerNormalization(conditional=True) expects inputs [x, cond], got input "
                f"shape {input_shape}"
            )
        if not self.conditional and nested:
            raise ValueError(
                "LayerNormalization got a list of inputs; pass conditional=True for "
                f"[x, cond], got input shapes {input_shape}"
            )
        shapes = input_shape if self.conditional else [input_shape]
        for shape in shapes:
            if not shape or shape[-1] is None:
                raise ValueError(
                    f"LayerNormalization needs known feature sizes, got input shape {input_shape}"
                )

    def call(self, inputs):
        if not self.conditional:
            return self._normalize(
                inputs, getattr(self, "gamma", None), getattr(self, "beta", None)
            )
        x, cond = inputs
        if self.hidden_units:
            cond = get_activation(self.hidden_activation)(ops.matmul(cond, self.hidden_kernel))
        while len(cond.shape) < len(x.shape):
            cond = ops.expand_dims(cond, 1)
        beta = self.beta + ops.matmul(cond, self.beta_kernel) if self.offset else None
        gamma = self.gamma + ops.matmul(cond, self.gamma_kernel) if self.scale else None
        return self._normalize(x, gamma, beta)

    def _normalize(self, x, gamma, beta):
        fused = self.zero_mean and self.unit_variance and (gamma is None or len(gamma.shape) == 1)
        if fused:
            return ops.layer_normalization(x, gamma, beta, epsilon=self.epsilon)
        dtype = x.dtype
        compute_dtype = keras.backend.result_type(dtype, "float32")  # float64 stays
        x = ops.cast(x, compute_dtype)
        if self.zero_mean:
            x = x - ops.mean(x, axis=-1, keepdims=True)
        if self.unit_variance:
            x = x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)
        if gamma is not None:
            x = x * ops.cast(gamma, compute_dtype)
        if beta is not None:
            x = x + ops.cast(beta, compute_dtype)
        return ops.cast(x, dtype)

    def compute_mask(self, inputs, mask=None):
        return first_mask(mask)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0] if self.conditional else input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            zero_mean=self.zero_mean,
            unit_variance=self.unit_variance,
            offset=self.offset,
            scale=self.scale,
            conditional=self.conditional,
            hidden_units=self.hidden_units,
            hidden_activation=self.hidden_activation,
            hidden_initializer=keras.initializers.serialize(self.hidden_initializer),
            epsilon=self.epsilon,
        )
        return config
