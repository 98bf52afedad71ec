"""DGCNN block: dilated gated 1-D convolution with a gated residual
(Su Jianlin's reading-comprehension and information-extraction models,
kexue.fm/archives/5409 and 6671).

    h1, g = split(Conv1D(2 * dim, kernel_size, dilation_rate, 'same')(x))
    g = sigmoid(dropout(g))
    y = x * (1 - g) + h1 * g      (skip_connect=True)
    y = h1 * g                    (skip_connect=False)

Dropout (training only) acts on the gate logits before the sigmoid, as in the
blog's code, so a gate always stays inside (0, 1). When the input has a
different width than `dim`, the residual x is first projected to `dim` by a
learned matrix without bias. With a mask, padded steps are zeroed before the
convolution (so nothing leaks into valid steps through the dilated kernel)
and in the output; the mask passes through unchanged.
"""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.layers.base import Layer, serializable


@serializable
class DGCNN(Layer):
    """Dilated gated convolution block over [batch, steps, features].

    dim: output width (None: the input width). kernel_size, dilation_rate:
    of the convolution. dropout_rate: on the gate logits while training.
    skip_connect: gate between x and the convolution (True) or output the
    gated convolution alone (False).
    """

    def __init__(
        self,
        dim=None,
        kernel_size=3,
        dilation_rate=1,
        dropout_rate=0.0,
        skip_connect=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dim = validation.optional_integer(dim, "dim", "DGCNN", minimum=1)
        self.kernel_size = validation.integer(kernel_size, "kernel_size", "DGCNN", minimum=1)
        self.dilation_rate = validation.integer(dilation_rate, "dilation_rate", "DGCNN", minimum=1)
        self.dropout_rate = validation.probability(dropout_rate, "dropout_rate", "DGCNN")
        self.skip_connect = validation.boolean(skip_connect, "skip_connect", "DGCNN")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.gate_dropout = keras.layers.Dropout(self.dropout_rate, name="gate_dropout")

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"{self.name} expects [batch, steps, features] with a known feature size, "
                f"got shape {tuple(input_shape)}"
            )
        in_dim = int(input_shape[-1])
        self.units = self.dim or in_dim
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, in_dim, 2 * self.units),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(2 * self.units,), initializer=self.bias_initializer
        )
        self.residual_kernel = None
        if self.skip_connect and in_dim != self.units:
            self.residual_kernel = self.add_weight(
                name="residual_kernel",
                shape=(in_dim, self.units),
                initializer=self.kernel_initializer,
            )

    def call(self, inputs, mask=None, training=None):
        x = inputs
        if mask is not None:
            valid = ops.expand_dims(ops.cast(mask, x.dtype), -1)
            x = x * valid
        h = ops.conv(
            x,
            ops.cast(self.kernel, x.dtype),
            strides=1,
            padding="same",
            dilation_rate=self.dilation_rate,
        )
        h = h + ops.cast(self.bias, x.dtype)
        h1, gate = h[..., : self.units], h[..., self.units :]
        gate = ops.sigmoid(self.gate_dropout(gate, training=training))
        if self.skip_connect:
            shortcut = x
            if self.residual_kernel is not None:
                shortcut = ops.matmul(x, ops.cast(self.residual_kernel, x.dtype))
            y = shortcut * (1.0 - gate) + h1 * gate
        else:
            y = h1 * gate
        if mask is not None:
            y = y * valid
        return y

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.dim or input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            dim=self.dim,
            kernel_size=self.kernel_size,
            dilation_rate=self.dilation_rate,
            dropout_rate=self.dropout_rate,
            skip_connect=self.skip_connect,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
