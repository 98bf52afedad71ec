"""Small structural layers used by the model builders (serialisable, unlike Lambda)."""

from keras import ops

from nlp4keras.layers.base import Layer, serializable


@serializable
class BiasAdd(Layer):
    """Adds a learned bias over the last axis (BERT's MLM-Bias)."""

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs):
        return inputs + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@serializable
class TakeToken(Layer):
    """x[:, index]: one position of a sequence (BERT's Pooler takes [CLS])."""

    def __init__(self, index=0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, inputs):
        return inputs[:, self.index]

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])

    def get_config(self):
        config = super().get_config()
        config.update(index=self.index)
        return config


@serializable
class Add(Layer):
    """Element-wise sum whose mask is the AND of the inputs' masks (inputs
    without a mask do not drop it, unlike keras.layers.Add in Keras 3)."""

    def call(self, inputs):
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total

    def compute_mask(self, inputs, mask=None):
        masks = [m for m in (mask or []) if m is not None]
        if not masks:
            return None
        merged = masks[0]
        for m in masks[1:]:
            merged = ops.logical_and(merged, m)
        return merged

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
