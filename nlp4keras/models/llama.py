"""Llama (and the many models on its layout: SmolLM2, Mistral-style GQA
decoders): pre-norm RMSNorm blocks without biases, rotary positions on q and
k (HF's half-split layout), SwiGLU feed-forward, grouped-query attention, a
tied or untied LM head. HF `llama` names; GGUF files through the `gguf`
reader, which presents them under the same names."""

from nlp4keras import validation as check
from nlp4keras.checkpoints.layout import CheckpointLayout, dense, norm, tensor
from nlp4keras.layers import FeedForward
from nlp4keras.layers.positions import SinusoidalPositionEmbedding
from nlp4keras.models.decoder import LanguageModel


def _llama_layout():
    scope, hf = "llama/layer_{i}/", "layers.{i}."
    attention = []
    for part, name in (("query", "q"), ("key", "k"), ("value", "v"), ("output", "o")):
        attention += dense(scope + "attention/" + part, f"{hf}self_attn.{name}_proj", bias=False)
    feed_forward = []
    for part in ("gate", "up", "down"):
        feed_forward += dense(scope + "mlp/" + part, f"{hf}mlp.{part}_proj", bias=False)
    return CheckpointLayout(
        layers={
            "Embedding-Token": tensor(
                "llama/embeddings/word_embeddings", "embed_tokens.weight", vocab=True
            ),
            "Transformer-{i}-MultiHeadSelfAttention": attention,
            "Transformer-{i}-MultiHeadSelfAttention-Norm": norm(
                scope + "attention/norm", hf + "input_layernorm", offset=False
            ),
            "Transformer-{i}-FeedForward": feed_forward,
            "Transformer-{i}-FeedForward-Norm": norm(
                scope + "mlp/norm", hf + "post_attention_layernorm", offset=False
            ),
            "Output-Norm": norm("llama/output/norm", "norm", offset=False),
        },
        heads={"Output-LM": dense("llama/lm_head", "lm_head", bias=False)},
        ignored=["layers.{i}.self_attn.rotary_emb.inv_freq"],
        base_prefixes=("model.",),
    )


class LLaMA(LanguageModel):
    """num_key_value_heads: grouped-query attention (default: as many as
    num_attention_heads). rope_theta: the rotary wavelength base. Config
    keys of HF `LlamaConfig` are read (rms_norm_eps, head_dim, ...); options
    that change the maths and are not implemented (rope_scaling,
    attention_bias, mlp_bias) are refused."""

    norm_position = "pre"
    norm_options = {"zero_mean": False, "offset": False}
    use_bias = False
    position_mode = "rotary_half"
    absolute_positions = False
    layout = _llama_layout()
    core_scopes = ("llama/",)
    family = "llama"
    hf_model_types = ("llama",)
    #: HF config keys that must keep these values (None: absent or null)
    config_requirements = {"rope_scaling": None, "attention_bias": False, "mlp_bias": False}

    def __init__(
        self,
        num_key_value_heads=None,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        layer_norm_eps=1e-6,
        **kwargs,
    ):
        super().__init__(
            tie_word_embeddings=tie_word_embeddings, layer_norm_eps=layer_norm_eps, **kwargs
        )
        who = type(self).__name__
        self.num_key_value_heads = check.optional_integer(
            num_key_value_heads, "num_key_value_heads", who, minimum=1
        )
        if self.num_key_value_heads and self.num_attention_heads % self.num_key_value_heads:
            raise check.InvalidValue(
                f"{who}: num_attention_heads ({self.num_attention_heads}) must be a multiple "
                f"of num_key_value_heads ({self.num_key_value_heads})",
                "num_key_value_heads",
            )
        self.rope_theta = check.real(rope_theta, "rope_theta", who, above=0)

    def feed_forward(self, x, index):
        """SwiGLU: down(act(gate(x)) * up(x))."""
        return self.apply(
            inputs=x,
            layer=FeedForward,
            units=self.intermediate_size,
            activation=[self.hidden_act, "linear"],
            use_bias=False,
            kernel_initializer=self.initializer,
            name=self.block_name(index, "FeedForward"),
        )

    def compute_position_bias(self, inputs=None):
        if self.position_bias is None:
            self.position_bias = self.apply(
                inputs=self.inputs[0],
                arguments=self.cached_positions(),
                layer=SinusoidalPositionEmbedding,
                output_dim=self.attention_key_size,
                base=self.rope_theta,
                name="Embedding-Rotary-Position",
            )
        return self.position_bias

    def hf_config(self):
        return {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads or self.num_attention_heads,
            "head_dim": self.attention_head_size,
            "hidden_act": self.hidden_act,
            "rms_norm_eps": self.layer_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position or 2048,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": False,
            "mlp_bias": False,
            "initializer_range": self.initializer_range,
        }
