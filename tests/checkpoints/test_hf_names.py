"""HF <-> Google name translation for the BERT family."""

import pytest
from helpers import TINY_BERT

from nlp4keras.models import build_transformer_model
from nlp4keras.models.bert import HF_BERT_NAMING


def google_names():
    transformer = build_transformer_model(
        **TINY_BERT, with_nsp=True, with_mlm=True, return_keras_model=False
    )
    return [
        name
        for names in transformer.variable_mapping().values()
        for name in names
        if "embedding_hidden_mapping_in" not in name
    ]


def test_every_google_name_round_trips_through_hf():
    for name in google_names():
        hf = HF_BERT_NAMING.hf_name(name, "bert.")
        assert hf is not None, name
        assert HF_BERT_NAMING.translate(hf) == name


def test_transformers_state_dict_maps_onto_the_model(tiny_pretraining):
    model, _ = tiny_pretraining
    translated = {}
    for key in model.state_dict():
        if HF_BERT_NAMING.is_ignored(key):
            continue
        translated.setdefault(HF_BERT_NAMING.translate(key), key)
    assert None not in translated
    assert set(translated) == set(google_names())


@pytest.mark.parametrize(
    "hf, google",
    [
        ("embeddings.LayerNorm.gamma", "bert/embeddings/LayerNorm/gamma"),  # old checkpoints
        (
            "roberta.encoder.layer.3.output.LayerNorm.beta",
            "bert/encoder/layer_3/output/LayerNorm/beta",
        ),
        ("lm_head.layer_norm.weight", "cls/predictions/transform/LayerNorm/gamma"),
        ("cls.predictions.decoder.bias", "cls/predictions/output_bias"),
    ],
)
def test_aliases(hf, google):
    assert HF_BERT_NAMING.translate(hf) == google


def test_unknown_names_do_not_translate():
    assert HF_BERT_NAMING.translate("encoder.layer.0.attention.self.rotary.weight") is None
    assert HF_BERT_NAMING.translate("classifier.weight") is None
    assert HF_BERT_NAMING.is_ignored("bert.embeddings.position_ids")
