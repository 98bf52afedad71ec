"""T5's checkpoint layout: mesh-TF (Google) names as bert4keras mapped them,
and HF `t5` / `mt5` names.

Versions differ in names only: t5.1.1 and mt5.1.1 have a gated feed-forward
(`wi_0`, `wi_1`) and an untied LM head (`decoder/logits/kernel`, HF
`lm_head`); mt5.1.1 says `rms_norm` where the others say `layer_norm`
(the final norms too). Mesh-TF stores attention projections as [in, out]
under names without `/kernel`, and the relative attention bias as
[heads, buckets]; HF stores the bias as [buckets, heads], as Keras does.
"""

import functools

from nlp4keras.checkpoints.layout import CheckpointLayout, dense, tensor

VERSIONS = ("t5.1.0", "t5.1.1", "mt5.1.1")


def _stack_layers(stack, version):
    """The layers of the encoder or decoder stack ('encoder' / 'decoder')."""
    name = stack.capitalize()
    norm = "rms_norm" if version == "mt5.1.1" else "layer_norm"
    inputs = ("wi",) if version == "t5.1.0" else ("wi_0", "wi_1")
    parts = [("MultiHeadSelfAttention", "SelfAttention")]
    if stack == "decoder":
        parts.append(("MultiHeadCrossAttention", "EncDecAttention"))
    parts.append(("FeedForward", "DenseReluDense"))
    layers = {}
    for n, (part, module) in enumerate(parts):
        google = f"{stack}/block_{{i:03d}}/layer_{n:03d}/"
        hf = f"{stack}.block.{{i}}.layer.{n}."
        weights = []
        if part == "FeedForward":
            for projection in inputs + ("wo",):
                weights += dense(
                    google + f"{module}/{projection}", hf + f"{module}.{projection}", False
                )
        else:
            for projection in "qkvo":
                weights += tensor(
                    google + f"{module}/{projection}",
                    hf + f"{module}.{projection}.weight",
                    hf_transposed=True,
                )
        layers[f"{name}-Transformer-{{i}}-{part}"] = weights
        layers[f"{name}-Transformer-{{i}}-{part}-Norm"] = tensor(
            google + f"{norm}/scale", hf + "layer_norm.weight"
        )
    layers[f"{name}-Embedding-Relative-Position"] = tensor(
        f"{stack}/block_000/layer_000/SelfAttention/relative_attention_bias",
        f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        transposed=True,
        hf_transposed=True,
    )
    final = "rms_norm" if version == "mt5.1.1" else "final_layer_norm"
    layers[f"{name}-Output-Norm"] = tensor(
        f"{stack}/{final}/scale", f"{stack}.final_layer_norm.weight"
    )
    return layers


@functools.lru_cache(maxsize=None)
def t5_layout(version):
    """The CheckpointLayout of a T5 version (see VERSIONS)."""
    layers = {"Embedding-Token": tensor("shared/embedding", "shared.weight", vocab=True)}
    layers.update(_stack_layers("encoder", version))
    layers.update(_stack_layers("decoder", version))
    heads = {}
    ignored = [
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
        # HF keeps (and ignores) a cross-attention bias some old files hold
        "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
    ]
    if version == "t5.1.0":
        ignored.append("lm_head.weight")  # tied to shared.weight
    else:
        heads["Decoder-Output-LM"] = dense("decoder/logits", "lm_head", bias=False, vocab_axis=1)
    return CheckpointLayout(layers=layers, heads=heads, ignored=ignored)
