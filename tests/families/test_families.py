"""Every encoder family through the same checks: parity with an independent
reference (HF transformers or a numpy forward from the papers), Google TF
checkpoint and HF folder round trips, `.keras` save/load, recompute and
the lm / unilm masks."""

import tempfile

import keras
import numpy as np
import pytest

from families.case import assert_same_weights
from families.hf_cases import CASES as HF_CASES
from families.hf_cases import CHECKPOINTS, hf_class, hf_outputs
from families.hf_cases import all_cases as hf_all_cases
from families.numpy_cases import gau_alpha_cases, nezha_cases, roformer_v2_cases
from nlp4keras.models import build_transformer_model

_FOLDER = tempfile.TemporaryDirectory(prefix="nlp4keras-families-")
CASES = {
    case.name: case
    for case in hf_all_cases(_FOLDER.name + "/hf")
    + nezha_cases(_FOLDER.name + "/nezha")
    + roformer_v2_cases(_FOLDER.name + "/roformer_v2")
    + gau_alpha_cases(_FOLDER.name + "/gau_alpha")
}
#: one case per family for the slower checks
FAMILY_CASES = [
    "albert",
    "albert_unshared-pool-mlm",
    "electra-generator-mlm",
    "roformer-mlm",
    "nezha-rel3-mlm",
    "roformer_v2-gelu-mlm",
    "gau_alpha-mlm",
]


def outputs(model, inputs):
    result = model.predict_on_batch(inputs)
    return [np.asarray(r) for r in (result if isinstance(result, (list, tuple)) else [result])]


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_equal_the_reference(name):
    case = CASES[name]
    transformer = case.build()
    got = outputs(transformer.model, case.inputs)
    assert [g.shape for g in got] == [e.shape for e in case.expected]
    assert max_diff(got, case.expected) <= case.atol, name
    assert not transformer.load_report.missing


@pytest.mark.spread
@pytest.mark.parametrize("name", sorted(CASES))
def test_google_checkpoint_round_trip_is_bit_exact(name, tmp_path):
    case = CASES[name]
    first = case.build()
    prefix = str(tmp_path / "model.ckpt")
    first.save_weights_as_checkpoint(prefix)
    second = case.build(checkpoint_path=prefix)
    assert_same_weights(first, second)
    assert max_diff(outputs(second.model, case.inputs), outputs(first.model, case.inputs)) == 0


HF_EXPORTABLE = sorted(n for n, c in CASES.items() if c.hf_model_type and "unshared" not in n)


@pytest.mark.parametrize("name", HF_EXPORTABLE)
def test_hf_export_loads_in_transformers_and_back(name, tmp_path):
    case = CASES[name]
    first = case.build()
    first.save_weights_as_hf(tmp_path)
    source, _, _, wanted = HF_CASES[name]
    hf_model = (
        hf_class(CHECKPOINTS[source][0])
        .from_pretrained(tmp_path, attn_implementation="eager")
        .eval()
    )
    assert (
        max_diff(hf_outputs(hf_model, case.hf_model_type, case.inputs, wanted), case.expected)
        <= case.atol
    )
    assert_same_weights(first, case.build(checkpoint_path=tmp_path, config_path=tmp_path))


@pytest.mark.spread
@pytest.mark.parametrize("name", FAMILY_CASES)
def test_keras_save_and_load(name, tmp_path):
    case = CASES[name]
    model = case.build().model
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert max_diff(outputs(loaded, case.inputs), outputs(model, case.inputs)) <= 1e-6


def _gradients(model, inputs):
    """Gradients of sum(outputs^2) wrt every trainable weight (eager)."""

    backend = keras.backend.backend()
    variables = model.trainable_variables
    if backend == "jax":
        import jax

        values = [v.value for v in variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss(values):
            y, _ = model.stateless_call(values, non_trainable, inputs)
            y = y if isinstance(y, (list, tuple)) else [y]
            return sum(keras.ops.sum(t**2) for t in y)

        return [np.asarray(g) for g in jax.grad(loss)(values)]
    if backend == "torch":
        y = model(inputs, training=False)
        y = y if isinstance(y, (list, tuple)) else [y]
        total = sum((t**2).sum() for t in y)
        total.backward()
        return [v.value.grad.detach().cpu().numpy() for v in variables]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        y = model(inputs, training=False)
        y = y if isinstance(y, (list, tuple)) else [y]
        total = sum(tf.reduce_sum(t**2) for t in y)
    return [np.asarray(tf.convert_to_tensor(g)) for g in tape.gradient(total, variables)]


@pytest.mark.spread
@pytest.mark.parametrize("name", FAMILY_CASES)
def test_recompute_gives_the_same_gradients(name):
    case = CASES[name]
    plain = case.build(recompute=False).model
    recomputed = case.build(recompute=True).model
    assert max_diff(outputs(recomputed, case.inputs), outputs(plain, case.inputs)) <= 1e-5
    a, b = _gradients(plain, case.inputs), _gradients(recomputed, case.inputs)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


@pytest.mark.spread
@pytest.mark.parametrize("name", FAMILY_CASES)
@pytest.mark.parametrize("application", ["lm", "unilm"])
def test_masks_hide_the_forbidden_tokens(name, application):
    case = CASES[name]
    transformer = build_transformer_model(
        case.config_path,
        case.checkpoint_path,
        model=case.model,
        application=application,
        with_mlm="linear",
        return_keras_model=False,
    )
    ids, segments = (np.array(x[:1]) for x in case.inputs)
    length = int((ids[0] != 0).sum())
    cut = length // 2
    if application == "unilm":
        segments = segments.copy()
        segments[0, :] = 0
        segments[0, cut:length] = 1
    changed = ids.copy()
    changed[0, length - 1] = 1 + changed[0, length - 1] % 5  # the last real token
    before = outputs(transformer.model, [ids, segments])[-1]
    after = outputs(transformer.model, [changed, segments])[-1]
    # positions before the changed one cannot see it (lm: all earlier ones;
    # unilm: the source and the earlier target tokens)
    np.testing.assert_allclose(after[0, : length - 1], before[0, : length - 1], atol=1e-6)
    assert np.max(np.abs(after[0, length - 1] - before[0, length - 1])) > 1e-4


def test_layerwise_multipliers_find_every_familys_blocks():
    from nlp4keras.optimizers import layerwise_lr_multipliers

    for name in FAMILY_CASES:
        transformer = CASES[name].build()
        schedule = layerwise_lr_multipliers(transformer, decay=0.5)
        blocks = transformer.block_layer_names()
        assert blocks and all(blocks)
        if not transformer.shared_blocks:
            first = blocks[0][0]
            assert any(first in key for key in schedule), (name, schedule)


@pytest.mark.spread
@pytest.mark.parametrize("name", FAMILY_CASES)
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_close_to_float32(name, policy):
    """Within 8 unit roundoffs (relative, whole output) of the float32
    reference: each of the 2-3 blocks rounds its matmuls, residual and norm
    (O(u) each); a lost mask or an overflow would be O(1)."""
    from nlp4keras.training import mixed_precision

    case = CASES[name]
    with mixed_precision(policy):
        model = case.build().model
    unit = {"mixed_bfloat16": 2.0**-8, "mixed_float16": 2.0**-11}[policy]
    for got, expected in zip(outputs(model, case.inputs), case.expected, strict=True):
        got = np.asarray(got, dtype="float64")
        assert np.all(np.isfinite(got))
        error = np.linalg.norm(got - expected) / np.linalg.norm(expected)
        assert error <= 8 * unit, (name, policy, error)


@pytest.mark.parametrize(
    "model, kwargs, message",
    [
        ("electra", dict(with_pool=True), "has no pooler"),
        ("roformer_v2", dict(with_nsp=True), "has no pooler"),
        ("gau_alpha", dict(with_pool=True), "has no pooler"),
        ("roformer_v2", dict(layer_norm_cond=4), "no scale or offset to condition"),
        ("gau_alpha", dict(layer_norm_cond=4), "no scale or offset to condition"),
        ("albert", dict(num_hidden_groups=2), "num_hidden_groups=2 is not supported"),
    ],
)
def test_unsupported_combinations_raise(model, kwargs, message):
    sizes = dict(
        vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=8, hidden_act="gelu",
    )  # fmt: skip
    with pytest.raises((ValueError, NotImplementedError), match=message):
        build_transformer_model(model=model, **sizes, **kwargs)
