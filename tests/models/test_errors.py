"""Bad input gets an error that names the problem."""

import json
import shutil

import numpy as np
import pytest
from helpers import TINY_BERT

from nlp4keras.checkpoints.errors import CheckpointError
from nlp4keras.models import build_transformer_model


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError) as error:
        build_transformer_model(model="bret", **TINY_BERT)
    message = str(error.value)
    assert "'bret'" in message and "Did you mean 'bert'" in message
    assert "bert, roberta" in message


def test_unknown_application_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown application 'seq2seq'.*encoder, lm, unilm"):
        build_transformer_model(application="seq2seq", **TINY_BERT)


def test_unknown_kwarg_names_it_and_lists_valid_ones():
    with pytest.raises(TypeError) as error:
        build_transformer_model(with_pol=True, **TINY_BERT)
    message = str(error.value)
    assert "'with_pol'" in message and "Did you mean 'with_pool'" in message
    for valid in ("with_mlm", "keep_tokens", "layer_norm_cond", "segment_vocab_size"):
        assert valid in message


def test_missing_required_config_is_named():
    with pytest.raises(TypeError, match="vocab_size"):
        build_transformer_model(
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
            hidden_act="gelu",
        )


def test_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        build_transformer_model(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        build_transformer_model(broken)
    relative = tmp_path / "relative.json"
    relative.write_text(json.dumps({**TINY_BERT, "position_embedding_type": "relative_key"}))
    with pytest.raises(NotImplementedError, match="relative_key"):
        build_transformer_model(relative)


def google_weights():
    """The committed TF fixture's weights as a dict of Google names."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "fixtures" / "bert_tf" / "weights.npz"
    return dict(np.load(path)), path.parent / "bert_config.json"


def test_missing_tensor_is_named_with_its_weight():
    weights, config = google_weights()
    del weights["bert/encoder/layer_1/attention/self/key/bias"]
    with pytest.raises(CheckpointError) as error:
        build_transformer_model(config, weights)
    message = str(error.value)
    assert "missing tensor 'bert/encoder/layer_1/attention/self/key/bias'" in message
    assert "Transformer-1-MultiHeadSelfAttention/k_bias" in message
    assert "ignore_invalid_weights=True" in message


def test_wrong_shape_names_both_shapes():
    weights, config = google_weights()
    weights["bert/encoder/layer_0/intermediate/dense/kernel"] = np.zeros((16, 25), "float32")
    with pytest.raises(CheckpointError) as error:
        build_transformer_model(config, weights)
    message = str(error.value)
    assert "'bert/encoder/layer_0/intermediate/dense/kernel'" in message
    assert "(16, 25) in the checkpoint" in message and "(16, 24)" in message


def test_ignore_invalid_weights_loads_what_fits():
    weights, config = google_weights()
    del weights["bert/embeddings/LayerNorm/gamma"]
    with pytest.warns(UserWarning, match="LayerNorm/gamma"):
        transformer = build_transformer_model(
            config, weights, ignore_invalid_weights=True, return_keras_model=False
        )
    report = transformer.load_report
    assert [m[0] for m in report.missing] == ["bert/embeddings/LayerNorm/gamma"]
    layer = transformer.model.get_layer("Transformer-0-FeedForward")
    np.testing.assert_array_equal(
        layer.weights[0].numpy()
        if hasattr(layer.weights[0], "numpy")
        else np.asarray(layer.weights[0]),
        weights["bert/encoder/layer_0/intermediate/dense/kernel"],
    )


def test_hf_names_report_their_stored_name(tiny_pretraining, tmp_path):
    from safetensors.numpy import load_file, save_file

    _, folders = tiny_pretraining
    tensors = load_file(folders["safetensors"] / "model.safetensors")
    del tensors["bert.encoder.layer.0.output.dense.weight"]
    save_file(tensors, tmp_path / "model.safetensors")
    shutil.copy(folders["safetensors"] / "config.json", tmp_path / "config.json")
    with pytest.raises(
        CheckpointError, match=r"expected as .bert\.encoder\.layer\.0\.output\.dense"
    ):
        build_transformer_model(tmp_path / "config.json", tmp_path)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_safetensors_names_the_file(tiny_pretraining, tmp_path, keep):
    _, folders = tiny_pretraining
    data = (folders["safetensors"] / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: int(len(data) * keep)])
    shutil.copy(folders["safetensors"] / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        build_transformer_model(tmp_path / "config.json", tmp_path)


def test_truncated_bin_names_the_file(tiny_pretraining, tmp_path):
    _, folders = tiny_pretraining
    data = (folders["bin"] / "pytorch_model.bin").read_bytes()
    (tmp_path / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    shutil.copy(folders["bin"] / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        build_transformer_model(tmp_path / "config.json", tmp_path)


def test_truncated_tf_checkpoint_names_the_file(tmp_path):
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "bert_tf"
    for name in ("bert_model.ckpt.index", "bert_config.json"):
        shutil.copy(fixture / name, tmp_path / name)
    data = (fixture / "bert_model.ckpt.data-00000-of-00001").read_bytes()
    (tmp_path / "bert_model.ckpt.data-00000-of-00001").write_bytes(data[:1000])
    with pytest.raises(CheckpointError, match="bert_model.ckpt.data-00000-of-00001"):
        build_transformer_model(tmp_path / "bert_config.json", tmp_path / "bert_model.ckpt")


def test_missing_checkpoint_path_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint found in folder"):
        build_transformer_model(**TINY_BERT, checkpoint_path=tmp_path)
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nothing_here"):
        build_transformer_model(**TINY_BERT, checkpoint_path=tmp_path / "nothing_here")


def test_sequence_longer_than_positions_is_an_error():
    model = build_transformer_model(**{**TINY_BERT, "max_position_embeddings": 8})
    ids = np.ones((1, 9), "int32")
    with pytest.raises(ValueError, match="sequence length 9 exceeds the 8 positions"):
        model([ids, np.zeros_like(ids)])


def test_bad_hyperparameters_fail_at_build_naming_them():
    with pytest.raises(ValueError, match="unknown activation 'gleu'"):
        build_transformer_model(**{**TINY_BERT, "hidden_act": "gleu"})
    with pytest.raises(TypeError, match="`dropout_rate` must be a finite real number"):
        build_transformer_model(**TINY_BERT, dropout_rate="0.1")
    with pytest.raises(
        ValueError, match="hidden_size 30 is not a multiple of num_attention_heads 4"
    ):
        build_transformer_model(**{**TINY_BERT, "hidden_size": 30})
    with pytest.raises(TypeError, match="`num_hidden_layers` must be an integer >= 1, got 2.5"):
        build_transformer_model(**{**TINY_BERT, "num_hidden_layers": 2.5})


def test_config_of_another_architecture_is_named(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_BERT, "model_type": "gpt2"}))
    with pytest.raises(ValueError, match="describes a 'gpt2' model.*bert, roberta"):
        build_transformer_model(config)


def test_keep_tokens_outside_the_checkpoint_vocab():
    weights, config = google_weights()
    with pytest.raises(
        ValueError, match=r"keep_tokens holds ids outside .* 50-token vocab: \[50, 99\]"
    ):
        build_transformer_model(config, weights, keep_tokens=[0, 1, 50, 99])


def test_layer_norm_condition_mistakes():
    import keras

    condition = keras.Input(shape=(3,))
    with pytest.raises(ValueError, match="additional_input_layers"):
        build_transformer_model(**TINY_BERT, layer_norm_cond=condition)
    with pytest.raises(TypeError, match="layer_norm_cond must be"):
        build_transformer_model(**TINY_BERT, layer_norm_cond=True)


def test_unused_tensors_are_listed_in_a_strict_error():
    """Another architecture's checkpoint: the unused names show what it is."""
    weights, config = google_weights()
    weights = {name.replace("bert/", "electra/"): value for name, value in weights.items()}
    with pytest.raises(CheckpointError, match=r"unused tensors in the checkpoint \(46\): 'cls/"):
        build_transformer_model(config, weights)


@pytest.mark.parametrize(
    "layer, bad_id, rows",
    [
        ("Embedding-Token", TINY_BERT["vocab_size"], TINY_BERT["vocab_size"]),
        ("Embedding-Token", -1, TINY_BERT["vocab_size"]),
        ("Embedding-Segment", 2, 2),
    ],
)
def test_out_of_range_ids_are_an_error_on_every_backend(layer, bad_id, rows):
    model = build_transformer_model(**TINY_BERT)
    ids = np.array([[5, 6, 7, 8]], dtype="int32")
    segments = np.zeros_like(ids)
    (ids if layer == "Embedding-Token" else segments)[0, 2] = bad_id
    message = rf"{layer}: ids must be in \[0, {rows}\)"
    with pytest.raises(ValueError, match=message):
        model([ids, segments])  # eager
    # Compiled (jit / tf.function): JAX raises from a host callback
    # (JaxRuntimeError), TensorFlow from an assertion (InvalidArgumentError).
    with pytest.raises(Exception, match=message):
        model.predict_on_batch([ids, segments])


def test_tensor_checks_can_be_turned_off():
    import keras

    from nlp4keras.tensor_checks import set_tensor_checks

    model = build_transformer_model(**TINY_BERT)
    ids = np.array([[5, 6, TINY_BERT["vocab_size"], 7]], dtype="int32")
    set_tensor_checks(False)
    try:
        if keras.backend.backend() == "jax":
            # What XLA gives for an out-of-range lookup: NaN, never a valid-looking row.
            out = keras.ops.convert_to_numpy(model.predict_on_batch([ids, np.zeros_like(ids)]))
            assert np.isnan(out).all()
        else:
            with pytest.raises(Exception, match="99"):  # the backend's own error
                model.predict_on_batch([ids, np.zeros_like(ids)])
    finally:
        set_tensor_checks(True)
