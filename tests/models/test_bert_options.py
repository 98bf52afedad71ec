"""build_transformer_model options, each against an independent computation."""

from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import run
from reference_bert import bert_forward, hierarchical_positions, layer_norm

from nlp4keras.models import build_transformer_model

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "bert_tf"
CONFIG = FIXTURE / "bert_config.json"
HEADS, LAYERS, VOCAB, MAX_POSITION = 2, 2, 50, 32
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def weights():
    return dict(np.load(FIXTURE / "weights.npz"))


@pytest.fixture(scope="module")
def batch():
    ids = np.array([[2, 17, 33, 8, 41, 3, 0, 0], [2, 5, 9, 12, 44, 3, 29, 3]], dtype="int32")
    segments = np.array([[0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]], dtype="int32")
    return ids, segments


def build(weights, **kwargs):
    return build_transformer_model(CONFIG, weights, return_keras_model=False, **kwargs)


def hidden(transformer, inputs):
    """The last hidden states whatever heads the model has."""
    encoder = transformer.model
    name = f"{transformer.prefix}Transformer-{LAYERS - 1}-FeedForward-Norm"
    return run(keras.Model(encoder.inputs, encoder.get_layer(name).output), inputs)


def assert_close_on_tokens(actual, expected, ids):
    assert np.abs(actual - expected)[ids != 0].max() <= TOLERANCE


def test_plain_encoder_matches_numpy_reference(weights, batch):
    ids, segments = batch
    expected = bert_forward(weights, ids, segments, HEADS, LAYERS)
    assert_close_on_tokens(run(build(weights).model, [ids, segments]), expected, ids)


def test_keep_tokens_equals_full_vocab_with_remapped_ids(weights, batch):
    ids, segments = batch
    keep = [0, 2, 3, 5, 8, 9, 12, 17, 29, 33, 41, 44, 47, 49]
    new_ids = np.vectorize(keep.index)(ids).astype("int32")
    small = build(weights, keep_tokens=keep, with_mlm="linear")
    full = build(weights, with_mlm="linear")
    small_logits = run(small.model, [new_ids, segments])
    full_logits = run(full.model, [ids, segments])
    assert small_logits.shape[-1] == len(keep)
    assert_close_on_tokens(small_logits, full_logits[..., keep], ids)


def test_compound_tokens_append_weighted_means(weights):
    compound = [[5, 9], ([12, 17, 29], [0.5, 0.25, 0.25])]
    model = build(weights, compound_tokens=compound, with_mlm="linear")
    table = keras.ops.convert_to_numpy(model.layers["Embedding-Token"].embeddings)
    bias = keras.ops.convert_to_numpy(model.layers["MLM-Bias"].bias)
    words = weights["bert/embeddings/word_embeddings"]
    output_bias = weights["cls/predictions/output_bias"]
    assert table.shape[0] == VOCAB + 2
    np.testing.assert_allclose(table[VOCAB], (words[5] + words[9]) / 2, atol=1e-7)
    np.testing.assert_allclose(
        table[VOCAB + 1], 0.5 * words[12] + 0.25 * words[17] + 0.25 * words[29], atol=1e-7
    )
    np.testing.assert_allclose(
        bias[VOCAB + 1],
        0.5 * output_bias[12] + 0.25 * output_bias[17] + 0.25 * output_bias[29],
        atol=1e-7,
    )
    np.testing.assert_array_equal(table[:VOCAB], words)


def test_custom_position_ids(weights, batch):
    ids, segments = batch
    model = build(weights, custom_position_ids=True)
    assert [t.name for t in model.model.inputs] == [
        "Input-Token",
        "Input-Segment",
        "Input-Position",
    ]
    rng = np.random.default_rng(0)
    positions = rng.integers(0, MAX_POSITION, ids.shape).astype("int32")
    expected = bert_forward(weights, ids, segments, HEADS, LAYERS, positions=positions)
    assert_close_on_tokens(run(model.model, [ids, segments, positions]), expected, ids)


def test_hierarchical_positions_extend_the_table(weights):
    model = build(weights, hierarchical_position=True)
    length = 2 * MAX_POSITION + 5  # beyond the 32 learned positions
    rng = np.random.default_rng(1)
    ids = rng.integers(1, VOCAB, (1, length)).astype("int32")
    segments = np.zeros_like(ids)
    positions = np.arange(length)[None]
    rows = hierarchical_positions(weights["bert/embeddings/position_embeddings"], positions)
    expected = bert_forward(weights, ids, segments, HEADS, LAYERS, position_rows=rows)
    actual = run(model.model, [ids, segments])
    assert_close_on_tokens(actual, expected, ids)
    # The first max_position positions are those of the plain model.
    short = ids[:, :MAX_POSITION]
    np.testing.assert_allclose(
        run(model.model, [short, segments[:, :MAX_POSITION]]),
        run(build(weights).model, [short, segments[:, :MAX_POSITION]]),
        atol=TOLERANCE,
    )


def test_residual_attention_scores_realformer(weights, batch):
    ids, segments = batch
    model = build(weights, residual_attention_scores=True)
    expected = bert_forward(weights, ids, segments, HEADS, LAYERS, residual=True)
    assert_close_on_tokens(run(model.model, [ids, segments]), expected, ids)
    plain = bert_forward(weights, ids, segments, HEADS, LAYERS)
    assert np.abs(expected - plain).max() > 1e-3  # the option changes the maths


def test_conditional_layer_norm(weights, batch):
    ids, segments = batch
    condition = keras.Input(shape=(3,), name="Condition")
    model = build(
        weights,
        layer_norm_cond=condition,
        layer_norm_cond_hidden_size=4,
        layer_norm_cond_hidden_act="tanh",
        additional_input_layers=condition,
    )
    cond = np.array([[1.0, -2.0, 0.5], [0.0, 0.3, -1.0]], dtype="float32")
    inputs = [ids, segments, cond]
    # Zero-initialised condition projections: identical to plain BERT at first.
    plain = bert_forward(weights, ids, segments, HEADS, LAYERS)
    assert_close_on_tokens(hidden(model, inputs), plain, ids)

    rng = np.random.default_rng(2)
    params = {}
    for name, layer in model.layers.items():
        if name.endswith("Norm") and "MLM" not in name:
            for variable in layer.weights[2:]:  # hidden, beta and gamma kernels
                value = rng.normal(0, 0.3, variable.shape).astype("float32")
                variable.assign(value)
                params[(name, variable.name)] = value
    # The reference applies each norm's projection in Google-name order.
    norm_names = ["Embedding-Norm"] + [
        f"Transformer-{i}-{part}-Norm"
        for i in range(LAYERS)
        for part in ("MultiHeadSelfAttention", "FeedForward")
    ]
    calls = iter(norm_names)

    def conditional_ln(x, gamma, beta):
        name = next(calls)
        h = np.tanh(cond @ params[(name, "hidden_kernel")])[:, None, :]
        return layer_norm(
            x, gamma + h @ params[(name, "gamma_kernel")], beta + h @ params[(name, "beta_kernel")]
        )

    expected = bert_forward(weights, ids, segments, HEADS, LAYERS, ln=conditional_ln)
    assert_close_on_tokens(hidden(model, inputs), expected, ids)


def test_prefix_names_every_layer_and_still_loads(weights, batch):
    ids, segments = batch
    model = build(weights, prefix="Successor-", with_pool=True)
    names = [layer.name for layer in model.model.layers]
    assert all(name.startswith("Successor-") for name in names)
    assert "Successor-Transformer-1-FeedForward-Norm" in names
    np.testing.assert_array_equal(
        run(model.model, [ids, segments]),
        run(build(weights, with_pool=True).model, [ids, segments]),
    )


def test_shared_layers_dict_shares_weights(weights):
    shared = {}
    first = build(weights, layers=shared)
    second = build_transformer_model(CONFIG, layers=shared, with_mlm=True, return_keras_model=False)
    a = first.model.get_layer("Transformer-0-FeedForward").weights[0]
    b = second.model.get_layer("Transformer-0-FeedForward").weights[0]
    assert a is b


def test_no_segment_input(weights):
    with pytest.warns(UserWarning, match="token_type_embeddings") as caught:
        model = build(weights, segment_vocab_size=0)
    assert caught[0].filename == __file__  # attributed to the caller, not to nlp4keras
    assert [t.name for t in model.model.inputs] == ["Input-Token"]
    assert "bert/embeddings/token_type_embeddings" in model.load_report.unexpected
    ids = np.array([[2, 17, 33, 3]], dtype="int32")
    expected = bert_forward(
        {**weights, "bert/embeddings/token_type_embeddings": np.zeros((1, 16), "float32")},
        ids,
        np.zeros_like(ids),
        HEADS,
        LAYERS,
    )
    assert_close_on_tokens(run(model.model, ids), expected, ids)


def test_embedding_mapping_when_embedding_size_differs():
    model = build_transformer_model(
        vocab_size=30,
        hidden_size=16,
        embedding_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        hidden_act="gelu",
        with_mlm=True,
    )
    assert model.get_layer("Embedding-Token").embeddings.shape == (30, 8)
    assert model.get_layer("Embedding-Mapping").kernel.shape == (8, 16)
    assert model.get_layer("MLM-Dense").kernel.shape == (16, 8)


def test_dropout_only_in_training(weights, batch):
    ids, segments = batch
    model = build(weights).model  # config: dropout 0.1 everywhere
    inference = [run(model, [ids, segments]) for _ in range(2)]
    np.testing.assert_array_equal(*inference)
    train = [keras.ops.convert_to_numpy(model([ids, segments], training=True)) for _ in range(2)]
    assert not np.allclose(train[0], train[1])
    no_dropout = build(weights, dropout_rate=0, attention_dropout_rate=0).model
    names = [layer.name for layer in no_dropout.layers]
    assert not any("Dropout" in name for name in names)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(no_dropout([ids, segments], training=True)),
        inference[0],
        atol=TOLERANCE,
    )


def test_model_is_named_after_its_family(weights):
    from nlp4keras.models import BERT, MODELS

    assert build(weights).model.name == "bert"  # summary() headline, was "functional"
    assert build_transformer_model(CONFIG, weights, model="roberta").name == "roberta"
    assert build_transformer_model(CONFIG, weights, name="encoder").name == "encoder"
    assert build_transformer_model(CONFIG, weights, model=BERT).name == BERT.family
    assert set(MODELS) >= {"bert", "roberta"}
