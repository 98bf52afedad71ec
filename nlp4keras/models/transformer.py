"""The Transformer builder every model family derives from.

As in bert4keras: `apply()` creates each layer once per (prefixed) name, so the
same name means shared weights; the template hooks `get_inputs`,
`apply_embeddings`, `apply_main_layers`, `apply_final_layers`,
`compute_attention_bias` and `compute_position_bias` are what a family
overrides. The block lives here, set by class knobs (`norm_position`,
`norm_options`, `use_bias`, `attention_scale`, `shared_blocks`,
`position_mode`): `sublayer` (pre/post norm residual), `attention`,
`feed_forward`, `block_name`. Masks and position tensors are computed once,
before the blocks, and handed to every attention layer. The checkpoint
layout (Google and HF names) is the family's `layout` (see checkpoint_io).

With `recompute=True` (default: the RECOMPUTE environment variable, as in
bert4keras) each block that `apply_main_layers` builds becomes one
`RecomputedBlock` named `Transformer-{index}`, whose activations are
recomputed in the backward pass; its layers keep their names and weights, so
checkpoints load as before and `model.get_layer` still finds them.
"""

import keras
import numpy as np

from nlp4keras import validation as check
from nlp4keras.backend import get_activation
from nlp4keras.checkpoints.loading import LoadReport
from nlp4keras.initializers import TruncatedNormal
from nlp4keras.layers import (
    Add,
    Embedding,
    FeedForward,
    LayerNormalization,
    MultiHeadAttention,
)
from nlp4keras.models.checkpoint_io import CheckpointIO
from nlp4keras.recompute import (
    RecomputedModel,
    check_layers_not_shared,
    recompute_from_env,
    recompute_graph,
)


class Transformer(CheckpointIO):
    """Base class: holds the configuration, builds and loads the Keras model."""

    #: The Keras model's name when none is given (`model.summary()` shows it).
    family = "transformer"

    # ---- block knobs a family sets
    #: "post" (BERT: norm(x + f(x))) or "pre" (GPT-2, T5: x + f(norm(x)))
    norm_position = "post"
    #: extra LayerNormalization options (RMS: zero_mean=False, ...)
    norm_options = {}
    #: biases in attention, feed-forward and the embedding mapping
    use_bias = True
    #: divide attention logits by sqrt(key_size)
    attention_scale = True
    #: one block applied num_hidden_layers times (ALBERT)
    shared_blocks = False
    #: MultiHeadAttention position_mode: None, "rotary" or "relative"
    position_mode = None
    #: the attention sublayer's name part
    attention_part = "MultiHeadSelfAttention"
    #: grouped-query attention: k/v heads (None: num_attention_heads)
    num_key_value_heads = None

    def __init__(
        self,
        vocab_size,
        hidden_size,
        num_hidden_layers,
        num_attention_heads,
        intermediate_size,
        hidden_act,
        dropout_rate=None,
        attention_dropout_rate=None,
        embedding_size=None,
        attention_head_size=None,
        attention_key_size=None,
        sequence_length=None,
        keep_tokens=None,
        compound_tokens=None,
        residual_attention_scores=False,
        ignore_invalid_weights=False,
        layers=None,
        prefix=None,
        name=None,
        layer_norm_eps=1e-12,
        initializer_range=0.02,
        recompute=None,
    ):
        who = type(self).__name__
        if keep_tokens is not None:
            keep_tokens = check.integer_list(keep_tokens, "keep_tokens", who)
            vocab_size = len(keep_tokens)
        if compound_tokens is not None:
            compound_tokens = _compound_tokens(compound_tokens, who)
            vocab_size = check.integer(vocab_size, "vocab_size", who, minimum=0)
            vocab_size += len(compound_tokens)
        self.vocab_size = check.integer(vocab_size, "vocab_size", who, minimum=1)
        self.hidden_size = check.integer(hidden_size, "hidden_size", who, minimum=1)
        self.num_hidden_layers = check.integer(
            num_hidden_layers, "num_hidden_layers", who, minimum=1
        )
        self.num_attention_heads = check.integer(
            num_attention_heads, "num_attention_heads", who, minimum=1
        )
        attention_head_size = check.optional_integer(
            attention_head_size, "attention_head_size", who, minimum=1
        )
        if attention_head_size is None and self.hidden_size % self.num_attention_heads:
            raise check.InvalidValue(
                f"{who}: hidden_size {hidden_size} is not a multiple of num_attention_heads "
                f"{num_attention_heads}; pass attention_head_size to choose the head size",
                "num_attention_heads",
            )
        self.attention_head_size = (
            attention_head_size or self.hidden_size // self.num_attention_heads
        )
        self.attention_key_size = (
            check.optional_integer(attention_key_size, "attention_key_size", who, minimum=1)
            or self.attention_head_size
        )
        self.intermediate_size = check.integer(
            intermediate_size, "intermediate_size", who, minimum=1
        )
        self.hidden_act = _activations(hidden_act, who)
        self.dropout_rate = check.probability(dropout_rate, "dropout_rate", who)
        self.attention_dropout_rate = check.probability(
            attention_dropout_rate, "attention_dropout_rate", who
        )
        self.embedding_size = (
            check.optional_integer(embedding_size, "embedding_size", who, minimum=1)
            or self.hidden_size
        )
        self.sequence_length = check.optional_integer(
            sequence_length, "sequence_length", who, minimum=1
        )
        self.keep_tokens = keep_tokens
        self.compound_tokens = compound_tokens
        self.residual_attention_scores = check.boolean(
            residual_attention_scores, "residual_attention_scores", who
        )
        self.ignore_invalid_weights = check.boolean(
            ignore_invalid_weights, "ignore_invalid_weights", who
        )
        if layers is not None:
            check.instance(layers, "layers", dict, who, "a dict {name: layer} or None")
        self.layers = {} if layers is None else layers
        self.prefix = (
            "" if prefix is None else check.string(prefix, "prefix", who, allow_empty=True)
        )
        self.name = self.family if name is None else check.string(name, "name", who)
        self.layer_norm_eps = check.real(layer_norm_eps, "layer_norm_eps", who, above=0)
        self.initializer_range = check.real(initializer_range, "initializer_range", who, minimum=0)
        if recompute is not None:
            check.boolean(recompute, "recompute", who)
        self.recompute = recompute_from_env() if recompute is None else recompute
        self.attention_bias = None
        self.position_bias = None
        self.attention_scores = None
        self.load_report = None
        self._shared_block = None
        # build_transformer_model sets this when a checkpoint will fill the
        # weights: their random draws are skipped (see initializer).
        self.defer_initialization = False
        self._deferred_initializers = []
        self.built = False

    # While the decoding graph is built (models/cache_graph.py): its CacheGraph.
    cache_graph = None
    # Config-file keys the family does not take from a file (only as arguments).
    file_config_ignored = ()
    # The family's own config-file keys -> builder arguments (beyond CONFIG_ALIASES).
    config_aliases = {}

    @classmethod
    def fill_defaults(cls, arguments):
        """Fill arguments a family derives from others (build_transformer_model
        calls it on the config + keyword arguments before building)."""

    # ----------------------------------------------------------------- build
    def build(
        self,
        layer_norm_cond=None,
        layer_norm_cond_hidden_size=None,
        layer_norm_cond_hidden_act=None,
        additional_input_layers=None,
    ):
        """Create inputs, run the template hooks and wrap it all in a keras.Model.

        layer_norm_cond: a tensor [batch, cond_size] conditioning every
            LayerNorm (Conditional LayerNorm), or an int to create an input of
            that size. Inputs it depends on go in `additional_input_layers`.
        """
        if self.built:
            return self.model
        if isinstance(layer_norm_cond, bool) or not (
            layer_norm_cond is None
            or isinstance(layer_norm_cond, int)
            or keras.backend.is_keras_tensor(layer_norm_cond)
        ):
            raise TypeError(
                "layer_norm_cond must be a Keras tensor [batch, size] or the int "
                f"size of a new condition input, got {layer_norm_cond!r}"
            )
        norm_has_weights = self.norm_options.get("scale", True) or self.norm_options.get(
            "offset", True
        )
        if layer_norm_cond is not None and not norm_has_weights:
            raise ValueError(
                f"{type(self).__name__}'s norms have no scale or offset to condition: "
                "layer_norm_cond is not supported"
            )
        if isinstance(layer_norm_cond, int):
            layer_norm_cond = keras.Input(
                shape=(layer_norm_cond,), name=self.prefixed("Input-LayerNorm-Condition")
            )
            additional_input_layers = list(_as_list(additional_input_layers)) + [layer_norm_cond]
        if self.recompute and layer_norm_cond is not None:
            # A recomputed block may not read a model input directly (the
            # block would share its InputLayer: Keras cannot save that).
            layer_norm_cond = self.apply(
                inputs=layer_norm_cond, layer=keras.layers.Identity, name="LayerNorm-Condition"
            )
        self.layer_norm_conds = [
            layer_norm_cond,
            layer_norm_cond_hidden_size,
            layer_norm_cond_hidden_act or "linear",
        ]
        inputs = self.get_inputs()
        self.set_inputs(inputs, additional_input_layers)
        outputs = self.call(inputs)
        self.set_outputs(outputs)
        model_class = RecomputedModel if self.recompute else keras.Model
        try:
            self.model = model_class(self.input, self.output, name=self.name)
        except ValueError as error:
            if layer_norm_cond is None or "not connected" not in str(error):
                raise
            raise ValueError(
                "layer_norm_cond depends on inputs the model does not have: pass them as "
                f"additional_input_layers ({error})"
            ) from None
        if self.recompute:
            check_layers_not_shared(self.model)
        self.built = True
        return self.model

    def call(self, inputs):
        x = self.apply_embeddings(inputs)
        # Masks and positions once, before the blocks (a tensor built inside
        # block 0 and read by later blocks would break recompute).
        self.compute_attention_bias()
        self.compute_position_bias(x)
        for index in range(self.num_hidden_layers):
            if self.recompute:
                x = self.apply_recomputed_layers(x, index)
            else:
                x = self.apply_main_layers(x, index)
        return self.apply_final_layers(x)

    def apply_recomputed_layers(self, inputs, index):
        """`apply_main_layers` as one RecomputedBlock `Transformer-{index}`
        (shared blocks: one block `Transformer` called at every index).
        RealFormer's attention scores enter and leave the block as tensors."""
        if self._shared_block is not None:
            block, externals = self._shared_block
            return block([inputs] + externals)
        scores = self.attention_scores
        outputs = self.apply_main_layers(inputs, index)
        block_inputs = [inputs] if scores is None else [inputs, scores]
        block_outputs = [outputs]
        if self.attention_scores is not scores:
            block_outputs.append(self.attention_scores)
        name = self.block_name(index, "")[:-1]  # Transformer-{index} (Transformer shared)
        results, block, externals = recompute_graph(
            block_inputs, block_outputs, name=self.prefixed(name), return_block=True
        )
        if self.shared_blocks:
            if scores is not None or len(results) > 1:
                raise NotImplementedError(
                    "recompute with shared blocks does not support residual_attention_scores"
                )
            self._shared_block = (block, externals)
        if len(results) > 1:
            self.attention_scores = results[1]
        return results[0]

    # ----------------------------------------------------------------- block
    def block_name(self, index, part):
        """'Transformer-{index}-{part}' ('Transformer-{part}' for shared blocks)."""
        return f"Transformer-{part}" if self.shared_blocks else f"Transformer-{index}-{part}"

    def block_layer_names(self):
        """[[layer names of block i], ...]: what layer-wise learning rates and
        recompute treat as block i (a shared block lists the same layers)."""
        blocks = []
        for index in range(self.num_hidden_layers):
            start = self.block_name(index, "")
            blocks.append(
                sorted(name for name in self.layers if name.startswith(self.prefixed(start)))
            )
        return blocks

    def layer_norm(self, x, name, **options):
        """The family's norm (norm_options), conditional when the model was
        built with layer_norm_cond."""
        cond, hidden_units, hidden_act = self.layer_norm_conds
        options = {**self.norm_options, **options}
        return self.apply(
            inputs=self.simplify([x, cond]),
            layer=LayerNormalization,
            conditional=cond is not None,
            hidden_units=hidden_units,
            hidden_activation=hidden_act,
            hidden_initializer=self.initializer,
            epsilon=self.layer_norm_eps,
            name=name,
            **options,
        )

    def sublayer(self, x, fn, name, norm_position="family", norm_name=None):
        """A residual sublayer around `fn` (which builds the layer `name`):
        post-norm norm(x + dropout(fn(x))), pre-norm x + dropout(fn(norm(x))),
        with bert4keras' names {name}-Dropout, {name}-Add, {name}-Norm.
        norm_position: 'post', 'pre', None (no norm) or 'family' (the knob)."""
        if norm_position == "family":
            norm_position = self.norm_position
        norm_name = norm_name or f"{name}-Norm"
        y = fn(self.layer_norm(x, norm_name) if norm_position == "pre" else x)
        y = self.apply(
            inputs=y, layer=keras.layers.Dropout, rate=self.dropout_rate, name=f"{name}-Dropout"
        )
        y = self.apply(inputs=[x, y], layer=Add, name=f"{name}-Add")
        return self.layer_norm(y, norm_name) if norm_position == "post" else y

    def attention_inputs(self, x, context=None):
        """(extra inputs, call arguments) of an attention layer on x (over
        `context` for cross-attention): the attention mask/bias and the
        position tensor computed before the blocks."""
        bias = self.compute_attention_bias()
        arguments = {}
        if self.position_mode is not None:
            arguments["positions"] = self.compute_position_bias(x)
        return ([] if bias is None else [bias]), arguments

    def attention(self, x, index, context=None, part=None):
        """Self-attention on x, or cross-attention from x over `context` (the
        block part `part`, default attention_part)."""
        inputs, arguments = self.attention_inputs(x, context)
        name = self.block_name(index, part or self.attention_part)
        kv = x if context is None else context
        if self.cache_graph is not None:  # the decoding graph: the layer with its cache
            return self.cache_graph.attend(
                self.layers[self.prefixed(name)], [x, kv, kv] + inputs, arguments,
                cross=context is not None,
            )  # fmt: skip
        return self.apply(
            inputs=[x, kv, kv] + inputs,
            layer=MultiHeadAttention,
            arguments=arguments,
            heads=self.num_attention_heads,
            head_size=self.attention_head_size,
            out_dim=self.hidden_size,
            key_size=self.attention_key_size,
            use_bias=self.use_bias,
            attention_scale=self.attention_scale,
            attention_dropout=self.attention_dropout_rate,
            position_mode=self.position_mode,
            kv_heads=self.num_key_value_heads,
            kernel_initializer=self.initializer,
            name=name,
        )

    def feed_forward(self, x, index):
        return self.apply(
            inputs=x,
            layer=FeedForward,
            units=self.intermediate_size,
            activation=self.hidden_act,
            use_bias=self.use_bias,
            kernel_initializer=self.initializer,
            name=self.block_name(index, "FeedForward"),
        )

    def apply_main_layers(self, inputs, index):
        """One block: attention then feed-forward, each a residual sublayer."""
        x = self.sublayer(
            inputs,
            lambda y: self.attention(y, index),
            self.block_name(index, self.attention_part),
        )
        return self.sublayer(
            x, lambda y: self.feed_forward(y, index), self.block_name(index, "FeedForward")
        )

    def prefixed(self, name):
        return self.prefix + name if name else name

    def token_embedding(self, token_ids, **options):
        """`Embedding-Token` on token ids (id `pad_token_id`, if any, masked;
        options: more Embedding arguments)."""
        return self.apply(
            inputs=token_ids,
            layer=Embedding,
            input_dim=self.vocab_size,
            output_dim=self.embedding_size,
            embeddings_initializer=self.initializer,
            pad_token_id=self.pad_token_id,
            name="Embedding-Token",
            **options,
        )

    def tied_logits(self, x):
        """Scores over the vocab from `Embedding-Token`'s own matrix (a tied head)."""
        return self.apply(
            inputs=x, layer=Embedding, arguments={"mode": "dense"}, name="Embedding-Token"
        )

    def lm_logits(self, x, tied, name):
        """Scores over the vocab: the tied head, or a bias-free Dense `name`."""
        if tied:
            return self.tied_logits(x)
        return self.apply(
            inputs=x,
            layer=keras.layers.Dense,
            units=self.vocab_size,
            use_bias=False,
            kernel_initializer=self.initializer,
            name=name,
        )

    def lm_activation(self, x, activation, name):
        """The LM head's activation layer `name`, in float32 (the vocab
        distribution stays float32 under mixed precision). None in the
        decoding graph, which gives the scores before it."""
        if self.cache_graph is not None:
            return x
        return self.apply(
            inputs=x,
            layer=keras.layers.Activation,
            activation=get_activation(activation),
            dtype="float32",
            name=name,
        )

    def apply(self, inputs=None, layer=None, arguments=None, **kwargs):
        """Call the layer named kwargs['name'] on `inputs`, creating it with
        `layer(**kwargs)` the first time. Returns the layer if inputs is None."""
        if layer is keras.layers.Dropout and kwargs.get("rate", 0) == 0:
            return inputs
        if layer is MultiHeadAttention and self.residual_attention_scores:
            kwargs["return_attention_scores"] = True
        name = self.prefixed(kwargs.get("name"))
        kwargs["name"] = name
        if name is None or name not in self.layers:
            created = layer(**kwargs)
            name = created.name
            self.layers[name] = created
        layer = self.layers[name]
        if inputs is None:
            return layer
        arguments = arguments or {}
        if (
            isinstance(layer, MultiHeadAttention)
            and layer.return_attention_scores
            and self.residual_attention_scores
        ):
            inputs = list(inputs)
            if self.attention_scores is not None:
                inputs.append(self.attention_scores)
            outputs, self.attention_scores = layer(inputs, **arguments)
            return outputs
        return layer(inputs, **arguments)

    @property
    def initializer(self):
        """A TruncatedNormal(initializer_range), fresh at each access (so layers
        do not share draws); an initializer object as in bert4keras, where
        scripts pass `kernel_initializer=bert.initializer`."""
        initializer = TruncatedNormal(stddev=self.initializer_range)
        if self.defer_initialization:
            initializer.deferred = True
            self._deferred_initializers.append(initializer)
        return initializer

    def finish_deferred_initialization(self, loaded=()):
        """After a checkpoint load into a model built with
        defer_initialization: draw the initial values of the weights the
        checkpoint did not fill (those still NaN), and make the layers'
        initializers draw again from now on. `loaded`: the variables the
        checkpoint filled (not inspected)."""
        if not self.defer_initialization:
            return
        for initializer in self._deferred_initializers:
            initializer.deferred = False
        self._deferred_initializers = []
        self.defer_initialization = False
        if not self.built:
            return
        filled = {id(v) for v in loaded}
        draw = TruncatedNormal(stddev=self.initializer_range)
        for variable in self.model.weights:
            if id(variable) in filled or not variable.shape:
                continue
            value = keras.ops.convert_to_numpy(variable)
            if np.isnan(value.flat[0]):
                variable.assign(draw(variable.shape, variable.dtype))

    def get_inputs(self):
        raise NotImplementedError

    def apply_embeddings(self, inputs):
        raise NotImplementedError

    def apply_final_layers(self, inputs):
        raise NotImplementedError

    def compute_attention_bias(self, inputs=None):
        """The extra attention mask/bias shared by all layers (None: padding
        only); built once, on first call (LM / UniLM mixins)."""
        return self.attention_bias

    def cached_positions(self):
        """Call arguments of a position layer: the new tokens' position ids in
        the decoding graph, none otherwise."""
        graph = self.cache_graph
        return None if graph is None else {"position_ids": graph.position_ids}

    def build_cache_model(self):
        """The decoding graph over this model's layers (models/cache_graph.py):
        decoder-only families, and the lm / unilm applications of encoders."""
        from nlp4keras.models.cache_graph import build_cache_model

        return build_cache_model(self)

    def compute_position_bias(self, inputs=None):
        """The position tensor every attention layer reads (None: positions
        live in the embeddings); built once, from the embeddings' output."""
        return self.position_bias

    def set_inputs(self, inputs, additional_input_layers=None):
        inputs = list(_as_list(inputs)) + list(_as_list(additional_input_layers))
        self.inputs = inputs
        self.input = inputs[0] if len(inputs) == 1 else inputs

    def set_outputs(self, outputs):
        outputs = list(_as_list(outputs))
        self.outputs = outputs
        self.output = outputs[0] if len(outputs) == 1 else outputs

    def simplify(self, inputs):
        """Drop Nones from a list; unwrap a single element."""
        inputs = [x for x in inputs if x is not None]
        return inputs[0] if len(inputs) == 1 else inputs


def _activations(hidden_act, who):
    """hidden_act: one activation, or a list of them (a gated unit, GLU:
    T5.1.1's ['gelu', 'linear'])."""
    if isinstance(hidden_act, (list, tuple)) and hidden_act:
        return [check.activation(a, f"hidden_act[{i}]", who) for i, a in enumerate(hidden_act)]
    return check.activation(hidden_act, "hidden_act", who)


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _compound_tokens(compound_tokens, who):
    """bert4keras' compound_tokens: a list whose items are id lists (the new
    row is their mean) or (ids, weights) pairs (a weighted mean); as
    [(ids, weights or None)]."""
    if isinstance(compound_tokens, (str, bytes, dict)) or not hasattr(compound_tokens, "__iter__"):
        raise check.InvalidType(
            f"{who}: `compound_tokens` must be a list of id lists, got {compound_tokens!r}",
            "compound_tokens",
        )
    return [_compound_item(item, index, who) for index, item in enumerate(compound_tokens)]


def _compound_item(item, index, who):
    name = f"compound_tokens[{index}]"
    is_pair = isinstance(item, (list, tuple)) and len(item) == 2
    if not (is_pair and isinstance(item[0], (list, tuple, np.ndarray))):
        return check.integer_list(item, name, who), None
    ids = check.integer_list(item[0], f"{name} ids", who)
    weights = item[1]
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
        raise check.InvalidType(f"{who}: `{name}` weights must be a list of numbers", name)
    weights = [check.real(w, f"{name} weights", who, minimum=0) for w in weights]
    if len(weights) != len(ids) or not sum(weights) > 0:
        raise check.InvalidValue(
            f"{who}: `{name}` needs one weight >= 0 per id ({len(ids)}) and a positive sum, "
            f"got {weights}",
            name,
        )
    return ids, weights


__all__ = ["Transformer", "LoadReport"]
