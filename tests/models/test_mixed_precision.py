"""Mixed precision (mixed_bfloat16, mixed_float16) for the BERT family.

Tolerances are in units of the format's unit roundoff u (bfloat16: 2^-8,
float16: 2^-11), the relative error of one rounding.
"""

import keras
import numpy as np
import pytest
from helpers import TINY_BERT, padded_batch, run

from nlp4keras.layers import LayerNormalization, MultiHeadAttention
from nlp4keras.models import build_transformer_model
from nlp4keras.training import mixed_precision

POLICIES = ["mixed_bfloat16", "mixed_float16"]
UNIT_ROUNDOFF = {"bfloat16": 2.0**-8, "float16": 2.0**-11}


@pytest.fixture(autouse=True)
def restore_policy():
    previous = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(previous)


def half(policy):
    return policy.split("_")[1]


def relative_error(actual, expected):
    actual = np.asarray(actual, dtype="float64")
    return np.linalg.norm(actual - expected) / np.linalg.norm(expected)


@pytest.mark.parametrize("policy", POLICIES)
def test_checkpoint_model_close_to_float32(tiny_pretraining, policy):
    """Same checkpoint, float32 variables; sequence output within 4u of the
    float32 model's (each of the 2 blocks rounds its matmuls, residual sum
    and output once, O(u) each); a lost mask or overflow would be O(1)."""
    folder = tiny_pretraining[1]["safetensors"]
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [16, 11, 4], 16, seed=1)
    reference = build_transformer_model(folder / "config.json", folder)
    with mixed_precision(policy):
        model = build_transformer_model(folder / "config.json", folder)
    assert keras.config.dtype_policy().name == "float32"  # restored
    assert {v.dtype for v in model.weights} == {"float32"}
    for mixed, plain in zip(model.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(mixed), keras.ops.convert_to_numpy(plain)
        )
    output = run(model, [ids, segments])
    assert str(output.dtype) == half(policy)
    valid = ids != 0
    error = relative_error(output.astype("float32")[valid], run(reference, [ids, segments])[valid])
    assert error <= 4 * UNIT_ROUNDOFF[half(policy)]


@pytest.mark.parametrize("policy", POLICIES)
def test_heads_give_float32_probabilities(tiny_pretraining, policy):
    """NSP and MLM softmaxes run in float32 (a half-precision softmax over the
    vocab rounds every probability), close to the float32 model's."""
    folder = tiny_pretraining[1]["safetensors"]
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [16, 11, 4], 16, seed=1)
    heads = dict(with_pool=True, with_nsp=True, with_mlm=True)
    reference = build_transformer_model(folder / "config.json", folder, **heads)
    with mixed_precision(policy):
        model = build_transformer_model(folder / "config.json", folder, **heads)
    for output, expected in zip(run(model, [ids, segments]), run(reference, [ids, segments])):
        assert output.dtype == np.float32
        np.testing.assert_allclose(output.sum(-1), 1.0, atol=1e-6)
        assert np.abs(output - expected).max() <= 8 * UNIT_ROUNDOFF[half(policy)]


@pytest.mark.parametrize("options", [{}, {"zero_mean": False}], ids=["layernorm", "rmsnorm"])
def test_layer_norm_uses_float32_statistics_gamma_and_beta(options):
    """Under mixed_bfloat16 the output is the float32 computation on the
    bf16-rounded input, rounded once: bit for bit (a bf16 gamma would not be)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, 64)).astype("float32") * 3 + 1
    reference = LayerNormalization(**options)
    reference.build(x.shape)
    reference.set_weights([1 + rng.normal(size=(64,)).astype("float32") for _ in range(2)])
    layer = LayerNormalization(**options, dtype="mixed_bfloat16")
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    rounded = keras.ops.cast(keras.ops.cast(x, "bfloat16"), "float32")
    expected = keras.ops.cast(reference(rounded), "bfloat16")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(keras.ops.cast(layer(x), "float32")),
        keras.ops.convert_to_numpy(keras.ops.cast(expected, "float32")),
    )


def identity_attention(policy, dim, permutation):
    """One head with q = x, k = x @ permutation, v = x (all exact in half
    precision): the layer's output is the attention of x itself."""
    layer = MultiHeadAttention(heads=1, head_size=dim, use_bias=False, dtype=policy)
    layer.build([(None, None, dim)] * 3)
    eye = np.eye(dim, dtype="float32")
    layer.set_weights([eye, permutation, eye, eye])
    return layer


@pytest.mark.parametrize("policy", POLICIES)
def test_attention_softmax_runs_on_float32_logits(policy):
    dim, rng = 8, np.random.default_rng(0)
    x = (rng.normal(size=(2, 12, dim)) * 2).astype("float32")  # logits up to ~14
    mask = np.ones((2, 12), bool)
    mask[1, 7:] = False
    permutation = np.eye(dim, dtype="float32")[rng.permutation(dim)]
    x_half = keras.ops.convert_to_numpy(keras.ops.cast(x, half(policy))).astype("float64")
    logits = x_half @ (x_half @ permutation).transpose(0, 2, 1) / np.sqrt(dim)
    logits = np.where(mask[:, None, :], logits, -np.inf)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    expected = probs @ x_half

    layer = identity_attention(policy, dim, permutation)
    inputs = keras.ops.convert_to_tensor(x)
    keras_mask = [None, None, keras.ops.convert_to_tensor(mask)]
    for explicit in (False, True):  # fused kernel, then the explicit path
        layer.explicit_attention = explicit
        layer.record_attention_probs = explicit
        output = keras.ops.cast(layer([inputs] * 3, mask=keras_mask), "float32")
        assert str(keras.backend.standardize_dtype(output.dtype)) == "float32"
        # Rounding the probabilities (each by <= u/2) and the output (<= u/2):
        # first order, |error| <= u/2 (probs @ |x| + |expected|); with ~1% slack
        # for second-order terms. (A flat 1u fails where the values cancel.)
        error = np.linalg.norm(keras.ops.convert_to_numpy(output) - expected)
        unit = UNIT_ROUNDOFF[half(policy)]
        bound = unit / 2 * np.linalg.norm(probs @ np.abs(x_half) + np.abs(expected)) * 1.01
        assert error <= bound, (explicit, error / bound)
    # Half-precision logits would be off by ~|logit| * u (~1e-2 here).
    recorded = keras.ops.convert_to_numpy(layer.recorded_attention_probs)[:, 0]
    assert np.abs(recorded - probs).max() <= 1e-5


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_masks_and_infinite_biases_do_not_overflow(policy, explicit):
    """A padding mask plus a -1e12 bias (bert4keras' -infinity), one query
    row with every key biased away: finite, and equal to float32."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 8)).astype("float32")
    padding = keras.ops.convert_to_tensor(np.array([[1] * 6, [1] * 4 + [0] * 2], bool))
    bias = np.zeros((2, 1, 6, 6), "float32")
    bias[:, :, 1, 3:] = -1e12
    bias[:, :, 2, :] = -1e12  # nothing left to attend to
    reference = MultiHeadAttention(heads=2, head_size=4)
    reference.build([(None, None, 8)] * 3)
    reference.explicit_attention = True
    layer = MultiHeadAttention(heads=2, head_size=4, dtype=policy)
    layer.build([(None, None, 8)] * 3)
    layer.set_weights(reference.get_weights())
    layer.explicit_attention = explicit

    def call(attention):
        inputs = [keras.ops.convert_to_tensor(x)] * 3 + [keras.ops.convert_to_tensor(bias)]
        out = attention(inputs, mask=[None, None, padding, None])
        return keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))

    expected, output = call(reference), call(layer)
    assert np.isfinite(output).all()
    rows = [0, 1, 3, 4, 5]  # row 2: uniform (float32) vs a softmax of raw logits (float16)
    tolerance = 1e-5 if policy == "float32" else 8 * UNIT_ROUNDOFF["float16"]
    assert np.abs(output - expected)[:, rows].max() <= tolerance * np.abs(expected).max()


def train_tiny_classifier(policy, steps=200):
    keras.utils.set_random_seed(0)
    with mixed_precision(policy):
        bert = build_transformer_model(**dict(TINY_BERT, num_hidden_layers=1), with_pool=True)
        probs = keras.layers.Dense(2, activation="softmax", dtype="float32")(bert.output)
        model = keras.Model(bert.inputs, probs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [8, 6, 5, 3] * 16, 8, seed=4)
    labels = ((ids == 7).any(axis=1) | (ids[:, 1] > 50)).astype("int32")
    epochs = steps // (len(ids) // 8)
    history = model.fit([ids, segments], labels, batch_size=8, epochs=epochs, verbose=0)
    return model, history.history["loss"]


@pytest.mark.parametrize("policy", POLICIES)
def test_training_200_steps_stays_finite(policy, one_torch_thread):
    model, losses = train_tiny_classifier(policy)
    is_float16 = policy == "mixed_float16"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == is_float16
    assert len(losses) * 8 == 200
    assert np.isfinite(losses).all()
    for variable in model.weights:
        assert variable.dtype == "float32"
        assert np.isfinite(keras.ops.convert_to_numpy(variable)).all(), variable.path
    assert losses[-1] < 0.8 * losses[0]


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        with mixed_precision("mixed_bf16"):
            pass
