"""Multi-head attention: one layer for every model family."""

import math

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import apply_rotary_position_embeddings, infinity
from nlp4keras.layers.base import Layer, first_mask, linear, serializable
from nlp4keras.layers.kv_cache import write_cache
from nlp4keras.layers.positions import check_positions

POSITION_MODES = ("rotary", "rotary_half", "relative")


def _is_bool(x):
    return "bool" in str(x.dtype)


# Floor for float biases under float16 (max 65504; Keras has already cast the
# bias input, so -infinity() arrives as -inf): exp underflows to 0 all the
# same, and a fully masked row gets no NaN.
_FLOAT16_BIAS_FLOOR = -3e4


def _fused_mask_and_bias(attn_mask, bias, dtype):
    """Mask and bias as `ops.dot_product_attention` takes them: torch's backend
    accepts only one of the two, so a mask goes into the bias when both exist."""
    if bias is None:
        return attn_mask, None
    bias = ops.cast(bias, keras.backend.result_type(bias.dtype, "float32"))
    if attn_mask is not None:
        bias = ops.where(attn_mask, bias, -infinity())
    if keras.backend.standardize_dtype(dtype) == "float16":
        bias = ops.maximum(bias, _FLOAT16_BIAS_FLOOR)
    return None, bias


def _fused_kernel_fits(dtype):
    """False where `ops.dot_product_attention` is no good in half precision:
    JAX on CPU cannot compile its float16 attention (dot_general precision
    F16_F16_F32), and TensorFlow's (no fused kernel: einsums) computes q.k in
    half precision before its float32 softmax."""
    dtype = keras.backend.standardize_dtype(dtype)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return dtype not in ("float16", "bfloat16")
    if backend != "jax" or dtype != "float16":
        return True
    import jax

    return jax.default_backend() != "cpu"


def _check_input_shapes(input_shape):
    """Inputs are [q, k, v, *extras]: q, k, v of rank 3 with known feature sizes,
    k and v of the same length."""
    shapes = input_shape if isinstance(input_shape, (list, tuple)) else None
    if not shapes or not all(isinstance(shape, (list, tuple)) for shape in shapes):
        shapes = None
    if shapes is None or len(shapes) < 3:
        raise ValueError(
            "MultiHeadAttention expects a list of inputs [q, k, v, *masks_or_biases], "
            f"got input shape {input_shape}"
        )
    for name, shape in zip("qkv", shapes[:3]):
        if len(shape) != 3 or shape[-1] is None:
            raise ValueError(
                f"MultiHeadAttention: `{name}` must be [batch, length, features] with known "
                f"features, got shape {tuple(shape)}"
            )
    k_len, v_len = shapes[1][1], shapes[2][1]
    if k_len is not None and v_len is not None and k_len != v_len:
        raise ValueError(
            f"MultiHeadAttention: `k` and `v` must have the same length, got shapes "
            f"{tuple(shapes[1])} and {tuple(shapes[2])}"
        )


@serializable
class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention with bert4keras' interface.

    Inputs: [q, k, v, *extras]. Each extra is either a boolean mask
    (True = may attend) or a float additive bias, broadcastable to
    [batch, heads, q_len, k_len]; masks are AND-ed, biases summed. The Keras
    mask of `v` (padding) always applies on top.

    Weights, in the order Google checkpoints list them: q kernel/bias, k, v,
    o. Uses `keras.ops.dot_product_attention` (fused kernels) unless attention
    dropout is active (training with attention_dropout > 0), logits are
    requested (`return_attention_scores`, used by RealFormer), key_size
    differs from head_size or probabilities are being recorded; then an
    explicit path runs.

    Half precision (mixed_bfloat16 / mixed_float16 policies): both paths take
    the softmax of float32 logits. The fused kernels do so themselves (JAX
    computes logits and softmax in float32; torch's CPU and GPU kernels
    accumulate in float32); the explicit path casts q and k to float32 before
    q.k and adds biases and the -infinity() mask in float32. Under float16,
    Keras has cast a float bias input to float16 already (-infinity() becomes
    -inf): the fused path floors it at -3e4, the explicit one at -infinity(),
    so a fully masked row cannot give NaN. JAX on CPU always takes the
    explicit path under float16 (its fused kernel does not compile there),
    TensorFlow under half precision (its q.k would be in half precision).

    position_mode: None (positions live in the embeddings), 'rotary' (RoPE on
    q and k: `positions` is the sinusoid [batch or 1, len, key_size] of
    SinusoidalPositionEmbedding), 'rotary_half' (the same, rotating feature
    i with i + key_size/2 as HF Llama does) or 'relative' (NEZHA: `positions` is
    [q_len, k_len, key_size], added to the keys in q.k and to the values in
    the output; needs head_size == key_size). The model computes `positions`
    once and passes the same tensor to every block's attention.

    kv_heads: grouped-query attention (Llama 2/3, SmolLM): k and v have
    kv_heads heads, each shared by heads / kv_heads query heads (default
    heads: plain multi-head attention).

    cache (a call argument, for decoding; see nlp4keras.layers.kv_cache, whose
    CachedAttention passes it): [key_cache, value_cache, slots, key_mask]: the
    new tokens' keys and values are written into the caches at `slots` and
    the queries attend to the whole cache; the call returns [output, new
    key_cache, new value_cache]. [keys, values, key_mask] (cross-attention
    while decoding): keys and values already projected from the context
    (kv_cache.ProjectKeysValues), [batch, length, kv_heads, size], the
    context's mask [batch, length]; k and v inputs are not read.

    Two attributes (not saved in the config) force the explicit path:
    `explicit_attention = True` (twice differentiable, which fused kernels may
    not be: gradient penalties), and `record_attention_probs = True`, which
    also keeps the float32 probabilities (before dropout) [batch, heads,
    q_len, k_len] in `recorded_attention_probs` (for eager calls, see
    nlp4keras.training.intermediates).
    """

    def __init__(
        self,
        heads,
        head_size,
        out_dim=None,
        key_size=None,
        use_bias=True,
        attention_scale=True,
        attention_dropout=None,
        return_attention_scores=False,
        kernel_initializer="glorot_uniform",
        position_mode=None,
        kv_heads=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = "MultiHeadAttention"
        self.heads = validation.integer(heads, "heads", who, minimum=1)
        kv_heads = validation.optional_integer(kv_heads, "kv_heads", who, minimum=1)
        self.kv_heads = self.heads if kv_heads is None else kv_heads
        if self.heads % self.kv_heads:
            raise validation.InvalidValue(
                f"{who}: heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})",
                "kv_heads",
            )
        self.head_size = validation.integer(head_size, "head_size", who, minimum=1)
        self.out_dim = validation.optional_integer(out_dim, "out_dim", who, minimum=1)
        key_size = validation.optional_integer(key_size, "key_size", who, minimum=1)
        self.key_size = self.head_size if key_size is None else key_size
        self.use_bias = validation.boolean(use_bias, "use_bias", who)
        self.attention_scale = validation.boolean(attention_scale, "attention_scale", who)
        self.attention_dropout = validation.probability(attention_dropout, "attention_dropout", who)
        self.return_attention_scores = validation.boolean(
            return_attention_scores, "return_attention_scores", who
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.position_mode = (
            None
            if position_mode is None
            else validation.one_of(position_mode, "position_mode", POSITION_MODES, who)
        )
        if self.position_mode == "relative" and self.key_size != self.head_size:
            raise validation.InvalidValue(
                f"{who}: position_mode='relative' adds the same positions to keys and values, "
                f"so key_size ({self.key_size}) must equal head_size ({self.head_size})",
                "key_size",
            )
        self.dropout = (
            keras.layers.Dropout(self.attention_dropout) if self.attention_dropout else None
        )
        self.explicit_attention = False
        self.record_attention_probs = False
        self.recorded_attention_probs = None

    def build(self, input_shape):
        _check_input_shapes(input_shape)
        q_dim, k_dim, v_dim = (shape[-1] for shape in input_shape[:3])
        out_dim = self.out_dim or q_dim
        v_units = self.heads * self.head_size
        for prefix, in_dim, units in (
            ("q", q_dim, self.heads * self.key_size),
            ("k", k_dim, self.kv_heads * self.key_size),
            ("v", v_dim, self.kv_heads * self.head_size),
            ("o", v_units, out_dim),
        ):
            setattr(
                self,
                prefix + "_kernel",
                self.add_weight(
                    name=prefix + "_kernel",
                    shape=(in_dim, units),
                    initializer=self.kernel_initializer,
                ),
            )
            if self.use_bias:
                setattr(
                    self,
                    prefix + "_bias",
                    self.add_weight(name=prefix + "_bias", shape=(units,), initializer="zeros"),
                )

    def _project(self, x, prefix, size, heads=None):
        bias = getattr(self, prefix + "_bias") if self.use_bias else None
        y = linear(x, getattr(self, prefix + "_kernel"), bias)
        if size is None:
            return y
        return ops.reshape(y, ops.shape(y)[:-1] + (heads or self.heads, size))

    def _shared_kv(self, x):
        """Grouped-query attention: each k/v head repeated for its query heads."""
        groups = self.heads // self.kv_heads
        return x if groups == 1 else ops.repeat(x, groups, axis=2)

    def _mask_and_bias(self, extras, mask):
        attn_mask, bias = None, None
        v_mask = mask[2] if isinstance(mask, (list, tuple)) and len(mask) > 2 else None
        if v_mask is not None:
            attn_mask = ops.cast(v_mask, "bool")[:, None, None, :]
        for extra in extras:
            if _is_bool(extra):
                attn_mask = extra if attn_mask is None else ops.logical_and(attn_mask, extra)
            else:
                bias = extra if bias is None else bias + extra
        return attn_mask, bias

    def call(self, inputs, mask=None, training=None, positions=None, inputs_mask=None, cache=None):
        mask = check_positions(self, positions, inputs_mask, mask)
        q, k, v = inputs[:3]
        attn_mask, bias = self._mask_and_bias(inputs[3:], mask)
        q = self._project(q, "q", self.key_size)
        if cache is not None and len(cache) == 3:  # decoding: projected cross keys/values
            k, v, key_mask = cache
            key_mask = ops.cast(key_mask, "bool")[:, None, None, :]
            attn_mask = key_mask if attn_mask is None else ops.logical_and(attn_mask, key_mask)
            cache = None
        else:
            k = self._project(k, "k", self.key_size, self.kv_heads)
            v = self._project(v, "v", self.head_size, self.kv_heads)
        if self.position_mode in ("rotary", "rotary_half"):
            halves = self.position_mode == "rotary_half"
            q = apply_rotary_position_embeddings(positions, q, halves=halves)
            k = apply_rotary_position_embeddings(positions, k, halves=halves)
        if cache is not None:  # decoding: write the new keys and values, attend to the cache
            k, v, cache_mask = write_cache(cache, k, v)
            attn_mask = cache_mask if attn_mask is None else ops.logical_and(attn_mask, cache_mask)
            cache = [k, v]
        k, v = self._shared_kv(k), self._shared_kv(v)
        relative = positions if self.position_mode == "relative" else None
        scale = 1.0 / math.sqrt(self.key_size) if self.attention_scale else 1.0
        dropout_active = self.dropout is not None and bool(training)
        if (
            dropout_active
            or relative is not None
            or self.return_attention_scores
            or self.key_size != self.head_size
            or self.explicit_attention
            or self.record_attention_probs
            or not _fused_kernel_fits(q.dtype)
        ):
            o, logits = self._explicit_attention(
                q, k, v, attn_mask, bias, scale, training, relative
            )
        else:
            attn_mask, bias = _fused_mask_and_bias(attn_mask, bias, q.dtype)
            o = ops.dot_product_attention(q, k, v, bias=bias, mask=attn_mask, scale=scale)
            logits = None
        o = ops.reshape(o, ops.shape(o)[:-2] + (self.heads * self.head_size,))
        o = self._project(o, "o", None)
        if cache is not None:
            return [o] + cache
        return [o, logits] if self.return_attention_scores else o

    def _explicit_attention(self, q, k, v, attn_mask, bias, scale, training, relative=None):
        # Logits, bias, mask and softmax in (at least) float32.
        dtype = keras.backend.result_type(q.dtype, "float32")
        logits_dtype = q.dtype
        q = ops.cast(q, dtype) * scale
        scores = ops.einsum("bqhd,bkhd->bhqk", q, ops.cast(k, dtype))
        if relative is not None:
            scores = scores + ops.einsum("bqhd,qkd->bhqk", q, ops.cast(relative, dtype))
        if bias is not None:
            # Keras casts float inputs to the compute dtype: under float16 a
            # -infinity() bias arrives as -inf; bring it back to -infinity().
            scores = scores + ops.maximum(ops.cast(bias, dtype), -infinity())
        logits = ops.cast(scores, logits_dtype)
        if attn_mask is not None:
            scores = ops.where(attn_mask, scores, -infinity())
        probs = ops.softmax(scores, axis=-1)
        if self.record_attention_probs:
            self.recorded_attention_probs = probs
        probs = ops.cast(probs, v.dtype)
        if self.dropout is not None:
            probs = self.dropout(probs, training=training)
        o = ops.einsum("bhqk,bkhd->bqhd", probs, v)
        if relative is not None:
            o = o + ops.einsum("bhqk,qkd->bqhd", probs, ops.cast(relative, probs.dtype))
        return o, logits

    def compute_mask(self, inputs, mask=None, positions=None):
        q_mask = first_mask(mask)
        return [q_mask, None] if self.return_attention_scores else q_mask

    def compute_output_shape(self, input_shape):
        q_shape, k_shape = input_shape[0], input_shape[1]
        out = tuple(q_shape[:-1]) + (self.out_dim or q_shape[-1],)
        if not self.return_attention_scores:
            return out
        return [out, (q_shape[0], self.heads, q_shape[1], k_shape[1])]

    def get_config(self):
        config = super().get_config()
        config.update(
            heads=self.heads,
            head_size=self.head_size,
            out_dim=self.out_dim,
            key_size=self.key_size,
            use_bias=self.use_bias,
            attention_scale=self.attention_scale,
            attention_dropout=self.attention_dropout,
            return_attention_scores=self.return_attention_scores,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            position_mode=self.position_mode,
            kv_heads=self.kv_heads,
        )
        return config
