"""Test cases for the families transformers does not have (NEZHA, RoFormerV2,
GAU-α): tiny random Google-layout TF checkpoints + bert_config.json, inputs
with right padding, and the outputs of the numpy reference forwards
(`numpy_reference`, written independently of nlp4keras).

Every weight is perturbed (biases ~N(0, 0.2), LayerNorm/ScaleOffset gammas
~1 + N(0, 0.2), kernels ~N(0, 1/fan_in)) so that a missed bias, norm or gamma
shows. Each builder writes under `folder`, one sub-folder per checkpoint
(`<folder>/<sub>/bert_config.json` and the prefix `<folder>/<sub>/model.ckpt`).
"""

import json
import os

import numpy as np

from families.case import FamilyCase, perturbed
from families.numpy_reference import gau_alpha_forward, nezha_forward, roformer_v2_forward
from nlp4keras.checkpoints.tf_bundle import write_tf_checkpoint

# tiny odd sizes: head size 10 (even, for rotary), GAU key size 16
VOCAB, HIDDEN, HEADS, INTERMEDIATE, LAYERS, SEGMENTS = 61, 30, 3, 46, 2, 2
GAU_KEY_SIZE = 16


def bert_weights(rng, config, bias=True, norms=True, pooler=True, mlm_head=True):
    """Google BERT names (no position embeddings). bias/norms=False drops every
    bias and LayerNorm (RoFormerV2); pooler / mlm_head add bert/pooler and
    cls/predictions."""
    v, h, i = config["vocab_size"], config["hidden_size"], config["intermediate_size"]
    w = {
        "bert/embeddings/word_embeddings": perturbed(rng, (v, h)),
        "bert/embeddings/token_type_embeddings": perturbed(
            rng, (config["type_vocab_size"], h), 0.5
        ),
    }

    def linear(name, fan_in, fan_out, with_bias=bias):
        w[name + "/kernel"] = perturbed(rng, (fan_in, fan_out), fan_in**-0.5)
        if with_bias:
            w[name + "/bias"] = perturbed(rng, (fan_out,))

    def norm(name, with_norm=norms):
        if with_norm:
            w[name + "/gamma"] = perturbed(rng, (h,), around=1.0)
            w[name + "/beta"] = perturbed(rng, (h,))

    norm("bert/embeddings/LayerNorm")
    for layer in range(config["num_hidden_layers"]):
        p = f"bert/encoder/layer_{layer}"
        for part in ("query", "key", "value"):
            linear(f"{p}/attention/self/{part}", h, h)
        linear(p + "/attention/output/dense", h, h)
        norm(p + "/attention/output/LayerNorm")
        linear(p + "/intermediate/dense", h, i)
        linear(p + "/output/dense", i, h)
        norm(p + "/output/LayerNorm")
    if pooler:
        linear("bert/pooler/dense", h, h, with_bias=True)
    if mlm_head:
        linear("cls/predictions/transform/dense", h, h, with_bias=True)
        norm("cls/predictions/transform/LayerNorm", with_norm=True)
        w["cls/predictions/output_bias"] = perturbed(rng, (v,))
    return w


def gau_alpha_weights(rng, config):
    """GAU-α names (ZhuiyiTechnology/GAU-alpha models.py): no biases, no betas."""
    v, h = config["vocab_size"], config["hidden_size"]
    e, s = config["intermediate_size"], config["attention_key_size"]
    w = {
        "bert/embeddings/word_embeddings": perturbed(rng, (v, h)),
        "bert/embeddings/token_type_embeddings": perturbed(
            rng, (config["type_vocab_size"], h), 0.5
        ),
    }
    for layer in range(config["num_hidden_layers"]):
        p = f"GAU_alpha/encoder/layer_{layer}/gau"
        w[p + "/i_dense/kernel"] = perturbed(rng, (h, 2 * e + s), h**-0.5)
        w[p + "/o_dense/kernel"] = perturbed(rng, (e, h), e**-0.5)
        w[p + "/q_scaleoffset/gamma"] = perturbed(rng, (s,), around=1.0)
        w[p + "/k_scaleoffset/gamma"] = perturbed(rng, (s,), around=1.0)
    return w


def padded_inputs(rng, lengths, length, vocab):
    """[token_ids, segment_ids] int32: row r holds lengths[r] random ids in
    1..vocab-1 (segment 0 then 1) and is right-padded with id 0 / segment 0."""
    ids = np.zeros((len(lengths), length), np.int32)
    segments = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, vocab, n)
        segments[row, max(1, n // 2) : n] = 1
    return [ids, segments]


def write_checkpoint(folder, config, weights):
    """bert_config.json + a TF checkpoint in `folder`; (config_path, prefix)."""
    os.makedirs(folder, exist_ok=True)
    config_path = os.path.join(folder, "bert_config.json")
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)
    prefix = os.path.join(folder, "model.ckpt")
    write_tf_checkpoint(prefix, weights)
    return config_path, prefix


def _base_config(hidden_act, **extra):
    config = {
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": hidden_act,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": SEGMENTS,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
    }
    config.update(extra)
    return config


def nezha_cases(folder):
    """nezha: no head, K=64 in the config (length 11 < K: no clipping, but the
    table row is j-i+K, so K still matters). nezha-rel3-*: K=3 so clipping
    happens; MLM logits, and pooled + MLM. nezha-default-rel: the config has no
    max_relative_position, which means 64."""
    rng = np.random.default_rng(1909_00204)
    cases = []
    # (sub-folder, config K (None: key absent), [(case name, build kwargs)])
    plans = [
        ("rel64", 64, [("nezha", {})]),
        (
            "rel3",
            3,
            [
                ("nezha-rel3-mlm", {"with_mlm": "linear"}),
                ("nezha-rel3-pool-mlm", {"with_pool": True, "with_mlm": "linear"}),
            ],
        ),
        ("default_rel", None, [("nezha-default-rel", {})]),
    ]
    for sub, k, runs in plans:
        extra = {"use_relative_position": True}
        if k is not None:
            extra["max_relative_position"] = k
        config = _base_config("gelu", **extra)
        weights = bert_weights(rng, config)
        config_path, prefix = write_checkpoint(os.path.join(folder, sub), config, weights)
        inputs = padded_inputs(rng, [11, 8, 5], 11, VOCAB)
        for name, kwargs in runs:
            expected = nezha_forward(weights, config, *inputs, **kwargs)
            cases.append(
                FamilyCase(name, "nezha", config_path, prefix, inputs, expected, dict(kwargs))
            )
    return cases


def roformer_v2_cases(folder):
    """roformer_v2: relu FFN, no head; roformer_v2-gelu-mlm: erf-GELU FFN and
    tied-embedding MLM logits."""
    rng = np.random.default_rng(2022_03_21)
    cases = []
    plans = [
        ("relu", "relu", [10, 6], 10, [("roformer_v2", {})]),
        ("gelu", "gelu", [9, 9, 3], 9, [("roformer_v2-gelu-mlm", {"with_mlm": "linear"})]),
    ]
    for sub, act, lengths, length, runs in plans:
        config = _base_config(act)
        weights = bert_weights(rng, config, bias=False, norms=False, pooler=False, mlm_head=False)
        config_path, prefix = write_checkpoint(os.path.join(folder, sub), config, weights)
        inputs = padded_inputs(rng, lengths, length, VOCAB)
        for name, kwargs in runs:
            expected = roformer_v2_forward(weights, config, *inputs, **kwargs)
            cases.append(
                FamilyCase(name, "roformer_v2", config_path, prefix, inputs, expected, dict(kwargs))
            )
    return cases


def gau_alpha_config(full=True):
    """The keys of the released chinese_GAU-alpha-char_L-24_H-768 bert_config.json
    (hidden_act, hidden_size, hidden_dropout_prob, attention_probs_dropout_prob,
    num_attention_heads=1, attention_key_size, intermediate_size,
    num_hidden_layers, type_vocab_size, vocab_size), tiny values; full=True
    adds max_position_embeddings and layer_norm_eps."""
    config = {
        "hidden_act": "swish",
        "hidden_size": HIDDEN,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "num_attention_heads": 1,
        "attention_key_size": GAU_KEY_SIZE,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "type_vocab_size": SEGMENTS,
        "vocab_size": VOCAB,
    }
    if full:
        config.update(max_position_embeddings=512, layer_norm_eps=1e-12)
    return config


def gau_alpha_cases(folder):
    """gau_alpha: the released config's key set exactly, no head;
    gau_alpha-mlm: full Google keys, tied MLM logits. Length 20 with 20, 17
    and 9 valid tokens, so softmax_plus' log(max(n, 16)) sees n > 16 (and
    n != padded length) as well as the floor of 16."""
    rng = np.random.default_rng(9052)
    cases = []
    plans = [
        ("released_keys", False, [20, 17, 9], [("gau_alpha", {})]),
        ("full_keys", True, [17, 20, 9], [("gau_alpha-mlm", {"with_mlm": "linear"})]),
    ]
    for sub, full, lengths, runs in plans:
        config = gau_alpha_config(full)
        weights = gau_alpha_weights(rng, config)
        config_path, prefix = write_checkpoint(os.path.join(folder, sub), config, weights)
        inputs = padded_inputs(rng, lengths, 20, VOCAB)
        for name, kwargs in runs:
            expected = gau_alpha_forward(weights, config, *inputs, **kwargs)
            cases.append(
                FamilyCase(name, "gau_alpha", config_path, prefix, inputs, expected, dict(kwargs))
            )
    return cases
