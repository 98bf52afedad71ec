"""Key/value caches for decoding, as plain tensors threaded through the calls.

A layer's cache is [key_cache, value_cache, slots, key_mask]:
- key_cache [batch, length, kv_heads, key_size], value_cache [batch, length,
  kv_heads, head_size]: the keys and values of the tokens seen so far, one
  slot per token (slots of padding hold whatever was written, masked out);
- slots [batch, new_tokens] (int): where this call's tokens are written,
  consecutive and the same in every row (a batch decodes in lockstep: its
  prompts are left-padded to one length);
- key_mask [batch, length] (int): which slots hold real tokens once this
  call's tokens are written: 0 none, 1 a token seen causally, 2 a token of a
  prefix every token sees (UniLM's source).

A new token at slot q sees the slots s <= q that hold real tokens (the
causal rule of a language model, with left padding and the prompt written in
one call) and the whole prefix. The new rows are written as one slice: in place on torch (the caches
are the decoder's own buffers), a dynamic update slice elsewhere (in place
under jit when the caches are donated or carried by a loop).
"""

import keras
from keras import ops


def write_cache(cache, keys, values):
    """(new key cache, new value cache, attention mask [batch, 1, new, length])
    after writing `keys` / `values` ([batch, new, heads, size]) at `slots`."""
    key_cache, value_cache, slots, key_mask = cache
    slots = ops.cast(slots, "int32")
    key_cache = _written(key_cache, keys, slots)
    value_cache = _written(value_cache, values, slots)
    places = ops.arange(ops.shape(key_cache)[1], dtype="int32")
    key_mask = ops.expand_dims(ops.cast(key_mask, "int32"), 1)  # [batch, 1, length]
    causal = ops.less_equal(places, ops.expand_dims(slots, -1))  # [batch, new, length]
    visible = ops.logical_and(key_mask > 0, ops.logical_or(causal, key_mask == 2))
    return key_cache, value_cache, ops.expand_dims(visible, 1)


def _written(cache, update, slots):
    """`cache` with `update` placed from slot `slots[0, 0]` on."""
    update = ops.cast(update, cache.dtype)
    if keras.backend.backend() == "torch":
        return cache.index_copy_(1, slots[0].long(), update)
    zero = ops.zeros((), "int32")
    return ops.slice_update(cache, ops.stack([zero, slots[0, 0], zero, zero]), update)


class CachedAttention(keras.layers.Layer):
    """An attention layer called with its cache: a second layer over the same
    weights, so that the decoding graph gets its own node and output
    structure ([output, new key cache, new value cache]) while the model's
    graph keeps the attention layer's. Not saved: decoding graphs are rebuilt."""

    def __init__(self, attention, name=None, **kwargs):
        name = name or f"{attention.name}-Cached"
        super().__init__(name=name, dtype=attention.dtype_policy, **kwargs)
        self.attention = attention
        self.built = True  # the attention layer holds the weights, built already
        # Padding reaches the caches through key_mask (the generator folds the
        # pad id in); the Keras mask of the inputs is not needed here.
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs, positions=None, cache=None):
        return self.attention.call(inputs, positions=positions, cache=cache)

    def compute_output_spec(self, inputs, positions=None, cache=None):
        q = inputs[0]
        out_dim = self.attention.out_dim or q.shape[-1]
        output = keras.KerasTensor(tuple(q.shape[:-1]) + (out_dim,), self.compute_dtype)
        if len(cache) == 3:  # cross-attention: nothing written
            return output
        return [output] + [keras.KerasTensor(c.shape, c.dtype) for c in cache[:2]]


class ProjectKeysValues(keras.layers.Layer):
    """An attention layer's keys and values of a context, [batch, length,
    kv_heads, size] each: what cross-attention reads at every decoding step,
    computed once (a second layer over the attention's weights, not saved)."""

    def __init__(self, attention):
        super().__init__(name=f"{attention.name}-Keys-Values", dtype=attention.dtype_policy)
        self.attention = attention
        self.built = True

    def call(self, context):
        a = self.attention
        return [
            a._project(context, "k", a.key_size, a.kv_heads),
            a._project(context, "v", a.head_size, a.kv_heads),
        ]

    def compute_output_spec(self, context):
        a, prefix = self.attention, tuple(context.shape[:2])
        return [
            keras.KerasTensor(prefix + (a.kv_heads, size), self.compute_dtype)
            for size in (a.key_size, a.head_size)
        ]
