"""Hostile inputs to the model builder: config files, builder keyword
arguments and model inputs (in eager calls and inside compiled predict / fit).

Each case is a `test_error_*` (a clear error: its type and a message naming
the argument, config key or layer and the problem) or a `test_output_*`
(odd but legal input giving the right output, checked independently)."""

import json
import math

import keras
import numpy as np
import pytest
from helpers import TINY_BERT, padded_batch, run

from nlp4keras.models import build_transformer_model

# TINY_BERT in Google's bert_config.json keys.
GOOGLE_CONFIG = dict(TINY_BERT)
GOOGLE_CONFIG.pop("layer_norm_eps")


def write_config(tmp_path, **changes):
    config = {**GOOGLE_CONFIG, **changes}
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps(config))
    return path


# ------------------------------------------------------- config file values
# (key, value, error type, message pattern): the message names the builder
# argument and the config key the value came from.
CONFIG_CASES = [
    ("vocab_size", "abc", TypeError, r"`vocab_size` must be an integer >= 1, got 'abc'"),
    ("vocab_size", 0, ValueError, r"`vocab_size` must be an integer >= 1, got 0"),
    ("hidden_size", "many", TypeError, r"`hidden_size` must be an integer >= 1, got 'many'"),
    ("hidden_size", 30, ValueError, r"hidden_size 30 is not a multiple of num_attention_heads"),
    ("num_hidden_layers", 0, ValueError, r"`num_hidden_layers` must be an integer >= 1"),
    ("num_hidden_layers", 2.5, TypeError, r"`num_hidden_layers` must be an integer >= 1, got 2.5"),
    ("num_attention_heads", -2, ValueError, r"`num_attention_heads` must be an integer >= 1"),
    ("intermediate_size", [37], TypeError, r"`intermediate_size` must be an integer >= 1"),
    ("hidden_act", None, TypeError, r"`hidden_act` must be an activation name"),
    ("hidden_act", "gleu", ValueError, r"`hidden_act`: unknown activation 'gleu'"),
    ("hidden_act", 3, TypeError, r"`hidden_act` must be an activation name"),
    ("type_vocab_size", -1, ValueError, r"`segment_vocab_size` must be an integer >= 0, got -1"),
    ("type_vocab_size", "2", TypeError, r"`segment_vocab_size` must be an integer >= 0"),
    ("max_position_embeddings", -5, ValueError, r"`max_position` must be an integer >= 1, got -5"),
    ("max_position_embeddings", "512", TypeError, r"`max_position` must be an integer >= 1"),
    ("hidden_dropout_prob", 1.5, ValueError, r"`dropout_rate` must be a finite real number"),
    ("hidden_dropout_prob", "0.1", TypeError, r"`dropout_rate` must be a finite real number"),
    ("attention_probs_dropout_prob", -0.1, ValueError, r"`attention_dropout_rate` must be"),
    ("layer_norm_eps", 0, ValueError, r"`layer_norm_eps` must be a finite real number > 0"),
    ("layer_norm_eps", "1e-12", TypeError, r"`layer_norm_eps` must be a finite real number"),
    ("initializer_range", -0.02, ValueError, r"`initializer_range` must be a finite real"),
    ("pad_token_id", 99, ValueError, r"`pad_token_id` must be an integer >= 0 and < 99, got 99"),
    ("pad_token_id", -1, ValueError, r"`pad_token_id` must be an integer >= 0 and < 99"),
    ("pad_token_id", "0", TypeError, r"`pad_token_id` must be an integer"),
    ("embedding_size", 0, ValueError, r"`embedding_size` must be an integer >= 1"),
    ("attention_head_size", -8, ValueError, r"`attention_head_size` must be an integer >= 1"),
]


@pytest.mark.parametrize(
    "key, value, error, message", CONFIG_CASES, ids=[f"{c[0]}={c[1]!r}" for c in CONFIG_CASES]
)
def test_error_config_value(tmp_path, key, value, error, message):
    path = write_config(tmp_path, **{key: value})
    with pytest.raises(error, match=message) as caught:
        build_transformer_model(path)
    if "multiple" not in message:  # the message says which file and key it came from
        assert f"config key {key!r} of {path}" in str(caught.value)


@pytest.mark.parametrize("key", ["hidden_dropout_prob", "layer_norm_eps", "initializer_range"])
def test_error_config_nan_and_infinity(tmp_path, key):
    for value in (math.nan, math.inf):
        path = tmp_path / "bert_config.json"
        path.write_text(json.dumps({**GOOGLE_CONFIG, key: value}))  # json writes NaN / Infinity
        with pytest.raises(ValueError, match=r"must be a finite real number.*got (nan|inf)"):
            build_transformer_model(path)


def test_error_roberta_config_with_a_bad_pad_token_id(tmp_path):
    path = write_config(tmp_path, model_type="roberta", pad_token_id="x")
    with pytest.raises(TypeError, match=r"config: `pad_token_id` must be an integer >= 0"):
        build_transformer_model(path)


FILE_CASES = {
    "not_json": ("{vocab_size: 99", ValueError, r"bert_config.json is not valid JSON"),
    "a_list": ("[1, 2]", ValueError, r"bert_config.json must hold a JSON object"),
    "relative_positions": (
        json.dumps({**GOOGLE_CONFIG, "position_embedding_type": "relative_key"}),
        NotImplementedError,
        r"position_embedding_type='relative_key' is not supported",
    ),
    "decoder": (
        json.dumps({**GOOGLE_CONFIG, "is_decoder": True}),
        NotImplementedError,
        r"is_decoder=true is not supported; use application='lm'",
    ),
    "another_architecture": (
        json.dumps({**GOOGLE_CONFIG, "model_type": "gpt2"}),
        ValueError,
        r"describes a 'gpt2' model",
    ),
    "missing_vocab_size": (
        json.dumps({k: v for k, v in GOOGLE_CONFIG.items() if k != "vocab_size"}),
        TypeError,
        r"build_transformer_model\(\) needs vocab_size",
    ),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_error_config_file(tmp_path, case):
    text, error, message = FILE_CASES[case]
    path = tmp_path / "bert_config.json"
    path.write_text(text)
    with pytest.raises(error, match=message):
        build_transformer_model(path)


def test_error_config_path_missing_or_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config file not found: .*nowhere.json"):
        build_transformer_model(tmp_path / "nowhere.json")
    with pytest.raises(FileNotFoundError, match=r"no config.json or bert_config.json in folder"):
        build_transformer_model(tmp_path)
    with pytest.raises(TypeError, match=r"`config_path` must be a path .*got 123 \(int\)"):
        build_transformer_model(123)


# ------------------------------------------------------ builder arguments
KWARG_CASES = [
    ("hierarchical_position", 1, ValueError, r"`hierarchical_position` must be .* > 0 and < 1"),
    ("hierarchical_position", 5, ValueError, r"`hierarchical_position` must be .* > 0 and < 1"),
    ("hierarchical_position", 0.0, ValueError, r"`hierarchical_position` must be"),
    ("hierarchical_position", "yes", TypeError, r"`hierarchical_position` must be a finite real"),
    ("compound_tokens", [[]], ValueError, r"`compound_tokens\[0\]` must not be empty"),
    ("compound_tokens", [["a"]], TypeError, r"`compound_tokens\[0\]\[0\]` must be an integer"),
    ("compound_tokens", "abc", TypeError, r"`compound_tokens` must be a list of id lists"),
    ("compound_tokens", [[-3]], ValueError, r"`compound_tokens\[0\]\[0\]` must be >= 0"),
    ("compound_tokens", [([1, 2], [1.0])], ValueError, r"needs one weight >= 0 per id \(2\)"),
    ("compound_tokens", [([1, 2], [0, 0])], ValueError, r"and a positive sum"),
    ("compound_tokens", [([1, 2], [1, math.nan])], ValueError, r"weights` must be a finite"),
    ("keep_tokens", [], ValueError, r"`keep_tokens` must not be empty"),
    ("keep_tokens", [-1, 2], ValueError, r"`keep_tokens\[0\]` must be >= 0, got -1"),
    ("keep_tokens", [1.5, 2], TypeError, r"`keep_tokens\[0\]` must be an integer, got 1.5"),
    ("keep_tokens", 7, TypeError, r"`keep_tokens` must be a list of integers"),
    ("prefix", 123, TypeError, r"`prefix` must be a string, got 123 \(int\)"),
    ("name", 5, TypeError, r"`name` must be a string, got 5 \(int\)"),
    ("with_pool", "nonsense", ValueError, r"`with_pool`: unknown activation 'nonsense'"),
    ("with_mlm", 3, TypeError, r"`with_mlm` must be an activation name"),
    ("with_nsp", "yes", TypeError, r"`with_nsp` must be True or False"),
    ("segment_vocab_size", -1, ValueError, r"`segment_vocab_size` must be an integer >= 0"),
    ("custom_position_ids", 1, TypeError, r"`custom_position_ids` must be True or False"),
    ("residual_attention_scores", "no", TypeError, r"`residual_attention_scores` must be True"),
    ("ignore_invalid_weights", 1, TypeError, r"`ignore_invalid_weights` must be True or False"),
    ("recompute", "yes", TypeError, r"`recompute` must be True or False"),
    ("sequence_length", 0, ValueError, r"`sequence_length` must be an integer >= 1"),
    ("attention_key_size", 2.5, TypeError, r"`attention_key_size` must be an integer >= 1"),
    ("layers", [], TypeError, r"`layers` must be a dict \{name: layer\} or None"),
    ("position_offset", 64, ValueError, r"`position_offset` must be an integer >= 0 and < 64"),
    ("dropout_rate", math.nan, ValueError, r"`dropout_rate` must be a finite real number"),
    ("max_position", True, TypeError, r"`max_position` must be an integer >= 1, got True"),
]


@pytest.mark.parametrize(
    "key, value, error, message", KWARG_CASES, ids=[f"{c[0]}={c[1]!r}" for c in KWARG_CASES]
)
def test_error_builder_argument(key, value, error, message):
    with pytest.raises(error, match=message):
        build_transformer_model(**{**TINY_BERT, key: value})


BUILDER_CASES = [
    (dict(model="albertt"), ValueError, r"unknown model 'albertt'.*Valid models: bert, roberta"),
    (dict(application="seq2seq"), ValueError, r"unknown application 'seq2seq'"),
    (dict(return_keras_model="yes"), TypeError, r"`return_keras_model` must be True or False"),
    (dict(hiden_size=32), TypeError, r"unexpected keyword argument 'hiden_size'.*hidden_size"),
    (dict(layer_norm_cond="x"), TypeError, r"layer_norm_cond must be a Keras tensor"),
]


@pytest.mark.parametrize("kwargs, error, message", BUILDER_CASES, ids=lambda c: str(c)[:30])
def test_error_builder_call(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_transformer_model(**{**TINY_BERT, **kwargs})


def test_error_keep_tokens_beyond_the_checkpoint_vocab():
    transformer = build_transformer_model(**TINY_BERT, return_keras_model=False)
    # A checkpoint: the model's own weights under their Google names.
    checkpoint = {
        name: keras.ops.convert_to_numpy(v) for v, name in transformer._weight_pairs(None)
    }
    with pytest.raises(
        ValueError, match=r"keep_tokens holds ids outside the checkpoint's 99-token"
    ):
        build_transformer_model(**TINY_BERT, keep_tokens=[0, 5, 150], checkpoint_path=checkpoint)
    with pytest.raises(ValueError, match=r"compound_tokens holds ids outside"):
        build_transformer_model(**TINY_BERT, compound_tokens=[[3, 400]], checkpoint_path=checkpoint)


# ------------------------------------------------------------ model inputs
@pytest.fixture
def model():
    """A fresh model per test: on JAX an error inside a compiled step leaves
    the model's weights unusable (Keras hands them to the failing step)."""
    return build_transformer_model(**{**TINY_BERT, "max_position_embeddings": 16})


@pytest.fixture
def positions_model():
    return build_transformer_model(**TINY_BERT, custom_position_ids=True)


def bad_ids(column_value, which=0, length=6):
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [length, length - 2], length, seed=1)
    (ids, segments)[which][1, 2] = column_value
    return [ids, segments]


ID_CASES = {
    "token_id_equal_to_vocab_size": (TINY_BERT["vocab_size"], 0, "Embedding-Token", 99),
    "token_id_far_beyond": (10**6, 0, "Embedding-Token", 99),
    "negative_token_id": (-1, 0, "Embedding-Token", 99),
    "segment_id_2": (2, 1, "Embedding-Segment", 2),
    "negative_segment_id": (-3, 1, "Embedding-Segment", 2),
}


@pytest.mark.parametrize("case", sorted(ID_CASES))
def test_error_ids_outside_the_tables_eager(model, case):
    value, which, layer, rows = ID_CASES[case]
    with pytest.raises(ValueError, match=rf"{layer}: ids must be in \[0, {rows}\)"):
        model(bad_ids(value, which))


@pytest.mark.parametrize("case", sorted(ID_CASES))
def test_error_ids_outside_the_tables_compiled(model, case):
    # JAX: JaxRuntimeError from the host callback; TF: InvalidArgumentError.
    value, which, layer, rows = ID_CASES[case]
    with pytest.raises(Exception, match=rf"{layer}: ids must be in \[0, {rows}\)"):
        model.predict(bad_ids(value, which), verbose=0)


def test_error_ids_outside_the_table_inside_fit(model):
    inputs = bad_ids(TINY_BERT["vocab_size"] + 5)
    trainable = keras.Model(model.inputs, model.output)
    trainable.compile(optimizer="sgd", loss="mse")
    target = np.zeros((2, 6, TINY_BERT["hidden_size"]), "float32")
    with pytest.raises(Exception, match=r"Embedding-Token: ids must be in \[0, 99\)"):
        trainable.fit(inputs, target, epochs=1, verbose=0)


def test_error_position_ids_outside_the_table(positions_model):
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [5], 5)
    positions = np.array([[0, 1, 2, 3, 64]], "int32")
    message = r"Embedding-Position: ids must be in \[0, 64\)"
    with pytest.raises(ValueError, match=message):
        positions_model([ids, segments, positions])
    with pytest.raises(Exception, match=message):
        positions_model.predict([ids, segments, positions], verbose=0)


def test_error_sequence_longer_than_the_position_table(model):
    ids = np.ones((1, 17), "int32")
    with pytest.raises(ValueError, match=r"sequence length 17 exceeds the 16 positions"):
        model.predict([ids, np.zeros_like(ids)], verbose=0)


SHAPE_CASES = {
    # (token ids, segment ids, what predict says: Keras itself checks batch sizes)
    "longer_segments": (
        np.ones((1, 4), "int32"),
        np.zeros((1, 5), "int32"),
        r"Embedding-Token-Segment: the inputs must have one shape, got shapes",
    ),
    "fewer_segment_rows": (
        np.ones((2, 4), "int32"),
        np.zeros((1, 4), "int32"),
        r"Data cardinality is ambiguous",
    ),
}


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_error_token_and_segment_shapes_differ(model, case):
    # Broadcasting one segment row over a batch would be silently wrong.
    ids, segments, predict_message = SHAPE_CASES[case]
    message = r"Embedding-Token-Segment: the inputs must have one shape, got shapes"
    with pytest.raises(ValueError, match=message):
        model([ids, segments])
    with pytest.raises(ValueError, match=predict_message):
        model.predict([ids, segments], verbose=0)


def test_error_wrong_number_of_inputs(model):
    with pytest.raises(ValueError, match=r"expects 2 named input\(s\)"):
        model(np.ones((1, 4), "int32"))


# --------------------------------------------------- odd but legal inputs
def test_output_integral_floats_in_a_config_are_integers(tmp_path):
    keras.utils.set_random_seed(1)
    model = build_transformer_model(write_config(tmp_path, vocab_size=99.0, hidden_size=32.0))
    assert model.get_layer("Embedding-Token").input_dim == 99
    assert model.get_layer("Embedding-Token").embeddings.shape == (99, 32)


def test_output_weighted_compound_token_is_the_weighted_mean():
    transformer = build_transformer_model(**TINY_BERT, return_keras_model=False)
    checkpoint = {
        name: keras.ops.convert_to_numpy(v) for v, name in transformer._weight_pairs(None)
    }
    table = checkpoint["bert/embeddings/word_embeddings"]
    model = build_transformer_model(
        **TINY_BERT, compound_tokens=[([3, 7], [3.0, 1.0]), [4, 5, 6]], checkpoint_path=checkpoint
    )
    rows = keras.ops.convert_to_numpy(model.get_layer("Embedding-Token").embeddings)
    np.testing.assert_allclose(rows[99], 0.75 * table[3] + 0.25 * table[7], rtol=1e-6)
    np.testing.assert_allclose(rows[100], table[4:7].mean(0), rtol=1e-6)


def test_output_hierarchical_true_is_alpha_0_4():
    keras.utils.set_random_seed(2)
    a = build_transformer_model(**TINY_BERT, hierarchical_position=True, return_keras_model=False)
    b = build_transformer_model(**TINY_BERT, hierarchical_position=0.4, return_keras_model=False)
    b.model.set_weights(a.model.get_weights())
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [70, 40], 70, seed=3)  # > 64 positions
    np.testing.assert_allclose(run(a.model, [ids, segments]), run(b.model, [ids, segments]))


def test_output_ids_at_the_edges_of_the_tables(model):
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [6, 6], 6, seed=4)
    ids[0, 1], segments[0, 1] = TINY_BERT["vocab_size"] - 1, 1  # last valid rows
    table = keras.ops.convert_to_numpy(model.get_layer("Embedding-Token").embeddings)
    lookup = keras.Model(model.inputs, model.get_layer("Embedding-Token").output)
    np.testing.assert_array_equal(run(lookup, [ids, segments])[0, 1], table[98])
    assert np.isfinite(run(model, [ids, segments])).all()
