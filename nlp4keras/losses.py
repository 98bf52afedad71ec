"""Losses: multi-label categorical cross-entropy (dense and sparse, also for
GlobalPointer spans) and contrastive losses (InfoNCE, FlatNCE).

Every function takes (y_true, y_pred) and returns one loss per sample, so it
can go straight into `model.compile(loss=...)`; the classes carry the options
(mask_zero, temperature) and serialise with the model.
"""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import (
    describe,
    dimension,
    infinity,
    integer_labels,
    require_all,
    serializable,
    shapes_compatible,
)


def _epsilon():
    return keras.config.epsilon()


def _append_zero(x):
    """x with a 0 appended on the last axis: logsumexp of it is log(1 + sum e^x)."""
    return ops.concatenate([x, ops.zeros_like(x[..., :1])], axis=-1)


def _valid_logits(y_pred):
    """Logits above -infinity()/10: masked-out entries (as GlobalPointer makes)
    are neither positives nor negatives."""
    return y_pred > -infinity() / 10


# ---------------------------------------------------------------------------
# Multi-label categorical cross-entropy (kexue.fm/archives/7359, 9064, 8888)
# ---------------------------------------------------------------------------


@serializable
def multilabel_categorical_crossentropy(y_true, y_pred):
    """Multi-label "softmax + cross-entropy" on logits (class i is predicted
    iff y_pred_i > 0):

        log(1 + sum_{neg i} e^{s_i}) + log(1 + sum_{pos j} e^{-s_j})

    y_true: 0/1 labels shaped like y_pred (soft labels in [0, 1] also work,
    kexue.fm/archives/9064); a label outside [0, 1] (or NaN) is an error, on
    every backend and inside compiled code too. Reduces the last axis.
    """
    who = "multilabel_categorical_crossentropy"
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if not shapes_compatible(y_true.shape, y_pred.shape):
        raise ValueError(
            f"{who}: y_true and y_pred must have the same "
            f"shape, got {tuple(y_true.shape)} and {tuple(y_pred.shape)}"
        )
    y_true = ops.cast(y_true, y_pred.dtype)
    in_range = ops.logical_and(y_true >= 0, y_true <= 1)
    y_true = require_all(
        in_range, y_true, f"{who}: labels (y_true) must lie in [0, 1], got one outside (or NaN)"
    )
    eps = _epsilon()
    valid = _valid_logits(y_pred)
    is_neg = ops.logical_and(y_true < 1 - eps, valid)
    is_pos = ops.logical_and(y_true > eps, valid)
    # Soft labels weight each term: (1 - t) e^{s} and t e^{-s}, in log space.
    neg_weight = ops.log(ops.clip(1 - y_true, eps, 1))
    pos_weight = ops.log(ops.clip(y_true, eps, 1))
    off = ops.cast(-infinity(), y_pred.dtype)
    y_neg = ops.where(is_neg, y_pred + neg_weight, off)
    y_pos = ops.where(is_pos, -y_pred + pos_weight, off)
    neg_loss = ops.logsumexp(_append_zero(y_neg), axis=-1)
    pos_loss = ops.logsumexp(_append_zero(y_pos), axis=-1)
    return neg_loss + pos_loss


def _positive_mask(indices, num_classes):
    """Bool [..., C] with True at the classes listed in `indices` [..., K]."""
    k = ops.shape(indices)[-1]
    flat = ops.reshape(indices, (-1, k))
    rows = ops.shape(flat)[0]
    row_ids = ops.broadcast_to(ops.arange(rows, dtype="int32")[:, None], (rows, k))
    coords = ops.stack([ops.reshape(row_ids, (-1,)), ops.reshape(flat, (-1,))], axis=-1)
    hits = ops.scatter_update(
        ops.zeros((rows, num_classes), dtype="int32"), coords, ops.ones((rows * k,), "int32")
    )
    return ops.reshape(hits > 0, ops.shape(indices)[:-1] + (num_classes,))


@serializable
def sparse_multilabel_categorical_crossentropy(y_true, y_pred, mask_zero=False):
    """`multilabel_categorical_crossentropy` with the positives given as class
    indices (kexue.fm/archives/8888), which keeps labels small when there are
    many classes (GlobalPointer spans).

    y_true: [..., K] integer indices of the positive classes, each in
    [0, C) (checked on every backend, inside compiled code too; a class listed
    twice counts once); y_pred: [..., C] logits, with the same leading shape.
    mask_zero=True: index 0 is padding, so rows may be padded with 0 and class
    0 takes no part in the loss.

    bert4keras computes the negative part as log(1 - e^{lse(pos) - lse(all)})
    with clipping, which goes wrong once positives beat negatives by more
    than ~16 nats (float32 cancellation). Here the listed classes are
    scattered into a mask over y_pred instead, so both parts are plain,
    exact logsumexps; the value is the same as the dense loss.
    """
    who = "sparse_multilabel_categorical_crossentropy"
    mask_zero = validation.boolean(mask_zero, "mask_zero", who)
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) != len(y_pred.shape) or not shapes_compatible(
        y_true.shape[:-1], y_pred.shape[:-1]
    ):
        raise ValueError(
            f"{who}: y_true [..., K] (class indices) and y_pred [..., C] need the same rank "
            f"and leading shape, got shapes {tuple(y_true.shape)} and {tuple(y_pred.shape)}"
        )
    num_classes = dimension(y_pred, -1)
    indices = integer_labels(
        y_true,
        num_classes,
        f"{who}: class indices (y_true) must be integers in [0, {describe(num_classes, 'C')}), "
        "got one outside",
    )
    off = ops.cast(-infinity(), y_pred.dtype)
    valid = _valid_logits(y_pred)
    if mask_zero:
        valid = ops.logical_and(valid, ops.arange(num_classes) > 0)
    is_pos = ops.logical_and(valid, _positive_mask(indices, num_classes))
    is_neg = ops.logical_and(valid, ops.logical_not(is_pos))
    pos_loss = ops.logsumexp(_append_zero(ops.where(is_pos, -y_pred, off)), axis=-1)
    neg_loss = ops.logsumexp(_append_zero(ops.where(is_neg, y_pred, off)), axis=-1)
    return neg_loss + pos_loss


def _heads_by_spans(x):
    """[batch, heads, n, n] -> [batch, heads, n*n]."""
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], shape[1], -1))


@serializable
def global_pointer_crossentropy(y_true, y_pred):
    """Multi-label CE for GlobalPointer: every (start, end) span of a head is a
    class. y_true (0/1), y_pred: [batch, heads, n, n]. Mean over heads, one
    value per sample."""
    who = "global_pointer_crossentropy"
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if len(y_pred.shape) != 4:
        raise ValueError(f"{who} expects [batch, heads, n, n], got {tuple(y_pred.shape)}")
    if not shapes_compatible(y_true.shape, y_pred.shape):
        raise ValueError(
            f"{who}: y_true must have y_pred's shape [batch, heads, n, n] = "
            f"{tuple(y_pred.shape)}, got {tuple(y_true.shape)}"
        )
    loss = multilabel_categorical_crossentropy(_heads_by_spans(y_true), _heads_by_spans(y_pred))
    return ops.mean(loss, axis=1)


@serializable
def sparse_global_pointer_crossentropy(y_true, y_pred):
    """Sparse `global_pointer_crossentropy`: y_true [batch, heads, K, 2] holds
    (start, end) pairs padded with (0, 0); span (0, 0) is never a real entity
    there (it is the [CLS] token). Starts and ends must be in [0, n) (checked
    on every backend, inside compiled code too)."""
    who = "sparse_global_pointer_crossentropy"
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if (
        len(y_pred.shape) != 4
        or len(y_true.shape) != 4
        or y_true.shape[-1] not in (2, None)
        or not shapes_compatible(y_true.shape[:2], y_pred.shape[:2])
    ):
        raise ValueError(
            f"{who} expects y_true [batch, heads, K, 2] and "
            f"y_pred [batch, heads, n, n], got {tuple(y_true.shape)} and {tuple(y_pred.shape)}"
        )
    n = dimension(y_pred, -1)
    spans = integer_labels(
        y_true,
        n,
        f"{who}: span starts and ends (y_true) must be integers in [0, {describe(n, 'n')}), "
        "got one outside",
    )
    flat_ids = spans[..., 0] * n + spans[..., 1]
    loss = sparse_multilabel_categorical_crossentropy(
        flat_ids, _heads_by_spans(y_pred), mask_zero=True
    )
    return ops.mean(loss, axis=1)


# ---------------------------------------------------------------------------
# Contrastive losses: InfoNCE (SimCSE / SimBERT) and FlatNCE (arXiv 2107.01152)
# ---------------------------------------------------------------------------


def _positives(logits, positives, who):
    """The checked column of each row's positive: `positives` [N] with
    values in [0, M), or the diagonal (which needs M >= N)."""
    if len(logits.shape) != 2:
        raise ValueError(f"{who}: logits must be [N, M], got shape {tuple(logits.shape)}")
    rows, columns = logits.shape
    if positives is None:
        if rows is not None and columns is not None and rows > columns:
            raise ValueError(
                f"{who}: the default positives are the diagonal, which needs at least as "
                f"many columns as rows; got logits of shape {(rows, columns)}"
            )
        return ops.arange(ops.shape(logits)[0], dtype="int32")
    positives = ops.convert_to_tensor(positives)
    if not shapes_compatible(positives.shape, (rows,)):
        raise ValueError(
            f"{who}: positives must be [N] = ({rows},), one column per row, got shape "
            f"{tuple(positives.shape)}"
        )
    return integer_labels(
        positives, columns, f"{who}: positives must be integers in [0, {columns}), got one outside"
    )


def _positive_logits(logits, positives):
    return ops.take_along_axis(logits, ops.expand_dims(positives, -1), axis=-1)[..., 0]


def infonce_from_logits(logits, positives=None):
    """InfoNCE, i.e. cross-entropy, on a [N, M] matrix of scaled similarities:
    row i's positive is column positives[i] (default i, the diagonal of a
    query x key matrix) and every other column is a negative. Entries at
    -infinity() (e.g. a masked self-similarity) take no part. Returns [N]."""
    logits = ops.convert_to_tensor(logits)
    positives = _positives(logits, positives, "infonce_from_logits")
    return ops.logsumexp(logits, axis=-1) - _positive_logits(logits, positives)


def flatnce_from_logits(logits, positives=None):
    """FlatNCE (arXiv 2107.01152, kexue.fm/archives/8586) on the same input as
    `infonce_from_logits`: with L = logsumexp_{neg}(s_neg - s_pos), the loss is
    exp(L - stop_gradient(L)). Its value is always 1, and its gradient is
    InfoNCE's divided by sigmoid(L), so it does not vanish when the batch is
    already well separated (small batches, where InfoNCE saturates)."""
    logits = ops.convert_to_tensor(logits)
    positives = _positives(logits, positives, "flatnce_from_logits")
    columns = ops.arange(ops.shape(logits)[-1], dtype="int32")
    is_positive = ops.expand_dims(positives, -1) == columns
    margins = logits - ops.expand_dims(_positive_logits(logits, positives), -1)
    margins = ops.where(is_positive, ops.cast(-infinity(), logits.dtype), margins)
    spread = ops.logsumexp(margins, axis=-1)
    return ops.exp(spread - ops.stop_gradient(spread))


def paired_similarity_logits(embeddings, temperature=0.05):
    """Cosine similarities / temperature of a [2B, D] batch in which rows 2i
    and 2i+1 are a positive pair (SimCSE: each sentence twice, dropout makes
    the two differ; SimBERT / supervised SimCSE: a sentence and its
    paraphrase). Self-similarities are set to -infinity(). Returns the
    [2B, 2B] logits and each row's partner index [2B]."""
    temperature = _temperature(temperature, "paired_similarity_logits")
    x = ops.convert_to_tensor(embeddings)
    if len(x.shape) != 2:
        raise ValueError(f"paired embeddings must be [2B, dim], got shape {tuple(x.shape)}")
    rows = x.shape[0]
    if rows is not None and rows % 2:
        raise ValueError(f"paired embeddings need an even number of rows (pairs), got {rows}")
    x = x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))
    logits = ops.matmul(x, ops.transpose(x)) / temperature
    ids = ops.arange(ops.shape(x)[0], dtype="int32")
    logits = ops.where(ids[:, None] == ids[None, :], ops.cast(-infinity(), logits.dtype), logits)
    partners = ids + 1 - 2 * (ids % 2)  # 0<->1, 2<->3, ...
    return logits, partners


@serializable
def infonce_loss(y_true, y_pred, temperature=0.05):
    """In-batch InfoNCE of SimCSE / SimBERT (bert4keras' `simcse_loss`):
    y_pred is a [2B, D] batch of embeddings with rows 2i and 2i+1 paired (see
    `paired_similarity_logits`); y_true is ignored (pass zeros). One loss per
    row. Pairs must stay adjacent within a batch: feed batches from a
    generator, or `fit(..., shuffle=False)` on pre-paired arrays. For a
    query x key matrix of logits use `infonce_from_logits`."""
    del y_true  # labels come from the pairing
    return infonce_from_logits(*paired_similarity_logits(y_pred, temperature))


@serializable
def flatnce_loss(y_true, y_pred, temperature=0.05):
    """FlatNCE on the same paired batch as `infonce_loss`. The loss value is
    always 1; watch a metric, not the loss, to follow training."""
    del y_true
    return flatnce_from_logits(*paired_similarity_logits(y_pred, temperature))


# ---------------------------------------------------------------------------
# keras.losses.Loss classes (options travel with the saved model)
# ---------------------------------------------------------------------------


class _Loss(keras.losses.Loss):
    """A Loss that calls a per-sample function with fixed keyword options."""

    def __init__(self, fn, options, name, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._fn = fn
        self._options = options

    def call(self, y_true, y_pred):
        return self._fn(y_true, y_pred, **self._options)

    def get_config(self):
        return {**super().get_config(), **self._options}


@serializable
class MultilabelCategoricalCrossentropy(_Loss):
    """Loss class for `multilabel_categorical_crossentropy`."""

    def __init__(self, name="multilabel_categorical_crossentropy", **kwargs):
        super().__init__(multilabel_categorical_crossentropy, {}, name=name, **kwargs)


@serializable
class SparseMultilabelCategoricalCrossentropy(_Loss):
    """Loss class for `sparse_multilabel_categorical_crossentropy`."""

    def __init__(
        self, mask_zero=False, name="sparse_multilabel_categorical_crossentropy", **kwargs
    ):
        options = {"mask_zero": validation.boolean(mask_zero, "mask_zero", type(self).__name__)}
        super().__init__(sparse_multilabel_categorical_crossentropy, options, name=name, **kwargs)


def _temperature(value, who):
    return validation.real(value, "temperature", who, above=0)


@serializable
class InfoNCE(_Loss):
    """Loss class for `infonce_loss` (paired [2B, D] embeddings)."""

    def __init__(self, temperature=0.05, name="infonce", **kwargs):
        options = {"temperature": _temperature(temperature, "InfoNCE")}
        super().__init__(infonce_loss, options, name=name, **kwargs)


@serializable
class FlatNCE(_Loss):
    """Loss class for `flatnce_loss` (paired [2B, D] embeddings)."""

    def __init__(self, temperature=0.05, name="flatnce", **kwargs):
        options = {"temperature": _temperature(temperature, "FlatNCE")}
        super().__init__(flatnce_loss, options, name=name, **kwargs)
