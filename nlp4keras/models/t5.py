"""T5 (t5.1.0), T5.1.1 and mT5 (mt5.1.1), as bert4keras built them:
`T5_Encoder`, `T5_Decoder` and `T5`, which builds both on shared layers.

Blocks are pre-norm with T5's RMS norm (no mean, no offset), no biases and
no 1/sqrt(d) attention scale (T5 folds it into its initialisation). Positions
are a bucketed relative attention bias, computed once per stack and added in
every layer. t5.1.0 has a ReLU feed-forward and ties the LM head to the token
embedding; t5.1.1 / mT5 have a gated-GELU feed-forward and an untied head.
Checkpoints: mesh-TF (Google) names as bert4keras read them, HF `t5`/`mt5`
folders (t5_layout.py).
"""

import keras

from nlp4keras import validation as check
from nlp4keras.backend import resolve_activation
from nlp4keras.layers import LMMask
from nlp4keras.layers.positions import RelativePositionEmbeddingT5
from nlp4keras.models.t5_layout import VERSIONS, t5_layout
from nlp4keras.models.transformer import Transformer
from nlp4keras.recompute import RecomputedModel


def feed_forward_activation(feed_forward_proj):
    """HF `feed_forward_proj` ('relu', 'gated-gelu', 'gated-silu', ...) as a
    hidden_act: a name, or [name, 'linear'] for a gated unit. HF's 'gelu'
    is the exact GELU, except in 'gated-gelu' (the tanh one, gelu_new)."""
    proj = check.string(feed_forward_proj, "feed_forward_proj", "T5")
    gated, _, name = proj.rpartition("-")
    if gated not in ("", "gated"):
        raise check.InvalidValue(
            f"T5: feed_forward_proj must be 'ACT' or 'gated-ACT', got {proj!r}", "feed_forward_proj"
        )
    if proj == "gated-gelu":
        name = "gelu_new"
    name = {"gelu": "gelu_erf"}.get(name, name)
    return [name, "linear"] if gated else name


def hf_feed_forward_proj(hidden_act):
    """The HF `feed_forward_proj` of a hidden_act (inverse of the above)."""
    gated = isinstance(hidden_act, (list, tuple))
    if gated and (len(hidden_act) != 2 or resolve_activation(hidden_act[1]) != "linear"):
        raise NotImplementedError(f"HF T5 has no feed-forward {hidden_act!r}")
    name = resolve_activation(hidden_act[0] if gated else hidden_act)
    if gated:
        if name == "gelu_tanh":
            return "gated-gelu"
        names = {"gelu_erf": "gelu_python"}
    else:
        names = {"gelu_erf": "gelu", "gelu_tanh": "gelu_new"}
    if not isinstance(name, str):
        raise NotImplementedError(f"HF T5 has no feed-forward activation {hidden_act!r}")
    return ("gated-" if gated else "") + names.get(name, name)


class T5_Base(Transformer):
    """What the three T5 classes share: version (t5.1.0, t5.1.1, mt5.1.1),
    sizes, bucket options, the layout. The decoder options (with_lm,
    cross_position_bias, logit_scale) are accepted by all three (as
    bert4keras' T5 passed one set of arguments to both halves) and read by
    the decoder only.

    with_lm: True (softmax, bert4keras' default), an activation ('linear' for
        logits) or False (the decoder's hidden states, no head).
    cross_position_bias: True (bert4keras' default since 2022-08): the
        cross-attention also gets a unidirectional T5 bias, from the decoder's
        relative-position layer. Stock T5 (mesh-TF, HF transformers) has none:
        pass False to reproduce their outputs.
    logit_scale: scale the decoder output by hidden_size**-0.5 before the LM
        head. Default: when the head is tied (t5.1.0), as mesh-TF and HF do
        (HF configs say it as `scale_decoder_outputs`); bert4keras scaled for
        every version, so pass True to reproduce its t5.1.1 / mt5.1.1 outputs.

    The version decides whether the head is tied, not an HF config's
    `tie_word_embeddings` (transformers >= 5 writes true for T5.1.1 too).
    """

    family = "t5"
    version = "t5.1.0"
    norm_position = "pre"
    norm_options = {"zero_mean": False, "offset": False}
    use_bias = False
    attention_scale = False
    hf_model_types = ("t5", "mt5")
    #: HF T5 config keys -> builder arguments
    config_aliases = {
        "d_model": "hidden_size",
        "d_ff": "intermediate_size",
        "d_kv": "attention_head_size",
        "num_layers": "num_hidden_layers",
        "num_heads": "num_attention_heads",
        "scale_decoder_outputs": "logit_scale",
    }
    #: "Encoder" or "Decoder": the layer name prefix of a stack
    stack = None
    #: the HF class save_weights_as_hf names ('T5' or 'MT5' filled in)
    hf_architecture = "{}ForConditionalGeneration"

    def __init__(
        self,
        hidden_act=None,
        feed_forward_proj=None,
        version=None,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        num_decoder_layers=None,
        pad_token_id=0,
        with_lm=True,
        cross_position_bias=True,
        logit_scale=None,
        layer_norm_eps=1e-6,
        **kwargs,
    ):
        if hidden_act is None:
            hidden_act = feed_forward_activation(feed_forward_proj or "relu")
        super().__init__(hidden_act=hidden_act, layer_norm_eps=layer_norm_eps, **kwargs)
        who = type(self).__name__
        self.version = check.one_of(
            type(self).version if version is None else version, "version", VERSIONS, who
        )
        self.relative_attention_num_buckets = check.integer(
            relative_attention_num_buckets, "relative_attention_num_buckets", who, minimum=4
        )
        self.relative_attention_max_distance = check.integer(
            relative_attention_max_distance, "relative_attention_max_distance", who, minimum=1
        )
        if num_decoder_layers not in (None, self.num_hidden_layers):
            raise NotImplementedError(
                f"{who}: num_decoder_layers ({num_decoder_layers}) must equal num_layers "
                f"({self.num_hidden_layers}); stacks of different depths are not supported"
            )
        if self.embedding_size != self.hidden_size:
            raise NotImplementedError(f"{who}: embedding_size must equal hidden_size")
        self.pad_token_id = check.integer(pad_token_id, "pad_token_id", who, minimum=0)
        if not isinstance(with_lm, bool):
            check.activation(with_lm, "with_lm", who)
        self.with_lm = with_lm
        self.cross_position_bias = check.boolean(cross_position_bias, "cross_position_bias", who)
        if logit_scale is None:
            logit_scale = self.version == "t5.1.0"
        self.logit_scale = check.boolean(logit_scale, "logit_scale", who)

    @classmethod
    def fill_defaults(cls, arguments):
        # HF configs give feed_forward_proj (default 'relu'), bert4keras' hidden_act
        proj = arguments.pop("feed_forward_proj", None)
        if "hidden_act" not in arguments:
            arguments["hidden_act"] = feed_forward_activation(proj or "relu")

    @property
    def layout(self):
        return t5_layout(self.version)

    @property
    def core_scopes(self):
        stacks = (self.stack,) if self.stack else ("Encoder", "Decoder")
        return ("shared/",) + tuple(stack.lower() + "/" for stack in stacks)

    def block_name(self, index, part):
        return f"{self.stack}-Transformer-{index}-{part}"

    def token_embedding(self, token_ids):
        # bert4keras never masked position 0: the decoder starts with id 0 (= pad)
        return super().token_embedding(token_ids, unmask_first=True)

    def dropout(self, x, name):
        return self.apply(inputs=x, layer=keras.layers.Dropout, rate=self.dropout_rate, name=name)

    def relative_position(self, q, k, bidirectional, query_positions=None):
        """The stack's `{stack}-Embedding-Relative-Position` bias of q over k
        (query_positions: the queries' positions, [batch, q_len])."""
        return self.apply(
            inputs=[q, k],
            arguments=None if query_positions is None else {"query_positions": query_positions},
            layer=RelativePositionEmbeddingT5,
            input_dim=self.relative_attention_num_buckets,
            output_dim=self.num_attention_heads,
            max_distance=self.relative_attention_max_distance,
            bidirectional=bidirectional,
            embeddings_initializer=self.initializer,
            name=f"{self.stack}-Embedding-Relative-Position",
        )

    def apply_embeddings(self, inputs):
        self.tokens = inputs
        x = self.token_embedding(inputs)
        return self.dropout(x, f"{self.stack}-Embedding-Dropout")

    def output_norm(self, x):
        x = self.layer_norm(x, f"{self.stack}-Output-Norm")
        return self.dropout(x, f"{self.stack}-Output-Dropout")

    def hf_config(self):
        mt5 = self.version == "mt5.1.1" and not self.logit_scale  # HF MT5 never scales
        return {
            "model_type": "mt5" if mt5 else "t5",
            "architectures": [self.hf_architecture.format("MT5" if mt5 else "T5")],
            "vocab_size": self.vocab_size,
            "d_model": self.hidden_size,
            "d_kv": self.attention_head_size,
            "d_ff": self.intermediate_size,
            "num_layers": self.num_hidden_layers,
            "num_decoder_layers": self.num_hidden_layers,
            "num_heads": self.num_attention_heads,
            "relative_attention_num_buckets": self.relative_attention_num_buckets,
            "relative_attention_max_distance": self.relative_attention_max_distance,
            "feed_forward_proj": hf_feed_forward_proj(self.hidden_act),
            "layer_norm_epsilon": self.layer_norm_eps,
            "dropout_rate": self.dropout_rate or 0.0,
            "tie_word_embeddings": self.version == "t5.1.0",
            "scale_decoder_outputs": self.logit_scale,
            "pad_token_id": self.pad_token_id,
            "decoder_start_token_id": 0,
            "eos_token_id": 1,
            "is_encoder_decoder": True,
        }


class T5_Encoder(T5_Base):
    """Input `Encoder-Input-Token`; output the final-norm hidden states,
    carrying the Keras mask of the pad id 0 (position 0 never masked)."""

    stack = "Encoder"
    hf_architecture = "{}EncoderModel"

    def get_inputs(self):
        return keras.Input(
            shape=(self.sequence_length,), dtype="int32", name=self.prefixed("Encoder-Input-Token")
        )

    def compute_position_bias(self, inputs=None):
        if self.position_bias is None:
            self.position_bias = self.relative_position(self.tokens, self.tokens, True)
        return self.position_bias

    def attention_inputs(self, x, context=None):
        return [self.compute_position_bias()], {}

    def apply_final_layers(self, inputs):
        return self.output_norm(inputs)


class T5_Decoder(T5_Base):
    """Inputs [`Input-Context` (the encoder's output), `Decoder-Input-Token`];
    output the next-token distribution at every position (with_lm). Each
    block: causal self-attention, cross-attention over the context, then the
    feed-forward, each pre-norm with a residual."""

    stack = "Decoder"
    cross_attention = True

    def get_inputs(self):
        context = keras.Input(
            shape=(self.sequence_length, self.hidden_size), name=self.prefixed("Input-Context")
        )
        tokens = keras.Input(
            shape=(self.sequence_length,), dtype="int32", name=self.prefixed("Decoder-Input-Token")
        )
        return [context, tokens]

    def call(self, inputs):
        # T5 calls the decoder again on the encoder's output: new masks and biases
        self.attention_bias = self.position_bias = None
        return super().call(inputs)

    def apply_embeddings(self, inputs):
        context, tokens = inputs
        if self.recompute:  # a recomputed block may not read a model input directly
            context = self.apply(
                inputs=context, layer=keras.layers.Identity, name="Decoder-Context"
            )
        self.context = context
        return super().apply_embeddings(tokens)

    def compute_attention_bias(self, inputs=None):
        if self.cache_graph is not None:
            return None  # the attention layers mask from their caches
        if self.attention_bias is None:
            self.attention_bias = self.apply(
                inputs=self.tokens, layer=LMMask, name="Decoder-Attention-LM-Mask"
            )
        return self.attention_bias

    def compute_position_bias(self, inputs=None):
        """(self-attention bias, cross-attention bias): one layer, unidirectional."""
        if self.position_bias is None:
            graph = self.cache_graph
            if graph is None:
                own = self.relative_position(self.tokens, self.tokens, False)
                cross = self.relative_position(self.tokens, self.context, False)
            else:  # decoding: own keys are cache slots, the context's are 0..length-1
                own = self.relative_position(self.tokens, graph.key_mask, False, graph.slots)
                cross = self.relative_position(self.tokens, self.context, False, graph.position_ids)
            self.position_bias = (own, cross)
        return self.position_bias

    def attention_inputs(self, x, context=None):
        own, cross = self.compute_position_bias()
        if context is None:
            mask = self.compute_attention_bias()  # None in the decoding graph
            return ([] if mask is None else [mask]) + [own], {}
        return ([cross] if self.cross_position_bias else []), {}

    def apply_main_layers(self, inputs, index):
        cross = self.block_name(index, "MultiHeadCrossAttention")
        x = self.sublayer(
            inputs, lambda y: self.attention(y, index), self.block_name(index, self.attention_part)
        )
        x = self.sublayer(
            x, lambda y: self.attention(y, index, self.context, "MultiHeadCrossAttention"), cross
        )
        return self.sublayer(
            x, lambda y: self.feed_forward(y, index), self.block_name(index, "FeedForward")
        )

    def apply_final_layers(self, inputs):
        x = self.output_norm(inputs)
        if self.with_lm is False:
            return x
        if self.logit_scale:
            x = self.apply(
                inputs=x,
                layer=keras.layers.Rescaling,
                scale=self.hidden_size**-0.5,
                name="Decoder-Output-Scale",
            )
        x = self.lm_logits(x, self.version == "t5.1.0", "Decoder-Output-LM")
        activation = "softmax" if self.with_lm is True else self.with_lm
        return self.lm_activation(x, activation, "Decoder-Output-LM-Activation")

    def save_weights_as_hf(self, folder, dtype=None):
        raise NotImplementedError(
            "T5_Decoder: HF transformers has no decoder-only T5; export the whole T5 "
            "(model='t5...', return_keras_model=False) or its encoder"
        )


class T5(T5_Base):
    """Encoder and decoder on shared layers: `.encoder` (encoder tokens ->
    hidden states), `.decoder` ([context, decoder tokens] -> distribution)
    and `.model` ([encoder tokens, decoder tokens] -> distribution), as
    bert4keras' T5. The decoder in `.model` masks the encoder's padding in
    cross-attention; `.decoder` alone attends to every context position."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        name = kwargs.pop("name", None)
        kwargs.update(layers=self.layers, version=self.version)
        self._encoder = T5_Encoder(name=f"{name}_Encoder" if name else "Encoder", **kwargs)
        self._decoder = T5_Decoder(name=f"{name}_Decoder" if name else "Decoder", **kwargs)

    @property
    def decoder_stack(self):
        """The decoder `Transformer` (its `.model` is `.decoder`): what
        nlp4keras.generation.CachedGenerator builds its decoding graph from."""
        return self._decoder

    def build(self, **kwargs):
        if self.built:
            return self.model
        if any(value is not None for value in kwargs.values()):
            raise NotImplementedError(f"T5 takes no build options, got {sorted(kwargs)}")
        for part in (self._encoder, self._decoder):
            part.defer_initialization = self.defer_initialization
            part._deferred_initializers = self._deferred_initializers  # one list: one finish
            part.build()
        self.encoder, self.decoder = self._encoder.model, self._decoder.model
        tokens = self.decoder.inputs[1]
        outputs = self._decoder.call(self.encoder.outputs + [tokens])
        self.set_inputs(self.encoder.inputs + [tokens])
        self.set_outputs(outputs)
        model_class = RecomputedModel if self.recompute else keras.Model
        self.model = model_class(self.inputs, self.output, name=self.name)
        self.built = True
        return self.model

    def finish_deferred_initialization(self, loaded=()):
        for part in (self._encoder, self._decoder):
            part.defer_initialization = False
        super().finish_deferred_initialization(loaded)


def _versioned(cls, version):
    """cls with another default version (the `model=` names set it)."""
    return type(cls.__name__, (cls,), {"version": version, "__doc__": cls.__doc__})


#: model= names of build_transformer_model (as bert4keras: 't5' is t5.1.0)
T5_MODELS = {}
for _prefix, _version in (("t5", "t5.1.0"), ("t5.1.0", "t5.1.0"), ("t5.1.1", "t5.1.1"),
                          ("mt5.1.1", "mt5.1.1")):  # fmt: skip
    for _suffix, _cls in (("", T5), ("_encoder", T5_Encoder), ("_decoder", T5_Decoder)):
        _cls = _cls if _version == "t5.1.0" else _versioned(_cls, _version)
        T5_MODELS[_prefix + _suffix] = _cls
