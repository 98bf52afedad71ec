"""Building with a checkpoint skips the random draws the checkpoint
overwrites; what it does not fill is still drawn."""

import keras
import numpy as np
from helpers import TINY_BERT

from nlp4keras.initializers import TruncatedNormal
from nlp4keras.models import build_transformer_model


def _values(transformer, name):
    return [keras.ops.convert_to_numpy(w) for w in transformer.model.get_layer(name).weights]


def test_weights_come_from_the_checkpoint_and_nothing_is_nan(tiny_pretraining):
    folder = tiny_pretraining[1]["safetensors"]
    transformer = build_transformer_model(folder, folder, with_mlm=True, return_keras_model=False)
    for weight in transformer.model.weights:
        assert not np.isnan(keras.ops.convert_to_numpy(weight)).any(), weight.path
    layer = transformer.model.get_layer("Transformer-0-FeedForward")
    # the layer's initializer draws again afterwards (a rebuilt or cloned layer is not NaN)
    assert np.isfinite(keras.ops.convert_to_numpy(layer.kernel_initializer((3, 4)))).all()


def test_weights_the_checkpoint_lacks_are_drawn(tiny_pretraining):
    """A head that is not in the file (non-strict load): drawn like a fresh model's."""
    model, folders = tiny_pretraining
    state = {k: v.numpy() for k, v in model.state_dict().items() if "seq_relationship" not in k}
    transformer = build_transformer_model(
        folders["safetensors"],
        state,
        with_nsp=True,
        ignore_invalid_weights=True,
        return_keras_model=False,
    )
    kernel, bias = _values(transformer, "NSP-Proba")
    assert np.isfinite(kernel).all() and np.all(bias == 0)
    assert 0.5 * 0.02 < kernel.std() < 1.5 * 0.02  # TruncatedNormal(initializer_range)
    assert np.abs(kernel).max() <= 2 * 0.02 + 1e-7


def test_build_without_checkpoint_draws_as_before():
    transformer = build_transformer_model(**TINY_BERT, return_keras_model=False)
    (kernel,) = _values(transformer, "Embedding-Token")
    assert np.isfinite(kernel).all() and kernel.std() > 0.01
    assert not transformer.defer_initialization


def test_deferred_initializer_serializes_as_the_plain_one():
    deferred = TruncatedNormal(0.02, seed=1)
    deferred.deferred = True
    assert deferred.get_config() == TruncatedNormal(0.02, seed=1).get_config()
