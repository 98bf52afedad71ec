"""Mask-aware global pooling over the time axis.

bert4keras replaced keras' own pooling layers globally; these are separate
classes instead. Both pool over the valid (mask True) steps only; no mask
means every step is valid. A row with no valid step pools to zeros (not NaN,
not -inf). The output carries no mask.
"""

from keras import ops

from nlp4keras import validation
from nlp4keras.layers.base import Layer, serializable

_DATA_FORMATS = ("channels_last", "channels_first")


def _check_mask_shape(name, mask, inputs, steps_axis):
    """A mask [batch, steps] matching the input's batch and steps (a mismatch
    could broadcast silently)."""
    shape = tuple(mask.shape)
    wanted = (inputs.shape[0], inputs.shape[steps_axis])
    fits = len(shape) == 2 and all(a is None or b is None or a == b for a, b in zip(shape, wanted))
    if not fits:
        raise ValueError(f"{name}: the mask must have shape [batch, steps] = {wanted}, got {shape}")


class _GlobalPooling1D(Layer):
    """Shared arguments, shapes and config of the two pooling layers."""

    def __init__(self, data_format="channels_last", keepdims=False, **kwargs):
        super().__init__(**kwargs)
        who = type(self).__name__
        self.data_format = validation.one_of(data_format, "data_format", _DATA_FORMATS, who)
        self.keepdims = validation.boolean(keepdims, "keepdims", who)

    @property
    def steps_axis(self):
        return 1 if self.data_format == "channels_last" else 2

    def call(self, inputs, mask=None):
        if len(inputs.shape) != 3:
            raise ValueError(
                f"{self.name} expects a 3-D input [batch, steps, features], got shape "
                f"{tuple(inputs.shape)}"
            )
        if mask is None:
            return self.pool(inputs, None)
        _check_mask_shape(self.name, mask, inputs, self.steps_axis)
        # [batch, steps] -> broadcastable against the input.
        feature_axis = 3 - self.steps_axis
        valid = ops.expand_dims(ops.cast(mask, "bool"), feature_axis)
        return self.pool(inputs, valid)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        batch, features = input_shape[0], input_shape[3 - self.steps_axis]
        if not self.keepdims:
            return (batch, features)
        return (batch, 1, features) if self.steps_axis == 1 else (batch, features, 1)

    def get_config(self):
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config


@serializable
class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the valid steps: sum(x * mask) / max(count, 1)."""

    def pool(self, inputs, valid):
        axis = self.steps_axis
        if valid is None:
            return ops.mean(inputs, axis=axis, keepdims=self.keepdims)
        weights = ops.cast(valid, inputs.dtype)
        total = ops.sum(inputs * weights, axis=axis, keepdims=self.keepdims)
        count = ops.sum(weights, axis=axis, keepdims=self.keepdims)
        return total / ops.maximum(count, 1.0)


@serializable
class GlobalMaxPooling1D(_GlobalPooling1D):
    """Maximum over the valid steps (zeros for a row without any)."""

    def pool(self, inputs, valid):
        axis = self.steps_axis
        if valid is None:
            return ops.max(inputs, axis=axis, keepdims=self.keepdims)
        lowest = ops.full_like(inputs, float("-inf"))
        largest = ops.max(ops.where(valid, inputs, lowest), axis=axis, keepdims=self.keepdims)
        any_valid = ops.any(valid, axis=axis, keepdims=self.keepdims)
        return ops.where(any_valid, largest, ops.zeros_like(largest))
