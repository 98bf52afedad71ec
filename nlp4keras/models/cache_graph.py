"""The decoding graph of a language model: the family's own builder run again
over the same layers (shared by name, so the same weights), fed the new
tokens, their positions and every attention layer's key/value cache.

Inputs: `Input-Token` [batch, new] ids, `Input-Position` [batch, new] their
position ids, `Input-Slot` [batch, new] the cache slots they are written to,
`Input-Key-Mask` [batch, length] the slots that hold real tokens afterwards
(see nlp4keras.layers.kv_cache), `Input-Segment` [batch, new] for an encoder
with segment embeddings (lm / unilm applications); for a decoder with
cross-attention (T5) `Input-Context-Mask` [batch, context length] and each
cross-attention layer's projected context, `{layer}-Cross-Key` /
`{layer}-Cross-Value` (computed once by `build_cross_model`); then a key and
a value cache per self-attention layer, `{layer}-Key-Cache` /
`{layer}-Value-Cache`.
Outputs: the model's scores at the new tokens before its final activation
(logits, also for a model that ends in a softmax), then the updated caches
in the same order.

Decoder-only families, the lm / unilm applications of the encoder families
whose attention goes through `Transformer.attention` (bert, roberta,
albert, nezha, roformer, roformer_v2; NEZHA's and T5's relative positions
taken between the new tokens' slots and the cache's) and the T5 decoder
have one. GAU-alpha has none: its softmax_plus scales every query's scores
by log(number of keys), so the states of a prefix change as the text grows
and a cache of them could not equal the model.
"""

import keras

from nlp4keras.layers.kv_cache import CachedAttention, ProjectKeysValues
from nlp4keras.models.applications import LM_Mask, UniLM_Mask


class CacheGraph:
    """The inputs and outputs of a decoding graph while the builder runs."""

    def __init__(self, transformer):
        self.transformer = transformer
        self.token_ids = self._input("Input-Token", (None,), "int32")
        self.position_ids = self._input("Input-Position", (None,), "int32")
        self.slots = self._input("Input-Slot", (None,), "int32")
        self.key_mask = self._input("Input-Key-Mask", (None,), "int32")
        self.leading = [self.token_ids, self.position_ids, self.slots, self.key_mask]
        self.segment_ids = None
        if getattr(transformer, "segment_vocab_size", 0) > 0:
            self.segment_ids = self._input("Input-Segment", (None,), "int32")
            self.leading.append(self.segment_ids)
        self.context_mask = None
        if getattr(transformer, "cross_attention", False):
            self.context_mask = self._input("Input-Context-Mask", (None,), "int32")
            self.leading.append(self.context_mask)
        self.cross = {}  # cross-attention layer name -> [keys input, values input]
        self.caches = {}  # attention layer name -> [key cache input, value cache input]
        self.new_caches = {}  # attention layer name -> [new key cache, new value cache]
        self.calls = {}  # attention layer name -> how often the builder called it

    def _input(self, name, shape, dtype, prefixed=False):
        """An input of the graph (`prefixed`: the name holds the model's prefix already)."""
        name = name if prefixed else self.transformer.prefixed(name)
        return keras.Input(shape=shape, dtype=dtype, name=name)

    def embedding_inputs(self):
        """What the family's apply_embeddings takes: the ids, with the segment
        ids, or after the context (whose mask stands for it: its keys and
        values are inputs)."""
        if self.context_mask is not None:
            return [self.context_mask, self.token_ids]
        if self.segment_ids is None:
            return self.token_ids
        return [self.token_ids, self.segment_ids]

    def attend(self, attention, inputs, arguments, cross=False):
        """`attention` called on `inputs` with its cache (inputs made here);
        returns its output and keeps its new caches. cross: over the context's
        projected keys and values instead (inputs made here too)."""
        t, name = self.transformer, attention.name
        heads = getattr(t, "num_key_value_heads", None) or t.num_attention_heads
        sizes = {"Key": t.attention_key_size, "Value": t.attention_head_size}
        dtype = attention.compute_dtype  # float16 caches under mixed precision
        if cross:
            self.cross[name] = [
                self._input(f"{name}-Cross-{part}", (None, heads, size), dtype, prefixed=True)
                for part, size in sizes.items()
            ]
            cache = self.cross[name] + [self.context_mask]
            return CachedAttention(attention)(inputs, cache=cache, **arguments)
        calls = self.calls.get(name, 0)
        self.calls[name] = calls + 1
        if calls:  # a layer shared by several blocks (ALBERT): a cache per call
            name = f"{name}-{calls}"
        self.caches[name] = [
            self._input(f"{name}-{part}-Cache", (None, heads, size), dtype, prefixed=True)
            for part, size in sizes.items()
        ]
        cache = self.caches[name] + [self.slots, self.key_mask]
        output, *self.new_caches[name] = CachedAttention(attention, name=f"{name}-Cached")(
            inputs, cache=cache, **arguments
        )
        return output

    def model(self, output):
        who = f"cached decoding of {type(self.transformer).__name__}"
        if not self.caches:
            raise NotImplementedError(f"{who}: its attention layers take no cache")
        vocab = self.transformer.vocab_size
        if isinstance(output, (list, tuple)) or len(output.shape) != 3 or output.shape[-1] != vocab:
            raise ValueError(
                f"{who}: the model's only output must be the LM head's scores [batch, length, "
                f"{vocab}] (with_mlm / with_lm on, no pooler), got {output!r:.120}"
            )
        names = list(self.caches)
        inputs = self.leading + [tensor for pair in self.cross.values() for tensor in pair]
        inputs += [tensor for name in names for tensor in self.caches[name]]
        outputs = [output] + [tensor for name in names for tensor in self.new_caches[name]]
        model = keras.Model(inputs, outputs, name=f"{self.transformer.name}_cached")
        model.cross_attention_names = tuple(self.cross)  # for build_cross_model
        return model


def build_cache_model(transformer):
    """The decoding graph of a built language model (see the module)."""
    who = f"cached decoding of {type(transformer).__name__}"
    if not transformer.built:
        raise ValueError(f"{who}: build the model first, the decoding graph reuses its layers")
    if transformer.layer_norm_conds[0] is not None:
        raise NotImplementedError(f"{who}: a model with layer_norm_cond")
    if getattr(transformer, "custom_position_ids", 0):
        raise NotImplementedError(f"{who}: custom position ids")
    if transformer.residual_attention_scores:
        raise NotImplementedError(f"{who}: residual_attention_scores (RealFormer)")
    seq2seq_decoder = getattr(transformer, "cross_attention", False)  # T5's decoder
    if not (seq2seq_decoder or isinstance(transformer, (LM_Mask, UniLM_Mask))):
        raise ValueError(
            f"{who}: a model that attends both ways has nothing to cache; build it with "
            "application='lm' or 'unilm' (or use a decoder family)"
        )
    saved = (transformer.inputs, transformer.attention_bias, transformer.position_bias)
    saved_tensors = {
        k: vars(transformer)[k] for k in ("tokens", "context") if k in vars(transformer)
    }
    graph = CacheGraph(transformer)
    transformer.cache_graph = graph
    transformer.attention_bias = transformer.position_bias = None
    try:
        transformer.inputs = list(graph.leading)
        x = transformer.apply_embeddings(graph.embedding_inputs())
        transformer.compute_attention_bias()
        transformer.compute_position_bias(x)
        for index in range(transformer.num_hidden_layers):
            x = transformer.apply_main_layers(x, index)
        return graph.model(transformer.apply_final_layers(x))
    finally:
        transformer.cache_graph = None
        transformer.inputs, transformer.attention_bias, transformer.position_bias = saved
        vars(transformer).update(saved_tensors)  # T5 keeps its stack's tensors


def build_cross_model(transformer, names):
    """context [batch, length, hidden] -> the keys and values of each
    cross-attention layer in `names`, in that order (the decoding graph's
    `{name}-Cross-Key` / `-Cross-Value` inputs)."""
    context = keras.Input(shape=(None, transformer.hidden_size), name="Input-Context")
    outputs = []
    for name in names:
        outputs += ProjectKeysValues(transformer.layers[name])(context)
    return keras.Model(context, outputs, name=f"{transformer.name}_cross_keys_values")
