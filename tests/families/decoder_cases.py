"""Reference cases for the decoder-only families: gpt, gpt2 and llama against
HF transformers (tiny perturbed checkpoints saved with `save_pretrained`,
eager attention, float32 logits at every position), gpt2_ml against a numpy
forward written from its definition (bert4keras' GPT2_ML block order).

Sizes are odd on purpose (vocab 61, hidden 36); llama uses grouped-query
attention (6 query heads, 2 kv heads) and a non-default rope_theta. Token
ids include 0: decoder families mask no padding id."""

import math
import os
from pathlib import Path

import numpy as np

from families.case import FamilyCase
from families.numpy_cases import write_checkpoint
from families.numpy_reference import gelu, layer_norm, masked_softmax

VOCAB, HIDDEN, LENGTH = 61, 36, 13

#: case name -> (HF config class, HF model class, config kwargs, torch seed)
HF_DECODERS = {
    "llama": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(
            intermediate_size=50,
            num_hidden_layers=2,
            num_attention_heads=6,
            num_key_value_heads=2,
            rms_norm_eps=1e-5,
            rope_theta=500.0,
            max_position_embeddings=64,
            tie_word_embeddings=False,
        ),
        201,
    ),
    "llama-tied-mha": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(
            intermediate_size=40,
            num_hidden_layers=2,
            num_attention_heads=3,
            num_key_value_heads=3,
            max_position_embeddings=64,
            tie_word_embeddings=True,
        ),
        202,
    ),
    "gpt2": (
        "GPT2Config",
        "GPT2LMHeadModel",
        dict(n_embd=HIDDEN, n_layer=2, n_head=6, n_positions=40, bos_token_id=1, eos_token_id=2),
        203,
    ),
    "gpt": ("OpenAIGPTConfig", "OpenAIGPTLMHeadModel", dict(n_layer=2, n_head=6), 204),
}
MODEL_NAMES = {"llama": "llama", "llama-tied-mha": "llama", "gpt2": "gpt2", "gpt": "gpt"}


def _transformers(name):
    import transformers

    return getattr(transformers, name)


def _hf_model(name):
    import torch

    config_class, model_class, kwargs, seed = HF_DECODERS[name]
    sizes = {"vocab_size": VOCAB}
    if config_class == "LlamaConfig":
        sizes["hidden_size"] = HIDDEN
    elif config_class == "OpenAIGPTConfig":
        sizes.update(n_embd=HIDDEN, n_positions=40)
    config = _transformers(config_class)(**sizes, **kwargs, attn_implementation="eager")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _transformers(model_class)(config).eval()
        with torch.no_grad():
            for _, parameter in model.named_parameters():
                parameter.add_(torch.randn(parameter.shape) * 0.2)
    return model


def hf_logits(model, ids):
    import torch

    with torch.no_grad():
        return model(torch.tensor(ids, dtype=torch.long)).logits.numpy().astype(np.float32)


def token_ids(seed, batch=3, length=LENGTH, vocab=VOCAB):
    return np.random.default_rng(seed).integers(0, vocab, (batch, length)).astype("int32")


def hf_decoder_cases(folder):
    cases = []
    for name, (_, _, _, seed) in HF_DECODERS.items():
        model = _hf_model(name)
        path = str(Path(folder) / name)
        model.save_pretrained(path)
        ids = token_ids(seed)
        cases.append(
            FamilyCase(
                name=name,
                model=MODEL_NAMES[name],
                config_path=path,
                checkpoint_path=path,
                inputs=[ids],
                expected=[hf_logits(model, ids)],
                build_kwargs={"final_activation": "linear"},
                hf_model_type=model.config.model_type,
            )
        )
    return cases


# ------------------------------------------------------------------ GPT2-ML

GPT2_ML_CONFIG = {
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 44,
    "hidden_act": "gelu",
    "max_position_embeddings": 40,
    "layer_norm_eps": 1e-5,
}


def gpt2_ml_weights(rng, config):
    h, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]

    def normal(*shape, around=0.0):
        return (around + 0.2 * rng.standard_normal(shape)).astype(np.float32)

    weights = {
        "newslm/embeddings/word_embed": normal(v, h),
        "newslm/embeddings/pos_embed": normal(config["max_position_embeddings"], h),
    }
    norms = ["newslm/embeddings/LayerNorm_embed_norm"]
    for i in range(config["num_hidden_layers"]):
        scope = f"newslm/layer{i:02d}/"
        for part in ("query_layer", "key_layer", "value_layer", "context_projection_layer"):
            weights[scope + part + "/kernel"] = normal(h, h)
            weights[scope + part + "/bias"] = normal(h)
        weights[scope + "intermediate/kernel"] = normal(h, f)
        weights[scope + "intermediate/bias"] = normal(f)
        weights[scope + "output/kernel"] = normal(f, h)
        weights[scope + "output/bias"] = normal(h)
        norms += [scope + "LayerNorm_mlp_ln0", scope + "LayerNorm_mlp_ln1"]
    for name in norms:
        weights[name + "/gamma"] = normal(h, around=1.0)
        weights[name + "/beta"] = normal(h)
    return weights


def gpt2_ml_forward(w, config, ids):
    """Logits of bert4keras' GPT2_ML, float64: embeddings + positions, norm;
    per block x = x + att(x); x = ln1(x + ffn(ln0(x))); tied LM head."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]

    def ln(x, name):
        return layer_norm(x, w[name + "/gamma"], w[name + "/beta"], eps)

    def dense(x, name):
        return x @ w[name + "/kernel"] + w[name + "/bias"]

    batch, length = ids.shape
    x = w["newslm/embeddings/word_embed"][ids] + w["newslm/embeddings/pos_embed"][:length]
    x = ln(x, "newslm/embeddings/LayerNorm_embed_norm")
    causal = np.tril(np.ones((length, length), bool))[None, None]
    for i in range(config["num_hidden_layers"]):
        scope = f"newslm/layer{i:02d}/"
        q, k, v = (
            dense(x, scope + part).reshape(batch, length, heads, -1)
            for part in ("query_layer", "key_layer", "value_layer")
        )
        scores = np.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(q.shape[-1])
        context = np.einsum("bhij,bjhd->bihd", masked_softmax(scores, causal), v)
        x = x + dense(context.reshape(batch, length, -1), scope + "context_projection_layer")
        y = gelu(dense(ln(x, scope + "LayerNorm_mlp_ln0"), scope + "intermediate"))
        x = ln(x + dense(y, scope + "output"), scope + "LayerNorm_mlp_ln1")
    return (x @ w["newslm/embeddings/word_embed"].T).astype(np.float32)


def gpt2_ml_cases(folder):
    rng = np.random.default_rng(205)
    weights = gpt2_ml_weights(rng, GPT2_ML_CONFIG)
    config_path, prefix = write_checkpoint(os.fspath(folder), GPT2_ML_CONFIG, weights)
    ids = token_ids(205)
    return [
        FamilyCase(
            name="gpt2_ml",
            model="gpt2_ml",
            config_path=config_path,
            checkpoint_path=prefix,
            inputs=[ids],
            expected=[gpt2_ml_forward(weights, GPT2_ML_CONFIG, ids)],
            build_kwargs={"final_activation": "linear"},
        )
    ]


def all_decoder_cases(folder):
    return hf_decoder_cases(Path(folder) / "hf") + gpt2_ml_cases(Path(folder) / "gpt2_ml")
