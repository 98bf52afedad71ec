"""Every BERT head against transformers.BertForPreTraining, from
safetensors, sharded safetensors and pytorch_model.bin."""

import numpy as np
import pytest
import torch
from helpers import TINY_BERT, hf_inputs, padded_batch, run

from nlp4keras.models import build_transformer_model

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def batch():
    return padded_batch(TINY_BERT["vocab_size"], [16, 11, 4], 16, seed=1)


@pytest.fixture(scope="module")
def expected(tiny_pretraining, batch):
    model, _ = tiny_pretraining
    ids, segments = batch
    with torch.no_grad():
        kwargs = hf_inputs(ids, segments)
        out = model(**kwargs)
        pooled = model.bert(**kwargs).pooler_output
    return {
        "mlm_logits": out.prediction_logits.numpy(),
        "nsp_probs": torch.softmax(out.seq_relationship_logits, -1).numpy(),
        "pooled": pooled.numpy(),
    }


@pytest.mark.parametrize("source", ["safetensors", "sharded", "bin"])
def test_pool_nsp_mlm_match_transformers(tiny_pretraining, batch, expected, source):
    _, folders = tiny_pretraining
    folder = folders[source]
    ids, segments = batch
    valid = ids != 0

    model = build_transformer_model(
        folder / "config.json", folder, with_nsp=True, with_mlm="linear"
    )
    nsp, mlm = run(model, [ids, segments])
    assert np.abs(nsp - expected["nsp_probs"]).max() <= TOLERANCE
    assert np.abs(mlm - expected["mlm_logits"])[valid].max() <= TOLERANCE

    pooled_model = build_transformer_model(folder / "config.json", folder, with_pool=True)
    assert np.abs(run(pooled_model, [ids, segments]) - expected["pooled"]).max() <= TOLERANCE


def test_mlm_softmax_head(tiny_pretraining, batch, expected):
    _, folders = tiny_pretraining
    ids, segments = batch
    model = build_transformer_model(
        folders["safetensors"] / "config.json", folders["safetensors"], with_mlm=True
    )
    probs = run(model, [ids, segments])
    logits = expected["mlm_logits"]
    reference = np.exp(logits - logits.max(-1, keepdims=True))
    reference /= reference.sum(-1, keepdims=True)
    assert np.abs(probs - reference)[ids != 0].max() <= 1e-6
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_bin_and_state_dict_load_the_same(tiny_pretraining, batch):
    """A torch state_dict passed as a dict loads like the file it came from."""
    torch_model, folders = tiny_pretraining
    ids, segments = batch
    from_file = build_transformer_model(
        folders["bin"] / "config.json", folders["bin"], with_mlm="linear"
    )
    from_dict = build_transformer_model(
        folders["bin"] / "config.json", torch_model.state_dict(), with_mlm="linear"
    )
    np.testing.assert_array_equal(run(from_file, [ids, segments]), run(from_dict, [ids, segments]))


@pytest.mark.parametrize("hidden_act", ["gelu_new", "relu", "silu"])
def test_hidden_act_from_the_config(tmp_path, hidden_act):
    """The config's activation is honoured (tanh GELU is not exact GELU)."""
    from helpers import randomize_
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(**{**TINY_BERT, "hidden_act": hidden_act, "layer_norm_eps": 1e-5})
    hf_model = randomize_(BertForMaskedLM(config).eval(), seed=5)
    hf_model.save_pretrained(tmp_path)
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [9, 5], 9, seed=2)
    with torch.no_grad():
        expected = hf_model(**hf_inputs(ids, segments)).logits.numpy()
    model = build_transformer_model(tmp_path / "config.json", tmp_path, with_mlm="linear")
    assert np.abs(run(model, [ids, segments]) - expected)[ids != 0].max() <= TOLERANCE
