"""Key/value caches for decoding, as plain tensors threaded through the calls.

A layer's cache is [key_cache, value_cache, slots, key_mask]:
- key_cache [batch, length, kv_heads, key_size], value_cache [batch, length,
  kv_heads, head_size]: the keys and values of the tokens seen so far, one
  slot per token (slots of padding hold whatever was written, masked out);
- slots [batch, new_tokens] (int): where this call's tokens are written;
- key_mask [batch, length] (bool or 0/1): which slots hold real tokens once
  this call's tokens are written.

A new token at slot q sees the slots s <= q that hold real tokens: the causal
rule of a language model, with left padding and the prompt written in one
call. The writes are one-hot products, the same ops on every backend and
static shapes under jit.
"""

import keras
from keras import ops


def write_cache(cache, keys, values):
    """(new key cache, new value cache, attention mask [batch, 1, new, length])
    after writing `keys` / `values` ([batch, new, heads, size]) at `slots`."""
    key_cache, value_cache, slots, key_mask = cache
    slots = ops.cast(slots, "int32")
    places = ops.arange(ops.shape(key_cache)[1], dtype="int32")
    at_slot = ops.equal(ops.expand_dims(slots, -1), places)  # [batch, new, length]
    key_cache = _written(key_cache, keys, at_slot)
    value_cache = _written(value_cache, values, at_slot)
    visible = ops.logical_and(
        ops.expand_dims(ops.cast(key_mask, "bool"), 1),
        ops.less_equal(places, ops.expand_dims(slots, -1)),
    )
    return key_cache, value_cache, ops.expand_dims(visible, 1)


def _written(cache, update, at_slot):
    """`cache` with `update`'s rows placed at their slots (the rest kept)."""
    onehot = ops.cast(at_slot, cache.dtype)
    kept = 1 - ops.max(onehot, axis=1)  # [batch, length]
    placed = ops.einsum("bts,btnd->bsnd", onehot, ops.cast(update, cache.dtype))
    return cache * kept[:, :, None, None] + placed


class CachedAttention(keras.layers.Layer):
    """An attention layer called with its cache: a second layer over the same
    weights, so that the decoding graph gets its own node and output
    structure ([output, new key cache, new value cache]) while the model's
    graph keeps the attention layer's. Not saved: decoding graphs are rebuilt."""

    def __init__(self, attention, **kwargs):
        super().__init__(name=f"{attention.name}-Cached", dtype=attention.dtype_policy, **kwargs)
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
        return [output] + [keras.KerasTensor(c.shape, c.dtype) for c in cache[:2]]
