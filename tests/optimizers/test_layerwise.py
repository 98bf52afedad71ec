"""Layer-wise lr multipliers on a real tiny BERT with a tagging head and a CRF:
the map has the expected keys and values, and one SGD step through
`extend_with_parameter_wise_lr` moves every variable by -lr * multiplier * g
(rtol 1e-5, atol 1e-7); block-number collisions (1 vs 11) and ambiguous keys."""

import types

import keras
import numpy as np
import pytest
from helpers import TINY_BERT

from nlp4keras.layers import ConditionalRandomField
from nlp4keras.models import build_transformer_model
from nlp4keras.optimizers import extend_with_parameter_wise_lr, layerwise_lr_multipliers


def _expected_multiplier(path):
    """The rule written out for TINY_BERT's two blocks, decay 0.9, heads 5, CRF 100."""
    if path == "CRF/trans":
        return 100.0
    for prefix, value in (("Transformer-1-", 1.0), ("Transformer-0-", 0.9), ("Embedding-", 0.81)):
        if path.startswith(prefix):
            return value
    return 5.0


def test_multipliers_of_a_bert_tagger_with_crf():
    bert = build_transformer_model(**TINY_BERT, return_keras_model=False)
    scores = keras.layers.Dense(5, name="Tagger")(bert.model.output)
    model = keras.Model(bert.model.inputs, ConditionalRandomField(name="CRF")(scores))
    schedule = layerwise_lr_multipliers(model, 0.9, head_multiplier=5.0, extra={"/trans": 100.0})
    block0 = {
        f"Transformer-0-{part}/": 0.9
        for part in ("MultiHeadSelfAttention", "MultiHeadSelfAttention-Norm")
        + ("FeedForward", "FeedForward-Norm")
    }
    embeddings = {f"Embedding-{part}/": 0.81 for part in ("Token", "Segment", "Position", "Norm")}
    assert schedule == {**embeddings, **block0, "Tagger/": 5.0, "CRF/": 100.0}
    np.testing.assert_allclose(schedule["Embedding-Token/"], 0.9**2)

    # The Transformer object gives the same map for the encoder's own layers.
    assert layerwise_lr_multipliers(bert, 0.9) == {**embeddings, **block0}

    optimizer = extend_with_parameter_wise_lr(keras.optimizers.SGD)(
        0.1, paramwise_lr_schedule=schedule
    )
    variables = model.trainable_variables
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    assert len(variables) == 2 + 2 * 16 + 5 + 1  # tagger, 2 blocks, embeddings, CRF
    for variable, old, g in zip(variables, before, grads):
        multiplier = _expected_multiplier(variable.path)
        assert optimizer.parameter_lr_multiplier(variable) == pytest.approx(multiplier)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(variable) - old,
            -0.1 * multiplier * g,
            rtol=1e-5,
            atol=1e-7,
            err_msg=variable.path,
        )


def _fake_model(paths):
    variables = [types.SimpleNamespace(path=p, name=p.rsplit("/", 1)[-1]) for p in paths]
    return types.SimpleNamespace(trainable_variables=variables)


def test_block_numbers_do_not_collide():
    paths = [f"Transformer-{i}-FeedForward/kernel" for i in range(12)] + ["Embedding-Token/e"]
    schedule = layerwise_lr_multipliers(_fake_model(paths), decay=0.5)
    for i in range(12):
        key = f"Transformer-{i}-FeedForward/"
        assert schedule.get(key, 1.0) == 0.5 ** (11 - i)
    assert schedule["Embedding-Token/"] == 0.5**12


def test_ambiguous_keys_and_missing_blocks_raise():
    paths = ["Transformer-0-FeedForward/kernel", "Tagger/kernel", "MyTagger/kernel"]
    with pytest.raises(ValueError, match="MyTagger/kernel"):
        layerwise_lr_multipliers(_fake_model(paths), head_multiplier=5.0, extra={"MyTagger": 2.0})
    with pytest.raises(ValueError, match="no trainable 'Transformer-<i>-' layers"):
        layerwise_lr_multipliers(_fake_model(["Tagger/kernel"]))
    with pytest.raises(TypeError, match="keras.Model or an nlp4keras Transformer"):
        layerwise_lr_multipliers(object())
    with pytest.raises(ValueError, match="decay"):
        layerwise_lr_multipliers(_fake_model(paths), decay=0)
