"""Shared plumbing for nlp4keras layers."""

import keras

# Every layer registers under this package name so `keras.saving.load_model`
# finds it once nlp4keras is imported.
serializable = keras.saving.register_keras_serializable(package="nlp4keras")


class Layer(keras.layers.Layer):
    """A Keras layer that passes masks through unless it says otherwise."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True


def first_mask(mask):
    """The mask of the first input when a layer takes a list of inputs."""
    if isinstance(mask, (list, tuple)):
        return mask[0] if mask else None
    return mask
