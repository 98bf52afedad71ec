"""GPT (OpenAI GPT-1, CDial-GPT: post-norm), GPT-2 (CPM: pre-norm with
`Output-Norm`) and GPT2-ML (its own order: attention, then a norm before
and after the feed-forward). All have learned absolute positions and the
tied LM head. Google names as bert4keras' conversions (`gpt/...`,
`newslm/...`); HF `openai-gpt` / `gpt2` names with their fused Conv1D
`c_attn`."""

from nlp4keras.checkpoints.hf_fused import FusedProjections
from nlp4keras.checkpoints.layout import CheckpointLayout, dense, norm, tensor
from nlp4keras.models.decoder import LanguageModel

#: HF GPT / GPT-2 keep projections as Conv1D and fuse q, k, v in c_attn.
_CONV1D = FusedProjections(
    conv1d=("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
    fused={"attn.c_attn": ("query", "key", "value")},
)


def _gpt_layout(attention_norm, feed_forward_norm, output_norm=None, hf=True, embed=None):
    """bert4keras' `gpt/` names; HF names under `h.{i}.` when hf."""
    scope = "gpt/transformer/layer_{i}/"

    def at(name):
        return ("h.{i}." + name) if hf else None

    attention = []
    for part in ("query", "key", "value"):
        attention += dense(scope + "attention/self/" + part, at("attn.c_attn." + part))
    attention += dense(scope + "attention/output/dense", at("attn.c_proj"))
    token, position = embed or (None, None)
    layers = {
        "Embedding-Token": tensor("gpt/embeddings/word_embeddings", token, vocab=True),
        "Embedding-Position": tensor("gpt/embeddings/position_embeddings", position),
        "Transformer-{i}-MultiHeadSelfAttention": attention,
        "Transformer-{i}-MultiHeadSelfAttention-Norm": norm(scope + attention_norm, at("ln_1")),
        "Transformer-{i}-FeedForward": dense(scope + "intermediate/dense", at("mlp.c_fc"))
        + dense(scope + "output/dense", at("mlp.c_proj")),
        "Transformer-{i}-FeedForward-Norm": norm(scope + feed_forward_norm, at("ln_2")),
    }
    if output_norm:
        layers["Output-Norm"] = norm("gpt/output/LayerNorm", output_norm)
    return CheckpointLayout(
        layers=layers,
        ignored=["h.{i}.attn.bias", "h.{i}.attn.masked_bias", "lm_head.weight", "position_ids"],
        base_prefixes=("transformer.",),
        adapter=_CONV1D,
    )


HF_OPENAI_AFN = ("gelu", "relu", "silu", "swish")
_OPENAI_ACTIVATIONS = {"gelu_new": "gelu", "gelu_tanh": "gelu", "gelu_fast": "gelu"}


class GPT(LanguageModel):
    """OpenAI GPT-1 / CDial-GPT: BERT's post-norm block, no embedding norm."""

    @classmethod
    def fill_defaults(cls, arguments):
        # HF configs leave the feed-forward width out (n_inner null): 4 x hidden.
        hidden = arguments.get("hidden_size")
        if arguments.get("intermediate_size") is None and isinstance(hidden, int):
            arguments["intermediate_size"] = 4 * hidden

    layout = _gpt_layout(
        "attention/output/LayerNorm",
        "output/LayerNorm",
        embed=("tokens_embed.weight", "positions_embed.weight"),
    )
    core_scopes = ("gpt/",)
    family = "gpt"
    hf_model_types = ("openai-gpt",)

    def hf_config(self):
        if _OPENAI_ACTIVATIONS.get(self.hidden_act, self.hidden_act) not in HF_OPENAI_AFN:
            raise NotImplementedError(
                f"HF OpenAI GPT has no activation {self.hidden_act!r} (its 'gelu' is the "
                f"tanh approximation); it knows {', '.join(HF_OPENAI_AFN)}"
            )
        return {
            "model_type": "openai-gpt",
            "architectures": ["OpenAIGPTLMHeadModel"],
            # HF GPT's "gelu" is the tanh approximation; it has no exact GELU
            "afn": _OPENAI_ACTIVATIONS.get(self.hidden_act, self.hidden_act),
            **_gpt_sizes(self),
        }


class GPT2(GPT):
    """GPT-2 / CPM: pre-norm blocks, `Output-Norm` after the last one."""

    norm_position = "pre"
    layout = _gpt_layout(
        "attention/input/LayerNorm",
        "input/LayerNorm",
        output_norm="ln_f",
        embed=("wte.weight", "wpe.weight"),
    )
    core_scopes = ("gpt/",)
    family = "gpt2"
    hf_model_types = ("gpt2",)
    config_requirements = {
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "scale_attn_weights": True,
    }

    def __init__(self, layer_norm_eps=1e-5, **kwargs):
        super().__init__(layer_norm_eps=layer_norm_eps, **kwargs)

    def hf_config(self):
        return {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "activation_function": self.hidden_act,
            "n_inner": self.intermediate_size,
            "tie_word_embeddings": True,
            **_gpt_sizes(self),
        }


def _gpt_sizes(model):
    return {
        "vocab_size": model.vocab_size,
        "n_embd": model.hidden_size,
        "n_layer": model.num_hidden_layers,
        "n_head": model.num_attention_heads,
        "n_positions": model.max_position,
        "layer_norm_epsilon": model.layer_norm_eps,
        "resid_pdrop": model.dropout_rate or 0.0,
        "embd_pdrop": model.dropout_rate or 0.0,
        "attn_pdrop": model.attention_dropout_rate or 0.0,
        "initializer_range": model.initializer_range,
    }


def _gpt2_ml_layout():
    layers = {
        "Embedding-Token": tensor("newslm/embeddings/word_embed", vocab=True),
        "Embedding-Position": tensor("newslm/embeddings/pos_embed"),
        "Embedding-Norm": norm("newslm/embeddings/LayerNorm_embed_norm"),
    }
    scope = "newslm/layer{i:02d}/"
    attention = []
    for part in ("query_layer", "key_layer", "value_layer", "context_projection_layer"):
        attention += dense(scope + part)
    layers["Transformer-{i}-MultiHeadSelfAttention"] = attention
    layers["Transformer-{i}-FeedForward-Norm-0"] = norm(scope + "LayerNorm_mlp_ln0")
    layers["Transformer-{i}-FeedForward"] = dense(scope + "intermediate") + dense(scope + "output")
    layers["Transformer-{i}-FeedForward-Norm-1"] = norm(scope + "LayerNorm_mlp_ln1")
    return CheckpointLayout(layers=layers)


class GPT2_ML(GPT):
    """GPT2-ML (github.com/imcaspar/gpt2-ml): embedding norm; each block is
    x + attention(x), then norm1(y + ffn(norm0(y)))."""

    embedding_norm = True
    hf_model_types = ()
    layout = _gpt2_ml_layout()
    core_scopes = ("newslm/",)
    family = "gpt2_ml"

    def __init__(self, layer_norm_eps=1e-5, **kwargs):
        super().__init__(layer_norm_eps=layer_norm_eps, **kwargs)

    def apply_main_layers(self, inputs, index):
        attention = self.block_name(index, self.attention_part)
        feed_forward = self.block_name(index, "FeedForward")
        x = self.sublayer(inputs, lambda y: self.attention(y, index), attention, norm_position=None)
        x = self.sublayer(
            x,
            lambda y: self.feed_forward(y, index),
            feed_forward,
            norm_position="pre",
            norm_name=f"{feed_forward}-Norm-0",
        )
        return self.layer_norm(x, f"{feed_forward}-Norm-1")
