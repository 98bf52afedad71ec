"""Position-wise feed-forward block: one layer for every model family."""

import keras

from nlp4keras import validation
from nlp4keras.backend import get_activation, resolve_activation
from nlp4keras.layers.base import Layer, linear, serializable


@serializable
class FeedForward(Layer):
    """Dense(units, activation) then Dense(input_dim).

    A list of activations gives a gated unit (GLU): the product of one input
    projection per activation (T5.1.1's gated GELU uses ['gelu', 'linear']).
    Say 'linear' for no activation (None is refused: it would silently build a
    linear block).
    Weights in Google checkpoint order: i0 kernel/bias, [i1 ...], o kernel/bias.
    """

    def __init__(
        self, units, activation="relu", use_bias=True, kernel_initializer="glorot_uniform", **kwargs
    ):
        super().__init__(**kwargs)
        who = "FeedForward"
        self.units = validation.integer(units, "units", who, minimum=1)
        activations = activation if isinstance(activation, (list, tuple)) else [activation]
        if not activations:
            raise validation.InvalidValue(
                f"{who}: `activation` must be an activation or a non-empty list of them, "
                "got an empty list",
                "activation",
            )
        for index, name in enumerate(activations):  # unknown names fail here, not when called
            argument = "activation" if activations is not activation else f"activation[{index}]"
            validation.activation(name, argument, who)
        self.activation = [resolve_activation(a) for a in activations]
        self.use_bias = validation.boolean(use_bias, "use_bias", who)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(
                f"FeedForward needs a known feature size, got input shape {tuple(input_shape)}"
            )
        shapes = [(f"i{n}", dim, self.units) for n in range(len(self.activation))]
        shapes.append(("o", self.units, dim))
        self._projections = []
        for prefix, in_dim, out_dim in shapes:
            kernel = self.add_weight(
                name=prefix + "_kernel",
                shape=(in_dim, out_dim),
                initializer=self.kernel_initializer,
            )
            bias = (
                self.add_weight(name=prefix + "_bias", shape=(out_dim,), initializer="zeros")
                if self.use_bias
                else None
            )
            self._projections.append((kernel, bias))

    def _dense(self, x, index):
        return linear(x, *self._projections[index])

    def call(self, inputs):
        x = None
        for index, name in enumerate(self.activation):
            h = get_activation(name)(self._dense(inputs, index))
            x = h if x is None else x * h
        return self._dense(x, len(self.activation))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        activation = self.activation if len(self.activation) > 1 else self.activation[0]
        config.update(
            units=self.units,
            activation=activation,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
