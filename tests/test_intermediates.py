"""get_intermediates: attention probabilities and layer outputs of an existing
model, against transformers' BertModel(output_attentions=True) on the same
weights."""

import numpy as np
import pytest
import torch
from helpers import TINY_BERT, hf_inputs, padded_batch, run

from nlp4keras.layers import MultiHeadAttention
from nlp4keras.models import build_transformer_model
from nlp4keras.training import get_intermediates

LAYERS = [f"Transformer-{i}-MultiHeadSelfAttention" for i in range(TINY_BERT["num_hidden_layers"])]


@pytest.fixture(scope="module")
def batch():
    return padded_batch(TINY_BERT["vocab_size"], [16, 11, 4], 16, seed=2)


@pytest.fixture(scope="module")
def hf_outputs(tiny_pretraining, batch):
    from transformers import BertModel

    folder = tiny_pretraining[1]["safetensors"]
    # Only the eager implementation returns attention probabilities.
    model = BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        return model(**hf_inputs(*batch), output_attentions=True, output_hidden_states=True)


@pytest.fixture(scope="module")
def model(tiny_pretraining):
    folder = tiny_pretraining[1]["safetensors"]
    return build_transformer_model(folder / "config.json", folder)


def test_attention_probs_and_outputs_match_transformers(model, batch, hf_outputs):
    ids, segments = batch
    before = run(model, [ids, segments])
    names = LAYERS + ["Transformer-0-FeedForward-Norm"]
    found = get_intermediates(model, [ids, segments], names, attention_probs=True)

    assert sorted(found.attention_probs) == sorted(LAYERS)
    for index, name in enumerate(LAYERS):
        probs = found.attention_probs[name]
        expected = hf_outputs.attentions[index].numpy()
        assert probs.shape == expected.shape == (3, TINY_BERT["num_attention_heads"], 16, 16)
        assert np.abs(probs - expected).max() <= 1e-5
        valid = (ids != 0)[:, None, None, :]
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
        assert (probs[np.broadcast_to(~valid, probs.shape)] == 0).all()
    hidden = found.outputs["Transformer-0-FeedForward-Norm"]
    assert np.abs(hidden - hf_outputs.hidden_states[1].numpy())[ids != 0].max() <= 1e-5
    # The last attention layer's output, recomputed on the explicit path.
    assert found.outputs[LAYERS[-1]].shape == (3, 16, TINY_BERT["hidden_size"])

    # The model itself is untouched: same outputs, bit for bit, fast path back.
    np.testing.assert_array_equal(run(model, [ids, segments]), before)
    for layer in model.layers:
        if isinstance(layer, MultiHeadAttention):
            assert not layer.record_attention_probs
            assert layer.recorded_attention_probs is None


def test_recording_does_not_change_layer_outputs(model, batch):
    ids, segments = batch
    name = LAYERS[-1]
    plain = get_intermediates(model, [ids, segments], [name]).outputs[name]
    recorded = get_intermediates(model, [ids, segments], name, attention_probs=True)
    np.testing.assert_allclose(recorded.outputs[name], plain, atol=1e-6)
    assert recorded.attention_probs[name].dtype == np.float32


def test_layers_inside_recomputed_blocks_are_found(tiny_pretraining, model, batch):
    folder = tiny_pretraining[1]["safetensors"]
    recomputed = build_transformer_model(folder / "config.json", folder, recompute=True)
    expected = get_intermediates(model, list(batch), LAYERS, attention_probs=True)
    got = get_intermediates(recomputed, list(batch), LAYERS, attention_probs=True)
    for name in LAYERS:
        np.testing.assert_allclose(got.outputs[name], expected.outputs[name], atol=1e-6)
        np.testing.assert_allclose(
            got.attention_probs[name], expected.attention_probs[name], atol=1e-6
        )


def test_bad_names_are_reported(model, batch):
    with pytest.raises(ValueError, match="Did you mean 'Transformer-1-MultiHeadSelfAttention'"):
        get_intermediates(model, list(batch), ["Transformer-1-MultiHeadSelfAtention"])
    with pytest.raises(ValueError, match="Valid layer names: Input-Token, Input-Segment"):
        get_intermediates(model, list(batch), ["nope"])
    with pytest.raises(ValueError, match="those are: Transformer-0-MultiHeadSelfAttention"):
        get_intermediates(model, list(batch), ["Embedding-Norm"], attention_probs=True)
    with pytest.raises(ValueError, match="at least one"):
        get_intermediates(model, list(batch), [])
