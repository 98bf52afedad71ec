"""The decoder-only families (gpt, gpt2, gpt2_ml, llama): logits equal to the
reference, checkpoint round trips (Google TF and HF, the HF folder loaded by
transformers), `.keras` save/load, causality, recompute, and the config
options that are refused rather than ignored."""

import json
import tempfile

import keras
import numpy as np
import pytest

from families.case import assert_same_weights
from families.decoder_cases import _hf_model, all_decoder_cases, hf_logits
from nlp4keras.models import build_transformer_model

_FOLDER = tempfile.TemporaryDirectory(prefix="nlp4keras-decoders-")
CASES = {case.name: case for case in all_decoder_cases(_FOLDER.name)}
HF_EXPORTABLE = sorted(name for name, case in CASES.items() if case.hf_model_type)


def logits(model, ids):
    return np.asarray(model.predict_on_batch(ids))


@pytest.mark.parametrize("name", sorted(CASES))
def test_logits_equal_the_reference(name):
    case = CASES[name]
    transformer = case.build()
    got = logits(transformer.model, case.inputs[0])
    assert got.shape == case.expected[0].shape
    assert float(np.max(np.abs(got - case.expected[0]))) <= case.atol, name
    report = transformer.load_report
    assert not report.missing and not report.unexpected


@pytest.mark.parametrize("name", sorted(CASES))
def test_google_checkpoint_round_trip_is_bit_exact(name, tmp_path):
    case = CASES[name]
    first = case.build()
    prefix = str(tmp_path / "model.ckpt")
    first.save_weights_as_checkpoint(prefix)
    assert_same_weights(first, case.build(checkpoint_path=prefix))


@pytest.mark.parametrize("name", HF_EXPORTABLE)
def test_hf_export_loads_in_transformers_and_back(name, tmp_path):
    case = CASES[name]
    first = case.build()
    first.save_weights_as_hf(tmp_path)
    reference = type(_hf_model(name)).from_pretrained(tmp_path, attn_implementation="eager")
    exported = hf_logits(reference.eval(), case.inputs[0])
    assert float(np.max(np.abs(exported - case.expected[0]))) <= case.atol
    assert_same_weights(first, case.build(checkpoint_path=tmp_path, config_path=tmp_path))


@pytest.mark.parametrize("name", ["llama", "gpt2", "gpt2_ml"])
def test_keras_save_and_load(name, tmp_path):
    case = CASES[name]
    model = case.build().model
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    ids = case.inputs[0]
    assert float(np.max(np.abs(logits(loaded, ids) - logits(model, ids)))) <= 1e-6


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_token_changes_nothing_before_it(name):
    case = CASES[name]
    model = case.build().model
    ids = case.inputs[0][:1].copy()
    at = ids.shape[1] // 2
    before = logits(model, ids)
    ids[0, at] = (ids[0, at] + 1) % 61
    after = logits(model, ids)
    np.testing.assert_array_equal(after[0, :at], before[0, :at])
    assert np.max(np.abs(after[0, at:] - before[0, at:])) > 1e-3


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_probabilities_by_default_and_recompute_gives_the_same_output(name):
    case = CASES[name]
    probabilities = build_transformer_model(
        case.config_path, case.checkpoint_path, model=case.model, recompute=True
    )
    got = logits(probabilities, case.inputs[0])
    expected = np.exp(case.expected[0] - case.expected[0].max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    assert float(np.max(np.abs(got - expected))) <= 1e-5


def _write_config(tmp_path, **changes):
    config = json.load(open(CASES["llama"].config_path + "/config.json"))
    config.update(changes)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return str(tmp_path / "config.json")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope_scaling"),
        ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4}}, "rope_type='yarn'"),
        ({"attention_bias": True}, "attention_bias"),
        ({"num_key_value_heads": 4}, "num_key_value_heads"),
    ],
)
def test_unsupported_llama_configs_are_refused(tmp_path, changes, message):
    with pytest.raises((NotImplementedError, ValueError), match=message):
        build_transformer_model(_write_config(tmp_path, **changes), model="llama")


def test_decoders_refuse_unilm_and_gpt2_ml_has_no_hf_export(tmp_path):
    with pytest.raises(ValueError, match="causal language model"):
        build_transformer_model(CASES["gpt2"].config_path, model="gpt2", application="unilm")
    with pytest.raises(NotImplementedError, match="HF transformers has no model"):
        CASES["gpt2_ml"].build().save_weights_as_hf(tmp_path)


def test_application_lm_on_a_decoder_is_the_family_itself():
    case = CASES["llama"]
    lm = case.build(application="lm")
    np.testing.assert_allclose(logits(lm.model, case.inputs[0]), case.expected[0], atol=1e-5)
