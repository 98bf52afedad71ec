"""One model-family test case: a tiny checkpoint on disk, the inputs and the
reference outputs an independent implementation (HF transformers or a numpy
forward written from the papers) gives for them."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FamilyCase:
    #: test id, e.g. "albert-mlm"
    name: str
    #: `model=` for build_transformer_model
    model: str
    #: config file (bert_config.json / config.json) or folder
    config_path: str
    #: HF folder, TF checkpoint prefix, ... (checkpoint_path=)
    checkpoint_path: str
    #: model inputs in the model's input order (token ids, segment ids)
    inputs: list
    #: reference outputs, in the Keras model's output order
    expected: list
    #: further build_transformer_model kwargs (with_mlm='linear', with_pool=True, ...)
    build_kwargs: dict = field(default_factory=dict)
    #: HF model_type when transformers has the family (HF export is checked then)
    hf_model_type: str = None
    #: max |ours - reference| allowed in float32
    atol: float = 1e-5

    def build(self, checkpoint_path=None, config_path=None, **kwargs):
        """The case's model (a Transformer), its build_kwargs updated by kwargs;
        from another checkpoint (and config) when given, e.g. an exported one."""
        from nlp4keras.models import build_transformer_model

        return build_transformer_model(
            config_path or self.config_path,
            checkpoint_path or self.checkpoint_path,
            model=self.model,
            return_keras_model=False,
            **{**self.build_kwargs, **kwargs},
        )


def assert_same_weights(first, second):
    """Two Transformers hold bit-identical weights, in the same order."""
    import keras

    for a, b in zip(first.model.weights, second.model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def perturbed(rng, shape, scale=0.2, around=0.0):
    """Random float32 weights (biases around 0, norms around 1 via `around`)."""
    return (around + scale * rng.standard_normal(shape)).astype(np.float32)
