"""The decoding graph of a language model: the family's own builder run again
over the same layers (shared by name, so the same weights), fed the new
tokens, their positions and every attention layer's key/value cache.

Inputs: `Input-Token` [batch, new] ids, `Input-Position` [batch, new] their
position ids, `Input-Slot` [batch, new] the cache slots they are written to,
`Input-Key-Mask` [batch, length] the slots that hold real tokens afterwards
(see nlp4keras.layers.kv_cache), then a key and a value cache per attention
layer, `{layer}-Key-Cache` / `{layer}-Value-Cache`. Outputs: the model's
output at the new tokens, then the updated caches in the same order.
"""

import keras

from nlp4keras.layers.kv_cache import CachedAttention


class CacheGraph:
    """The inputs and outputs of a decoding graph while the builder runs."""

    def __init__(self, transformer):
        self.transformer = transformer
        self.token_ids = self._input("Input-Token", (None,), "int32")
        self.position_ids = self._input("Input-Position", (None,), "int32")
        self.slots = self._input("Input-Slot", (None,), "int32")
        self.key_mask = self._input("Input-Key-Mask", (None,), "int32")
        self.caches = {}  # attention layer name -> [key cache input, value cache input]
        self.new_caches = {}  # attention layer name -> [new key cache, new value cache]

    def _input(self, name, shape, dtype):
        return keras.Input(shape=shape, dtype=dtype, name=self.transformer.prefixed(name))

    def attend(self, attention, inputs, arguments):
        """`attention` called on `inputs` with its cache (inputs made here);
        returns its output and keeps its new caches."""
        t, name = self.transformer, attention.name
        heads = t.num_key_value_heads or t.num_attention_heads
        sizes = {"Key": t.attention_key_size, "Value": t.attention_head_size}
        self.caches[name] = [
            self._input(f"{name}-{part}-Cache", (None, heads, size), None)
            for part, size in sizes.items()
        ]
        cache = self.caches[name] + [self.slots, self.key_mask]
        output, *self.new_caches[name] = CachedAttention(attention)(
            inputs, cache=cache, **arguments
        )
        return output

    def model(self, output):
        names = list(self.caches)
        inputs = [self.token_ids, self.position_ids, self.slots, self.key_mask]
        inputs += [tensor for name in names for tensor in self.caches[name]]
        outputs = [output] + [tensor for name in names for tensor in self.new_caches[name]]
        return keras.Model(inputs, outputs, name=f"{self.transformer.name}_cached")


def build_cache_model(transformer):
    """The decoding graph of a built language model (see the module)."""
    if not transformer.built:
        raise ValueError("build the model first: the decoding graph reuses its layers")
    if transformer.layer_norm_conds[0] is not None:
        raise NotImplementedError("cached decoding of a model with layer_norm_cond")
    saved = (transformer.inputs, transformer.attention_bias, transformer.position_bias)
    graph = CacheGraph(transformer)
    transformer.cache_graph = graph
    transformer.attention_bias = transformer.position_bias = None
    try:
        transformer.inputs = [graph.token_ids]
        x = transformer.apply_embeddings(graph.token_ids)
        transformer.compute_attention_bias()
        transformer.compute_position_bias(x)
        for index in range(transformer.num_hidden_layers):
            x = transformer.apply_main_layers(x, index)
        return graph.model(transformer.apply_final_layers(x))
    finally:
        transformer.cache_graph = None
        transformer.inputs, transformer.attention_bias, transformer.position_bias = saved
