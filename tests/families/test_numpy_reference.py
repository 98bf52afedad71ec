"""Self-check of the numpy reference forwards (numpy_reference.py) that the
NEZHA / RoFormerV2 / GAU-α acceptance cases are computed with.

Where an outside implementation exists it is the judge: RoFormer v1 (BERT +
rotary, the attention and RoPE code RoFormerV2 and GAU-α share) against
transformers.RoFormerModel. The rest is checked against the formulas written
out element by element, and the case builders against what they wrote."""

import json
import math
import os

import numpy as np
import pytest

from families import numpy_reference as ref
from families.numpy_cases import (
    _base_config,
    bert_weights,
    gau_alpha_cases,
    gau_alpha_config,
    gau_alpha_weights,
    nezha_cases,
    padded_inputs,
    roformer_v2_cases,
)
from nlp4keras.checkpoints.tf_bundle import TFCheckpointReader

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

TINY = {
    "vocab_size": 61,
    "hidden_size": 30,
    "num_hidden_layers": 2,
    "num_attention_heads": 3,
    "intermediate_size": 46,
    "hidden_act": "gelu",
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
}


# ------------------------------------------------- RoFormer v1 vs transformers


def _hf_roformer(weights, config):
    """transformers.RoFormerModel holding `weights` (Google names), eval mode."""
    import torch
    from transformers import RoFormerConfig, RoFormerModel

    hf_config = RoFormerConfig(
        vocab_size=config["vocab_size"],
        embedding_size=config["hidden_size"],
        hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        hidden_act=config["hidden_act"],
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=64,
        type_vocab_size=config["type_vocab_size"],
        layer_norm_eps=config["layer_norm_eps"],
        rotary_value=False,
    )
    model = RoFormerModel(hf_config).eval()
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    state = {
        "embeddings.word_embeddings.weight": t(weights["bert/embeddings/word_embeddings"]),
        "embeddings.token_type_embeddings.weight": t(
            weights["bert/embeddings/token_type_embeddings"]
        ),
        "embeddings.LayerNorm.weight": t(weights["bert/embeddings/LayerNorm/gamma"]),
        "embeddings.LayerNorm.bias": t(weights["bert/embeddings/LayerNorm/beta"]),
    }
    pairs = {
        "attention.self.query": "attention/self/query",
        "attention.self.key": "attention/self/key",
        "attention.self.value": "attention/self/value",
        "attention.output.dense": "attention/output/dense",
        "intermediate.dense": "intermediate/dense",
        "output.dense": "output/dense",
    }
    for i in range(config["num_hidden_layers"]):
        g = f"bert/encoder/layer_{i}/"
        h = f"encoder.layer.{i}."
        for hf_name, google in pairs.items():
            state[h + hf_name + ".weight"] = t(weights[g + google + "/kernel"].T)
            state[h + hf_name + ".bias"] = t(weights[g + google + "/bias"])
        for hf_name, google in (
            ("attention.output.LayerNorm", "attention/output/LayerNorm"),
            ("output.LayerNorm", "output/LayerNorm"),
        ):
            state[h + hf_name + ".weight"] = t(weights[g + google + "/gamma"])
            state[h + hf_name + ".bias"] = t(weights[g + google + "/beta"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    # only the fixed sinusoid table is not ours
    assert missing == ["encoder.embed_positions.weight"], missing
    table = model.encoder.embed_positions.weight.detach().numpy()
    assert abs(table[3, 0] - math.sin(3.0)) < 1e-6 and abs(table[3, 5] - math.cos(3.0)) < 1e-6
    return model


@pytest.fixture(scope="module")
def roformer_v1():
    """(weights, inputs, transformers' last hidden state)."""
    import torch

    rng = np.random.default_rng(8265)
    weights = bert_weights(rng, TINY, pooler=False, mlm_head=False)
    ids, segments = padded_inputs(rng, [10, 6, 3], 10, TINY["vocab_size"])
    model = _hf_roformer(weights, TINY)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out = model(
                input_ids=torch.from_numpy(ids).long(),
                token_type_ids=torch.from_numpy(segments).long(),
                attention_mask=torch.from_numpy((ids != 0).astype(np.int64)),
            ).last_hidden_state.numpy()
    finally:
        torch.set_num_threads(threads)
    return weights, (ids, segments), out


def test_roformer_v1_matches_transformers(roformer_v1):
    weights, inputs, hf_out = roformer_v1
    (ours,) = ref.roformer_forward(weights, TINY, *inputs)
    assert ours.shape == hf_out.shape == (3, 10, 30)
    # padded query positions included
    np.testing.assert_allclose(ours, hf_out, rtol=0, atol=1e-5)


def _half_split_rope(x, positions=None):
    """RoPE with GPT-NeoX pairing (t, t + d/2): the wrong convention here."""
    length, d = x.shape[1], x.shape[-1]
    theta = np.arange(length)[:, None] * 10000.0 ** (-2.0 * np.arange(d // 2) / d)
    theta = theta.reshape((1, length) + (1,) * (x.ndim - 3) + (d // 2,))
    a, b = x[..., : d // 2], x[..., d // 2 :]
    return np.concatenate(
        [a * np.cos(theta) - b * np.sin(theta), b * np.cos(theta) + a * np.sin(theta)], -1
    )


def test_roformer_v1_comparison_can_fail(roformer_v1, monkeypatch):
    """The comparison sees a missing rotary and the other pair convention."""
    weights, inputs, hf_out = roformer_v1
    (no_rotary,) = ref.roformer_forward(weights, TINY, *inputs, rotary=False)
    assert np.abs(no_rotary - hf_out).max() > 1e-2
    monkeypatch.setattr(ref, "rope", _half_split_rope)
    (half_split,) = ref.roformer_forward(weights, TINY, *inputs)
    assert np.abs(half_split - hf_out).max() > 1e-2
    monkeypatch.undo()
    # and so does the padding mask
    monkeypatch.setattr(ref, "masked_softmax", lambda scores, key_mask: ref.softmax(scores))
    (unmasked,) = ref.roformer_forward(weights, TINY, *inputs)
    assert np.abs(unmasked[1, :6] - hf_out[1, :6]).max() > 1e-2


# ------------------------------------------------------ pieces, by the formula


def test_rope_rotates_each_pair_by_position_angle():
    rng = np.random.default_rng(0)
    d, length = 10, 7
    x = rng.standard_normal((2, length, 3, d))
    y = ref.rope(x)
    for m in range(length):
        for t in range(d // 2):
            angle = m / 10000 ** (2 * t / d)
            rot = np.array(
                [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
            )
            want = np.einsum("ij,bhj->bhi", rot, x[:, m, :, 2 * t : 2 * t + 2])
            np.testing.assert_allclose(y[:, m, :, 2 * t : 2 * t + 2], want, atol=1e-12)
    # scores depend on the relative position only
    q, k = rng.standard_normal((2, 1, 1, d))
    seq = lambda v, n: np.repeat(v, n, axis=1)
    rq, rk = ref.rope(seq(q, 12)), ref.rope(seq(k, 12))
    scores = rq[0] @ rk[0].T
    for shift in range(1, 5):
        np.testing.assert_allclose(np.diagonal(scores, shift)[1:], np.diagonal(scores, shift)[:-1])


def test_sinusoid_and_nezha_relative_table():
    d, k, length = 10, 3, 8
    table = ref.sinusoid(np.arange(2 * k + 1), d)
    for p in range(2 * k + 1):
        for t in range(d // 2):
            assert table[p, 2 * t] == pytest.approx(math.sin(p / 10000 ** (2 * t / d)), abs=1e-12)
            assert table[p, 2 * t + 1] == pytest.approx(
                math.cos(p / 10000 ** (2 * t / d)), abs=1e-12
            )
    rel = ref.nezha_relative_table(length, k, d)
    for i in range(length):
        for j in range(length):
            np.testing.assert_array_equal(rel[i, j], table[min(max(j - i, -k), k) + k])
    np.testing.assert_array_equal(rel[0, 7], table[2 * k])  # clipped at +K
    np.testing.assert_array_equal(rel[7, 0], table[0])  # clipped at -K
    np.testing.assert_array_equal(rel[4, 4], table[k])


def test_nezha_attention_matches_per_element_loops():
    rng = np.random.default_rng(1)
    batch, length, hidden, heads, k = 2, 6, 12, 2, 2
    d = hidden // heads
    w = {}
    for name in ("self/query", "self/key", "self/value", "output/dense"):
        w[f"att/{name}/kernel"] = rng.standard_normal((hidden, hidden)) / hidden**0.5
        w[f"att/{name}/bias"] = 0.2 * rng.standard_normal(hidden)
    x = rng.standard_normal((batch, length, hidden))
    key_mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], bool)
    rel = ref.nezha_relative_table(length, k, d)
    got = ref.multi_head_attention(x, w, "att", heads, key_mask, relative=rel)

    E = ref.sinusoid(np.arange(2 * k + 1), d)
    lin = lambda v, n: v @ w[f"att/{n}/kernel"] + w[f"att/{n}/bias"]
    want = np.zeros_like(x)
    for b in range(batch):
        q, kk, v = lin(x[b], "self/query"), lin(x[b], "self/key"), lin(x[b], "self/value")
        heads_out = np.zeros((length, hidden))
        for h in range(heads):
            s = slice(h * d, (h + 1) * d)
            for i in range(length):
                valid = [j for j in range(length) if key_mask[b, j]]
                r = {j: E[min(max(j - i, -k), k) + k] for j in valid}
                logits = np.array([q[i, s] @ (kk[j, s] + r[j]) / math.sqrt(d) for j in valid])
                p = np.exp(logits - logits.max())
                p /= p.sum()
                heads_out[i, s] = sum(pj * (v[j, s] + r[j]) for pj, j in zip(p, valid))
        want[b] = lin(heads_out, "output/dense")
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_rms_norm_and_softmax_plus():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 7)) * 3 + 1
    y = ref.rms_norm(x, 1e-12)
    for v, out in zip(x.reshape(-1, 7), y.reshape(-1, 7)):
        np.testing.assert_allclose(out, v / math.sqrt(sum(e * e for e in v) / 7 + 1e-12))
    np.testing.assert_allclose((y**2).mean(-1), 1.0)  # no centring: mean is not 0
    assert np.abs(y.mean(-1)).min() > 1e-3

    length = 24
    a = rng.standard_normal((2, 3, length))
    key_mask = np.zeros((2, 1, length), bool)
    key_mask[0, 0, :5] = True  # n = 5 -> floor at 16
    key_mask[1, 0, :20] = True  # n = 20
    got = ref.softmax_plus(a, key_mask)
    for b, n in ((0, 5), (1, 20)):
        scale = math.log(max(n, 16)) / math.log(512)
        for i in range(3):
            e = [math.exp(a[b, i, j] * scale) for j in range(n)]
            np.testing.assert_allclose(got[b, i, :n], np.array(e) / sum(e), atol=1e-12)
            assert (got[b, i, n:] == 0).all()


# -------------------------------------------------------------- the forwards


def _forwards():
    rng = np.random.default_rng(3)
    nezha = _base_config("gelu", max_relative_position=3)
    v2 = _base_config("relu")
    gau = gau_alpha_config()
    return [
        (ref.nezha_forward, nezha, bert_weights(rng, nezha), {"with_pool": True, "with_mlm": True}),
        (
            ref.roformer_v2_forward,
            v2,
            bert_weights(rng, v2, bias=False, norms=False, pooler=False, mlm_head=False),
            {"with_mlm": "linear"},
        ),
        (ref.gau_alpha_forward, gau, gau_alpha_weights(rng, gau), {}),
    ]


@pytest.mark.parametrize("index", range(3), ids=["nezha", "roformer_v2", "gau_alpha"])
def test_more_padding_leaves_valid_positions_unchanged(index):
    """Pads are masked as keys (and GAU-α's n counts valid keys, not the
    padded length): two more padding columns and different segment ids at
    the pads change nothing at the valid positions."""
    forward, config, weights, kwargs = _forwards()[index]
    rng = np.random.default_rng(4)
    ids, segments = padded_inputs(rng, [18, 9], 18, config["vocab_size"])
    out = forward(weights, config, ids, segments)[0]
    ids2 = np.pad(ids, ((0, 0), (0, 2)))
    segments2 = np.pad(segments, ((0, 0), (0, 2)), constant_values=1)
    segments2[1, 9:] = 1
    out2 = forward(weights, config, ids2, segments2)[0]
    np.testing.assert_allclose(out2[0, :18], out[0], atol=1e-12)
    np.testing.assert_allclose(out2[1, :9], out[1, :9], atol=1e-12)
    assert np.abs(out2[1, 9:18] - out[1, 9:]).max() > 1e-3  # pad queries do see segments
    if kwargs:  # heads: shapes and order
        outs = forward(weights, config, ids, segments, **kwargs)
        if "with_pool" in kwargs:
            assert [o.shape for o in outs] == [(2, 30), (2, 18, 61)]
            np.testing.assert_allclose(outs[1].sum(-1), 1.0, atol=1e-6)
        else:
            assert [o.shape for o in outs] == [(2, 18, 61)]


# -------------------------------------------------------------------- the cases

_NAMES = {
    "nezha": ["nezha", "nezha-rel3-mlm", "nezha-rel3-pool-mlm", "nezha-default-rel"],
    "roformer_v2": ["roformer_v2", "roformer_v2-gelu-mlm"],
    "gau_alpha": ["gau_alpha", "gau_alpha-mlm"],
}
_BUILDERS = {"nezha": nezha_cases, "roformer_v2": roformer_v2_cases, "gau_alpha": gau_alpha_cases}
_FORWARDS = {
    "nezha": ref.nezha_forward,
    "roformer_v2": ref.roformer_v2_forward,
    "gau_alpha": ref.gau_alpha_forward,
}


@pytest.mark.parametrize("family", list(_BUILDERS))
def test_cases_are_what_they_say(family, tmp_path):
    """Written checkpoint + config reproduce `expected`; float32 arithmetic
    stays well inside atol; inputs are int32 with right padding."""
    cases = _BUILDERS[family](str(tmp_path))
    assert [c.name for c in cases] == _NAMES[family]
    for case in cases:
        assert case.model == family and case.hf_model_type is None
        assert os.path.basename(case.config_path) == "bert_config.json"
        assert case.checkpoint_path.endswith("model.ckpt")
        ids, segments = case.inputs
        assert ids.dtype == segments.dtype == np.int32 and ids.shape == segments.shape
        assert (ids[:, -1] == 0).any() and (ids[:, 0] != 0).all()
        lengths = (ids != 0).sum(1)
        assert all((ids[r, : lengths[r]] != 0).all() for r in range(len(ids)))
        with open(case.config_path) as f:
            config = json.load(f)
        reader = TFCheckpointReader(case.checkpoint_path)
        weights = {name: reader.read(name) for name in reader.keys()}
        reader.close()
        assert all(v.dtype == np.float32 for v in weights.values())
        for name, value in weights.items():  # every weight perturbed
            assert value.std() > 0.05 or value.size == 1, name
        outs32 = _FORWARDS[family](
            weights, config, *case.inputs, dtype=np.float32, **case.build_kwargs
        )
        outs64 = _FORWARDS[family](weights, config, *case.inputs, **case.build_kwargs)
        assert len(case.expected) == len(outs64)
        for exp, o64, o32 in zip(case.expected, outs64, outs32):
            assert exp.dtype == np.float32 and np.isfinite(exp).all()
            np.testing.assert_array_equal(exp, o64)
            assert np.abs(o32 - o64).max() < case.atol / 5
        want = [(len(ids), config["hidden_size"])] if case.build_kwargs.get("with_pool") else []
        if case.build_kwargs.get("with_mlm"):
            want.append(ids.shape + (config["vocab_size"],))
        assert [e.shape for e in case.expected] == (want or [ids.shape + (config["hidden_size"],)])


def test_case_configs_and_names(tmp_path):
    cases = {c.name: c for b in _BUILDERS.values() for c in b(str(tmp_path / b.__name__))}

    def config(name):
        with open(cases[name].config_path) as f:
            return json.load(f)

    keys = lambda name: set(TFCheckpointReader(cases[name].checkpoint_path).keys())

    assert config("nezha")["max_relative_position"] == 64
    assert config("nezha-rel3-mlm")["max_relative_position"] == 3
    assert cases["nezha-rel3-mlm"].inputs[0].shape[1] > 3
    assert "max_relative_position" not in config("nezha-default-rel")
    assert {
        "bert/embeddings/word_embeddings",
        "bert/embeddings/token_type_embeddings",
        "bert/embeddings/LayerNorm/gamma",
        "bert/encoder/layer_1/attention/self/key/bias",
        "bert/encoder/layer_1/output/LayerNorm/beta",
        "bert/pooler/dense/kernel",
        "cls/predictions/transform/LayerNorm/gamma",
        "cls/predictions/output_bias",
    } <= keys("nezha")
    assert not any("position_embeddings" in k for k in keys("nezha"))

    v2 = keys("roformer_v2")
    assert not any(k.endswith(("bias", "beta", "gamma")) for k in v2)
    assert len(v2) == 2 + 2 * 6 and "bert/encoder/layer_0/attention/output/dense/kernel" in v2

    assert set(config("gau_alpha")) == {
        "hidden_act",
        "hidden_size",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "num_attention_heads",
        "attention_key_size",
        "intermediate_size",
        "num_hidden_layers",
        "type_vocab_size",
        "vocab_size",
    }
    assert config("gau_alpha-mlm")["layer_norm_eps"] == 1e-12
    assert keys("gau_alpha") == {
        "bert/embeddings/word_embeddings",
        "bert/embeddings/token_type_embeddings",
    } | {
        f"GAU_alpha/encoder/layer_{i}/gau/{n}"
        for i in range(2)
        for n in ("i_dense/kernel", "o_dense/kernel", "q_scaleoffset/gamma", "k_scaleoffset/gamma")
    }
    lengths = (cases["gau_alpha"].inputs[0] != 0).sum(1)
    assert lengths.max() > 16 and lengths.min() < 16 and (lengths < 20).any()
