"""Small structural layers used by the model builders (serialisable, unlike Lambda)."""

from keras import ops

from nlp4keras import validation
from nlp4keras.layers.base import Layer, serializable
from nlp4keras.tensor_checks import check_same_shape


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
        self.index = validation.integer(index, "index", "TakeToken")

    def call(self, inputs):
        self._check_index(tuple(inputs.shape))
        return inputs[:, self.index]

    def _check_index(self, shape):
        # JAX would clamp an index out of range silently.
        if len(shape) < 2:
            raise ValueError(f"TakeToken expects [batch, steps, ...], got shape {shape}")
        steps = shape[1]
        if steps is not None and not -steps <= self.index < steps:
            raise ValueError(f"TakeToken: `index` {self.index} is out of range for {steps} steps")

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
    """Element-wise sum of tensors of one shape (no broadcasting: token and
    segment ids of different shapes are an error, not a silent broadcast),
    whose mask is the AND of the inputs' masks (inputs without a mask do not
    drop it, unlike keras.layers.Add in Keras 3)."""

    def call(self, inputs):
        inputs = check_same_shape(inputs, f"{self.name}: the inputs must have one shape")
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
