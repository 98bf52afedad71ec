"""The T5 family (t5 = t5.1.0, t5.1.1, mt5.1.1) against HF transformers
(t5_cases.py, float64 references, max |diff| <= 1e-5 in float32): encoder
states of a padded batch with its mask, logits at every decoder position
(the decoder starting with id 0, the pad id), the decoder alone, keep_tokens;
HF and mesh-TF (Google) round trips bit-exact; greedy decoding equal to HF
`generate`; the refused options."""

import tempfile

import numpy as np
import pytest

from families.case import assert_same_weights
from families.t5_cases import T5_CASES, hf_model, hf_outputs, t5_cases, transformers_class
from nlp4keras.checkpoints.sources import open_checkpoint
from nlp4keras.layers.positions import RelativePositionEmbeddingT5
from nlp4keras.models import build_transformer_model
from nlp4keras.snippets import AutoRegressiveDecoder

_FOLDER = tempfile.TemporaryDirectory(prefix="nlp4keras-t5-")
CASES = t5_cases(_FOLDER.name)
NAMES = sorted(CASES)


def max_diff(got, expected):
    got = np.asarray(got)
    assert got.shape == expected.shape
    return float(np.max(np.abs(got - expected)))


@pytest.mark.parametrize("name", NAMES)
def test_encoder_states_equal_hf_with_padding(name):
    case = CASES[name]
    t5 = case.build()
    assert not t5.load_report.missing and not t5.load_report.unexpected
    got = t5.encoder.predict_on_batch(case.encoder_ids)
    assert max_diff(got, case.encoder_outputs) <= case.atol


@pytest.mark.parametrize("name", NAMES)
def test_logits_equal_hf_at_every_position(name):
    case = CASES[name]
    model = case.build().model
    got = model.predict_on_batch([case.encoder_ids, case.decoder_ids])
    assert max_diff(got, case.logits) <= case.atol


@pytest.mark.parametrize("name", NAMES)
def test_decoder_alone_on_the_encoder_output(name):
    """`.decoder` takes the context as an input (no padding: it has no mask)."""
    case = CASES[name]
    t5 = case.build()
    context = t5.encoder.predict_on_batch(case.encoder_ids[:1])
    got = t5.decoder.predict_on_batch([context, case.decoder_ids[:1]])
    assert max_diff(got, case.logits[:1]) <= case.atol


@pytest.mark.parametrize("source", ["hf", "google"])
@pytest.mark.parametrize("name", ["t5", "mt5.1.1"])
def test_keep_tokens_selects_embedding_rows_and_head_columns(name, source, tmp_path):
    case = CASES[name]
    keep = [0, 1] + list(range(60, 20, -3))
    checkpoint = None
    if source == "google":
        checkpoint = str(tmp_path / "model.ckpt")
        case.build().save_weights_as_checkpoint(checkpoint)
    t5 = case.build(checkpoint_path=checkpoint, keep_tokens=keep)
    new_ids = {old: new for new, old in enumerate(keep)}
    rows = [0]  # unpadded row, ids mapped into the kept vocab
    encoder = case.encoder_ids[rows] % len(keep)
    decoder = case.decoder_ids[rows] % len(keep)
    old = np.asarray(keep)
    _, logits = hf_outputs(hf_model(name), old[encoder], old[decoder])
    got = t5.model.predict_on_batch([encoder, decoder])
    assert max_diff(got, logits[..., old]) <= case.atol
    assert len(new_ids) == t5.vocab_size


@pytest.mark.parametrize("name", NAMES)
def test_hf_export_loads_in_transformers_and_back(name, tmp_path):
    case = CASES[name]
    first = case.build()
    first.save_weights_as_hf(tmp_path)
    model_class = transformers_class(T5_CASES[name][2])
    reference, info = model_class.from_pretrained(
        tmp_path, attn_implementation="eager", output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]

    _, logits = hf_outputs(reference.eval(), case.encoder_ids, case.decoder_ids)
    assert max_diff(logits, case.logits) <= case.atol
    again = build_transformer_model(
        tmp_path, tmp_path, model=case.model, return_keras_model=False, with_lm="linear",
        cross_position_bias=False,
    )  # fmt: skip
    assert_same_weights(first, again)


@pytest.mark.parametrize("name", NAMES)
def test_google_checkpoint_round_trip_with_mesh_tf_names(name, tmp_path):
    case = CASES[name]
    first = case.build()
    prefix = str(tmp_path / "model.ckpt")
    first.save_weights_as_checkpoint(prefix)
    with open_checkpoint(prefix) as reader:
        names = set(reader.keys())
        bias = reader.shape("encoder/block_000/layer_000/SelfAttention/relative_attention_bias")
        query = reader.shape("decoder/block_001/layer_001/EncDecAttention/q")
    assert bias == (3, T5_CASES[name][3].get("relative_attention_num_buckets", 32))
    assert query == (36, 21)
    norm = "rms_norm" if name == "mt5.1.1" else "layer_norm"
    assert f"encoder/block_000/layer_000/{norm}/scale" in names
    assert ("decoder/logits/kernel" in names) == (name != "t5")
    ffn = "wi" if name == "t5" else "wi_1"
    assert f"decoder/block_001/layer_002/DenseReluDense/{ffn}/kernel" in names
    assert_same_weights(first, case.build(checkpoint_path=prefix))


def test_encoder_and_decoder_models_share_layers():
    t5 = CASES["t5.1.1"].build()
    embedding = t5.encoder.get_layer("Embedding-Token")
    assert t5.decoder.get_layer("Embedding-Token") is embedding
    assert t5.model.get_layer("Embedding-Token") is embedding
    alone = build_transformer_model(
        CASES["t5.1.1"].folder, CASES["t5.1.1"].folder, model="t5.1.1_encoder"
    )
    got = alone.predict_on_batch(CASES["t5.1.1"].encoder_ids)
    assert max_diff(got, CASES["t5.1.1"].encoder_outputs) <= 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_greedy_decoding_equals_hf_generate(name):
    import torch

    case = CASES[name]
    t5 = case.build(with_lm=True)  # probabilities, as bert4keras scripts use
    encoder, decoder = t5.encoder, t5.decoder

    class Greedy(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="probas")
        def predict(self, inputs, output_ids, states):
            probas = self.last_token(decoder).predict([inputs[0], output_ids])
            probas[:, 0] = 0  # never the pad id (bert4keras would mask it): HF suppresses it too
            return probas

    source = case.encoder_ids[0]
    context = encoder.predict_on_batch(source[None])[0]
    ours = Greedy(start_id=0, end_id=1, maxlen=8).beam_search([context], topk=1)
    with torch.no_grad():
        theirs = (
            hf_model(name)
            .generate(
                torch.tensor(source[None], dtype=torch.long),
                do_sample=False,
                num_beams=1,
                max_new_tokens=8,
                decoder_start_token_id=0,
                eos_token_id=1,
                pad_token_id=0,
                suppress_tokens=[0],
            )[0]
            .numpy()
        )
    assert len(theirs) > 3
    np.testing.assert_array_equal(ours, theirs)  # both start with the start id 0


@pytest.mark.parametrize("buckets, distance", [(32, 128), (8, 20), (10, 12), (64, 256)])
def test_buckets_equal_hf(buckets, distance):
    import torch
    from transformers.models.t5.modeling_t5 import T5Attention

    for bidirectional in (True, False):
        layer = RelativePositionEmbeddingT5(buckets, 2, distance, bidirectional)
        got = np.asarray(layer.buckets(300, 300))
        relative = torch.arange(300)[None, :] - torch.arange(300)[:, None]
        expected = T5Attention._relative_position_bucket(
            relative, bidirectional, num_buckets=buckets, max_distance=distance
        ).numpy()
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("application", ["lm", "unilm"])
@pytest.mark.parametrize("model", ["t5", "mt5.1.1_encoder"])
def test_lm_and_unilm_applications_are_refused(model, application):
    with pytest.raises(ValueError, match="encoder-decoder"):
        build_transformer_model(CASES["t5"].folder, model=model, application=application)


def test_bad_options_are_refused():
    folder = CASES["t5"].folder
    with pytest.raises(ValueError, match="version.*t5.1.0"):
        build_transformer_model(folder, model="t5", version="t5.2")
    with pytest.raises(ValueError, match="unknown model 't5.2'"):
        build_transformer_model(folder, model="t5.2")
    with pytest.raises(NotImplementedError, match="num_decoder_layers"):
        build_transformer_model(folder, model="t5", num_decoder_layers=3)
    with pytest.raises(ValueError, match="feed_forward_proj"):
        build_transformer_model(folder, model="t5", feed_forward_proj="double-gated-gelu")
    with pytest.raises(NotImplementedError, match="no decoder-only T5"):
        CASES["t5"].build(model="t5_decoder").save_weights_as_hf(_FOLDER.name + "/x")


def test_recompute_gives_the_same_logits():
    case = CASES["mt5.1.1"]
    t5 = case.build(recompute=True)
    blocks = {layer.name for layer in t5.model.layers if "Transformer-" in layer.name}
    assert blocks == {
        f"{stack}-Transformer-{i}" for stack in ("Encoder", "Decoder") for i in (0, 1)
    }
    got = t5.model.predict_on_batch([case.encoder_ids, case.decoder_ids])
    assert max_diff(got, case.logits) <= case.atol


def test_keras_save_and_load(tmp_path):
    import keras

    case = CASES["t5"]
    model = case.build().model
    model.save(tmp_path / "t5.keras")
    loaded = keras.saving.load_model(tmp_path / "t5.keras")
    inputs = [case.encoder_ids, case.decoder_ids]
    assert max_diff(loaded.predict_on_batch(inputs), case.logits) <= case.atol
    np.testing.assert_array_equal(loaded.predict_on_batch(inputs), model.predict_on_batch(inputs))
