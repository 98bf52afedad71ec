"""The decoding graph of a language model: the family's own builder run again
over the same layers (shared by name, so the same weights), fed the new
tokens, their positions and every attention layer's key/value cache.

Inputs: `Input-Token` [batch, new] ids, `Input-Position` [batch, new] their
position ids, `Input-Slot` [batch, new] the cache slots they are written to,
`Input-Key-Mask` [batch, length] the slots that hold real tokens afterwards
(see nlp4keras.layers.kv_cache), `Input-Segment` [batch, new] for an encoder
with segment embeddings (lm / unilm applications), then a key and a value
cache per attention layer, `{layer}-Key-Cache` / `{layer}-Value-Cache`.
Outputs: the model's scores at the new tokens before its final activation
(logits, also for a model that ends in a softmax), then the updated caches
in the same order.

Decoder-only families and the lm / unilm applications of the encoder
families whose attention goes through `Transformer.attention` with absolute
or rotary positions (bert, roberta, albert, roformer, roformer_v2) have one;
NEZHA's relative positions and GAU-alpha's gated attention units do not yet.
"""

import keras

from nlp4keras.layers.kv_cache import CachedAttention
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
        self.caches = {}  # attention layer name -> [key cache input, value cache input]
        self.new_caches = {}  # attention layer name -> [new key cache, new value cache]
        self.calls = {}  # attention layer name -> how often the builder called it

    def _input(self, name, shape, dtype):
        return keras.Input(shape=shape, dtype=dtype, name=self.transformer.prefixed(name))

    def embedding_inputs(self):
        """What the family's apply_embeddings takes: the ids, with the segment ids."""
        if self.segment_ids is None:
            return self.token_ids
        return [self.token_ids, self.segment_ids]

    def attend(self, attention, inputs, arguments):
        """`attention` called on `inputs` with its cache (inputs made here);
        returns its output and keeps its new caches."""
        t, name = self.transformer, attention.name
        calls = self.calls.get(name, 0)
        self.calls[name] = calls + 1
        if calls:  # a layer shared by several blocks (ALBERT): a cache per call
            name = f"{name}-{calls}"
        heads = getattr(t, "num_key_value_heads", None) or t.num_attention_heads
        sizes = {"Key": t.attention_key_size, "Value": t.attention_head_size}
        self.caches[name] = [
            self._input(f"{name}-{part}-Cache", (None, heads, size), None)
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
        if isinstance(output, (list, tuple)):
            raise NotImplementedError(f"{who}: the model must have one output, the LM head")
        names = list(self.caches)
        inputs = self.leading + [tensor for name in names for tensor in self.caches[name]]
        outputs = [output] + [tensor for name in names for tensor in self.new_caches[name]]
        return keras.Model(inputs, outputs, name=f"{self.transformer.name}_cached")


def build_cache_model(transformer):
    """The decoding graph of a built language model (see the module)."""
    who = f"cached decoding of {type(transformer).__name__}"
    if not transformer.built:
        raise ValueError(f"{who}: build the model first, the decoding graph reuses its layers")
    if transformer.layer_norm_conds[0] is not None:
        raise NotImplementedError(f"{who}: a model with layer_norm_cond")
    if transformer.position_mode == "relative" or getattr(transformer, "custom_position_ids", 0):
        raise NotImplementedError(f"{who}: relative or custom position ids")
    if not isinstance(transformer, (LM_Mask, UniLM_Mask)):
        raise ValueError(
            f"{who}: a model that attends both ways has nothing to cache; build it with "
            "application='lm' or 'unilm' (or use a decoder family)"
        )
    saved = (transformer.inputs, transformer.attention_bias, transformer.position_bias)
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
