"""Independent numpy forwards for NEZHA, RoFormer (v1), RoFormerV2 and GAU-α.

Written from the papers and the semantics of the original code (huawei-noah
NEZHA, bert4keras `NEZHA` / `RoFormer` / `RoFormerV2`, ZhuiyiTechnology
GAU-alpha), over Google-named weights (`bert/...` kernels are [in, out]).
Nothing here comes from nlp4keras: these forwards are the acceptance reference
for its model families. They compute in float64 by default.

Conventions shared by every forward:
* inputs are token ids and segment ids [batch, length]; token id 0 is padding
  and is masked out as a key for every query; queries at padded positions are
  computed like any other (they attend to the valid keys);
* outputs follow bert4keras: no head -> [sequence]; with_pool -> [pooled];
  with_mlm -> [mlm]; both -> [pooled, mlm]. with_mlm=True means softmax
  probabilities, a string names the activation ('linear' = logits).
"""

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


# ----------------------------------------------------------------- activations


def gelu(x):
    """Exact (erf) GELU, BERT's "gelu"."""
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype)


def swish(x):
    return x / (1.0 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0.0)


_ACTIVATIONS = {
    "gelu": gelu,
    "gelu_erf": gelu,
    "relu": relu,
    "swish": swish,
    "silu": swish,
    "tanh": np.tanh,
    "linear": lambda x: x,
}


def activation(name):
    try:
        return _ACTIVATIONS[name.lower()]
    except KeyError:
        raise ValueError(f"reference has no activation {name!r}") from None


def softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------- norms


def layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def rms_norm(x, eps):
    """Parameterless RMS norm of RoFormerV2 / GAU-α (no gamma, no beta)."""
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps)


# ------------------------------------------------------------------- attention


def masked_softmax(scores, key_mask):
    """Softmax over the last axis with invalid keys (key_mask False) at -inf.
    key_mask broadcasts against scores; every row needs one valid key."""
    scores = np.where(key_mask, scores, -np.inf)
    return softmax(scores)


def softmax_plus(scores, key_mask):
    """GAU-α's attention normalisation (kexue.fm/archives/8823):
    softmax(a * log(max(n, 16)) / log(512)) over the valid keys, n = number of
    valid keys of that sequence."""
    n = np.sum(np.broadcast_to(key_mask, scores.shape), axis=-1, keepdims=True)
    scale = (np.log(np.maximum(n, 16)) / np.log(512)).astype(scores.dtype)
    return masked_softmax(scores * scale, key_mask)


def sinusoid(positions, dim):
    """[len(positions), dim] table, interleaved: row p has
    sin(p / 10000^(2t/dim)) at 2t and cos(p / 10000^(2t/dim)) at 2t+1."""
    if dim % 2:
        raise ValueError(f"sinusoid needs an even dim, got {dim}")
    positions = np.asarray(positions, dtype=np.float64)
    inv = 10000.0 ** (-2.0 * np.arange(dim // 2) / dim)
    angles = positions[:, None] * inv[None, :]
    table = np.empty((len(positions), dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)
    return table


def rope(x, positions=None):
    """Rotary position embedding on axis -1 of x [batch, length, ..., d]
    (positions along axis 1, default 0..length-1): the pair (2t, 2t+1) at
    position m is rotated by the angle m * 10000^(-2t/d)."""
    length, d = x.shape[1], x.shape[-1]
    if d % 2:
        raise ValueError(f"rotary needs an even size, got {d}")
    if positions is None:
        positions = np.arange(length)
    theta = np.asarray(positions, np.float64)[:, None] * 10000.0 ** (-2.0 * np.arange(d // 2) / d)
    theta = theta.reshape((1, length) + (1,) * (x.ndim - 3) + (d // 2,))
    cos, sin = np.cos(theta).astype(x.dtype), np.sin(theta).astype(x.dtype)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty(x.shape, dtype=x.dtype)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x1 * cos + x0 * sin
    return out


def nezha_relative_table(length, max_relative_position, dim):
    """NEZHA's functional relative positions: [length, length, dim] with row
    (i, j) = E[clip(j - i, -K, K) + K], E = sinusoid(0..2K, dim)."""
    k = max_relative_position
    idx = np.arange(length)
    rel = np.clip(idx[None, :] - idx[:, None], -k, k) + k
    return sinusoid(np.arange(2 * k + 1), dim)[rel]


def dense(x, w, name, bias=True):
    y = x @ w[name + "/kernel"]
    if bias:
        y = y + w[name + "/bias"]
    return y


def multi_head_attention(x, w, prefix, heads, key_mask, bias=True, rotary=False, relative=None):
    """Google-named self-attention under `prefix` (".../attention").
    rotary: RoPE on q and k per head. relative: a [L, L, d] table added to
    the keys in the scores and to the values in the output (NEZHA)."""
    batch, length, _ = x.shape
    q = dense(x, w, prefix + "/self/query", bias)
    k = dense(x, w, prefix + "/self/key", bias)
    v = dense(x, w, prefix + "/self/value", bias)
    q, k, v = (t.reshape(batch, length, heads, -1) for t in (q, k, v))
    d = q.shape[-1]
    if rotary:
        q, k = rope(q), rope(k)
    scores = np.einsum("bihd,bjhd->bhij", q, k)
    if relative is not None:
        scores = scores + np.einsum("bihd,ijd->bhij", q, relative)
    scores = scores / math.sqrt(d)
    probs = masked_softmax(scores, key_mask[:, None, None, :])
    out = np.einsum("bhij,bjhd->bihd", probs, v)
    if relative is not None:
        out = out + np.einsum("bhij,ijd->bihd", probs, relative)
    return dense(out.reshape(batch, length, -1), w, prefix + "/output/dense", bias)


# --------------------------------------------------------------------- helpers


def _cast(w, dtype):
    return {name: np.asarray(value).astype(dtype) for name, value in w.items()}


def _embed(w, ids, segments):
    return (
        w["bert/embeddings/word_embeddings"][ids]
        + w["bert/embeddings/token_type_embeddings"][segments]
    )


def _ln(x, w, name, eps):
    return layer_norm(x, w[name + "/gamma"], w[name + "/beta"], eps)


def _mlm_activation(with_mlm):
    return softmax if with_mlm is True else activation(with_mlm)


def _outputs(sequence, pooled, mlm, dtype):
    outputs = [o for o in (pooled, mlm) if o is not None] or [sequence]
    return [np.asarray(o, dtype=dtype) for o in outputs]


def _post_ln_bert(w, config, ids, segments, rotary=False, relative=None):
    """BERT post-LN encoder without absolute positions (NEZHA, RoFormer v1)."""
    eps = config.get("layer_norm_eps", 1e-12)
    heads = config["num_attention_heads"]
    act = activation(config["hidden_act"])
    key_mask = ids != 0
    x = _ln(_embed(w, ids, segments), w, "bert/embeddings/LayerNorm", eps)
    for i in range(config["num_hidden_layers"]):
        p = f"bert/encoder/layer_{i}"
        a = multi_head_attention(
            x, w, p + "/attention", heads, key_mask, rotary=rotary, relative=relative
        )
        x = _ln(x + a, w, p + "/attention/output/LayerNorm", eps)
        f = dense(act(dense(x, w, p + "/intermediate/dense")), w, p + "/output/dense")
        x = _ln(x + f, w, p + "/output/LayerNorm", eps)
    return x


def _bert_heads(x, w, config, with_pool, with_mlm):
    pooled = mlm = None
    if with_pool:
        pooled = np.tanh(dense(x[:, 0], w, "bert/pooler/dense"))
    if with_mlm:
        h = activation(config["hidden_act"])(dense(x, w, "cls/predictions/transform/dense"))
        # bert4keras' MLM-Norm always uses epsilon 1e-12
        h = _ln(h, w, "cls/predictions/transform/LayerNorm", 1e-12)
        logits = h @ w["bert/embeddings/word_embeddings"].T + w["cls/predictions/output_bias"]
        mlm = _mlm_activation(with_mlm)(logits)
    return pooled, mlm


def _tied_mlm(x, w, with_mlm):
    if not with_mlm:
        return None
    return _mlm_activation(with_mlm)(x @ w["bert/embeddings/word_embeddings"].T)


# -------------------------------------------------------------------- forwards


def nezha_forward(w, config, ids, segments, with_pool=False, with_mlm=False, dtype=np.float64):
    """NEZHA (arXiv 1909.00204): BERT without absolute positions, functional
    relative positions (sinusoid table, clipped at K = max_relative_position,
    default 64) added to keys and values, the same table for all heads/layers."""
    w = _cast(w, dtype)
    length = ids.shape[1]
    head_size = config["hidden_size"] // config["num_attention_heads"]
    k = config.get("max_relative_position", 64)
    relative = nezha_relative_table(length, k, head_size).astype(dtype)
    x = _post_ln_bert(w, config, ids, segments, relative=relative)
    pooled, mlm = _bert_heads(x, w, config, with_pool, with_mlm)
    return _outputs(x, pooled, mlm, np.float32)


def roformer_forward(w, config, ids, segments, rotary=True, dtype=np.float64):
    """RoFormer v1 sequence output: BERT post-LN, no absolute positions, RoPE
    on q and k. (Only for the self-check against transformers.RoFormerModel.)"""
    w = _cast(w, dtype)
    return [np.asarray(_post_ln_bert(w, config, ids, segments, rotary=rotary), np.float32)]


def roformer_v2_forward(w, config, ids, segments, with_mlm=False, dtype=np.float64):
    """RoFormerV2: no biases, parameterless RMS norm, post-norm blocks with
    RoPE self-attention and a two-kernel FFN; MLM = tied embeddings only."""
    w = _cast(w, dtype)
    eps = config.get("layer_norm_eps", 1e-12)
    heads = config["num_attention_heads"]
    act = activation(config["hidden_act"])
    key_mask = ids != 0
    x = rms_norm(_embed(w, ids, segments), eps)
    for i in range(config["num_hidden_layers"]):
        p = f"bert/encoder/layer_{i}"
        a = multi_head_attention(x, w, p + "/attention", heads, key_mask, bias=False, rotary=True)
        x = rms_norm(x + a, eps)
        h = act(dense(x, w, p + "/intermediate/dense", bias=False))
        x = rms_norm(x + dense(h, w, p + "/output/dense", bias=False), eps)
    return _outputs(x, None, _tied_mlm(x, w, with_mlm), np.float32)


def gated_attention_unit(x, w, prefix, units, key_size, act, key_mask):
    """Single-head GAU with softmax_plus, no biases (GAU-α)."""
    z = act(x @ w[prefix + "/i_dense/kernel"])
    u, v, qk = z[..., :units], z[..., units : 2 * units], z[..., 2 * units :]
    assert qk.shape[-1] == key_size, (qk.shape, key_size)
    q = rope(qk * w[prefix + "/q_scaleoffset/gamma"])
    k = rope(qk * w[prefix + "/k_scaleoffset/gamma"])
    scores = np.einsum("bmd,bnd->bmn", q, k) / math.sqrt(key_size)
    probs = softmax_plus(scores, key_mask[:, None, :])
    return (u * np.einsum("bmn,bnd->bmd", probs, v)) @ w[prefix + "/o_dense/kernel"]


def gau_alpha_forward(w, config, ids, segments, with_mlm=False, dtype=np.float64):
    """GAU-α: RoFormerV2 embeddings, then x = rms(x + GAU(x)) per layer."""
    w = _cast(w, dtype)
    eps = config.get("layer_norm_eps", 1e-12)
    units = config["intermediate_size"]
    key_size = config["attention_key_size"]
    act = activation(config["hidden_act"])
    key_mask = ids != 0
    x = rms_norm(_embed(w, ids, segments), eps)
    for i in range(config["num_hidden_layers"]):
        p = f"GAU_alpha/encoder/layer_{i}/gau"
        x = rms_norm(x + gated_attention_unit(x, w, p, units, key_size, act, key_mask), eps)
    return _outputs(x, None, _tied_mlm(x, w, with_mlm), np.float32)
