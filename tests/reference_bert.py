"""An independent numpy BERT forward pass over Google-named weights.

Used as the reference for options transformers does not have (RealFormer
residual attention, Conditional LayerNorm, hierarchical positions, custom
position ids). Written from the BERT equations, not from nlp4keras.
"""

import math

import numpy as np

erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def hierarchical_positions(table, positions, alpha=0.4):
    """Rows for positions beyond the table: alpha*u[p // n] + (1-alpha)*u[p % n],
    u = (table - alpha*table[0]) / (1 - alpha)."""
    n = table.shape[0]
    u = (table - alpha * table[0:1]) / (1.0 - alpha)
    return alpha * u[positions // n] + (1.0 - alpha) * u[positions % n]


def bert_forward(
    w,
    ids,
    segments,
    heads,
    num_layers,
    positions=None,
    allowed=None,
    residual=False,
    ln=layer_norm,
    position_rows=None,
):
    """Last hidden states. w: Google-named weights. allowed: optional boolean
    [B, S, S] mask (on top of padding). residual: RealFormer logits carried
    from layer to layer. ln(x, gamma, beta, name): LayerNorm hook.
    position_rows: precomputed [B, S, H] position embeddings."""
    batch, length = ids.shape
    if position_rows is None:
        if positions is None:
            positions = np.tile(np.arange(length), (batch, 1))
        position_rows = w["bert/embeddings/position_embeddings"][positions]
    x = (
        w["bert/embeddings/word_embeddings"][ids]
        + w["bert/embeddings/token_type_embeddings"][segments]
        + position_rows
    )
    x = ln(x, w["bert/embeddings/LayerNorm/gamma"], w["bert/embeddings/LayerNorm/beta"])
    visible = np.broadcast_to((ids != 0)[:, None, :], (batch, length, length))
    if allowed is not None:
        visible = visible & allowed
    previous = 0.0
    for i in range(num_layers):
        p = f"bert/encoder/layer_{i}/"

        def dense(h, name):
            return h @ w[p + name + "/kernel"] + w[p + name + "/bias"]

        def split(h):
            return h.reshape(batch, length, heads, -1).transpose(0, 2, 1, 3)

        q, k, v = (split(dense(x, "attention/self/" + n)) for n in ("query", "key", "value"))
        logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + previous
        if residual:
            previous = logits
        scores = np.where(visible[:, None], logits, -1e12)
        context = (softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
        x = ln(
            x + dense(context, "attention/output/dense"),
            w[p + "attention/output/LayerNorm/gamma"],
            w[p + "attention/output/LayerNorm/beta"],
        )
        h = dense(gelu(dense(x, "intermediate/dense")), "output/dense")
        x = ln(x + h, w[p + "output/LayerNorm/gamma"], w[p + "output/LayerNorm/beta"])
    return x
