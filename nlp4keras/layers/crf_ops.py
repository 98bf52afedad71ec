"""Tensor functions behind the CRF and MEMM heads (keras.ops, any backend):
padding scores and masks, the CRF log-partition and path score, and batched
Viterbi decoding. Conventions are those of `nlp4keras.layers.crf`."""

import numpy as np
from keras import ops

from nlp4keras.backend import infinity

PAD_SCORE = -infinity()
PAD_THRESHOLD = PAD_SCORE / 2


# ----------------------------------------------------------------------------
# Checks and small helpers


def _check_emissions(emissions, num_labels=None, who="emissions"):
    shape = tuple(emissions.shape)
    if len(shape) != 3:
        raise ValueError(f"{who} must have shape [batch, steps, num_labels], got shape {shape}")
    if num_labels is not None and shape[-1] is not None and shape[-1] != num_labels:
        raise ValueError(
            f"{who} have {shape[-1]} labels but the transition matrix has {num_labels}"
        )
    return shape


def _check_trans(trans):
    shape = tuple(trans.shape)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"the transition matrix must be square [K, K], got shape {shape}")
    return shape[0]


def _label_bias(allowed, num_labels, name):
    """0 for allowed labels, PAD_SCORE for the others (None allows all)."""
    bias = np.zeros(num_labels, "float32")
    if allowed is None:
        return bias
    allowed = [int(i) for i in allowed]
    if not allowed:
        raise ValueError(f"{name} must name at least one label")
    bad = [i for i in allowed if not 0 <= i < num_labels]
    if bad:
        raise ValueError(f"{name} has label ids {bad} outside [0, {num_labels})")
    bias[:] = PAD_SCORE
    bias[allowed] = 0.0
    return bias


def scores_mask(scores):
    """The [batch, steps] mask of real tokens, read back from CRF/MEMM outputs."""
    return ops.all(ops.greater(scores, PAD_THRESHOLD), axis=-1)


def _labels_like(y_true, y_pred):
    """Integer labels [batch, steps] from [batch, steps] or [batch, steps, 1]."""
    return ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")


def _time_major(x):
    return ops.moveaxis(x, 1, 0)


# ----------------------------------------------------------------------------
# Backend-neutral CRF maths (keras.ops; jit- and autodiff-friendly)


def _prepare(emissions, trans, mask):
    """Checked float32 emissions (0 on padding) and trans, a bool mask (all
    True when None) and the label count."""
    num_labels = _check_trans(trans)
    _check_emissions(emissions, num_labels)
    emissions = ops.cast(emissions, "float32")
    if mask is None:
        mask = ops.ones(ops.shape(emissions)[:2], "bool")
    mask = ops.cast(mask, "bool")
    emissions = ops.where(mask[..., None], emissions, 0.0)
    return emissions, ops.cast(trans, "float32"), mask, num_labels


def crf_log_partition(emissions, trans, mask=None):
    """log Z per sequence: logsumexp over every label path of
    sum_t emissions[t, y_t] + sum_t trans[y_t, y_{t+1}] (valid steps only),
    by the forward algorithm in log space. Returns [batch] float32.

    The forward scores are shifted by their maximum at every step (the shifts
    summed apart), so they stay small and float32 keeps its precision on long
    sequences: unshifted, they grow like the sequence length."""
    emissions, trans, mask, _ = _prepare(emissions, trans, mask)
    offset = ops.max(emissions[:, 0], axis=-1)
    alpha = emissions[:, 0] - offset[:, None]
    if emissions.shape[1] > 1:

        def step(carry, inputs):
            alpha, offset = carry
            scores, valid = inputs
            new = ops.logsumexp(alpha[:, :, None] + trans[None], axis=1) + scores
            shift = ops.max(new, axis=-1)
            alpha = ops.where(valid[:, None], new - shift[:, None], alpha)
            return (alpha, offset + ops.where(valid, shift, 0.0)), None

        inputs = (_time_major(emissions[:, 1:]), _time_major(mask[:, 1:]))
        (alpha, offset), _ = ops.scan(step, (alpha, offset), inputs)
    return offset + ops.logsumexp(alpha, axis=-1)


def crf_path_score(emissions, trans, labels, mask=None):
    """Score of given integer label paths [batch, steps]: emissions of the
    chosen labels plus the transitions between consecutive valid steps."""
    emissions, trans, mask, num_labels = _prepare(emissions, trans, mask)
    labels = ops.cast(labels, "int32")
    valid = ops.cast(mask, "float32")
    chosen = ops.take_along_axis(emissions, labels[..., None], axis=-1)[..., 0]
    pairs = labels[:, :-1] * num_labels + labels[:, 1:]
    steps = ops.take(ops.reshape(trans, (-1,)), pairs, axis=0)
    both = valid[:, :-1] * valid[:, 1:]
    return ops.sum(chosen, axis=1) + ops.sum(steps * both, axis=1)


def viterbi_decode(emissions, trans, mask=None, starts=None, ends=None):
    """Best label path per sequence, on device (keras.ops, batched).

    emissions: [batch, steps, K]; trans: [K, K]; mask: [batch, steps] bool
    (right padding). starts / ends: label ids allowed at the first / last real
    step (None allows all; when no path can satisfy both, the result is
    arbitrary). Returns int32 paths [batch, steps], 0 on padding.
    """
    emissions, trans, mask, num_labels = _prepare(emissions, trans, mask)
    start_bias = ops.convert_to_tensor(_label_bias(starts, num_labels, "starts"))
    end_bias = ops.convert_to_tensor(_label_bias(ends, num_labels, "ends"))

    score = emissions[:, 0] + start_bias
    if emissions.shape[1] == 1:
        best = ops.cast(ops.argmax(score + end_bias, axis=-1), "int32")
        return ops.where(mask, best[:, None], 0)

    stay = ops.arange(num_labels, dtype="int32")[None]

    def forward(score, inputs):
        scores, valid = inputs
        candidates = score[:, :, None] + trans[None]  # [batch, from, to]
        came_from = ops.cast(ops.argmax(candidates, axis=1), "int32")
        new = ops.max(candidates, axis=1) + scores
        new = new - ops.max(new, axis=-1, keepdims=True)  # same argmax, small numbers
        # Padded steps keep the score and point every label back at itself.
        pointers = ops.where(valid[:, None], came_from, stay)
        # Emitted as float (exact for label ids): Keras' TF scan wants the
        # outputs in the carry's dtype.
        return ops.where(valid[:, None], new, score), ops.cast(pointers, score.dtype)

    inputs = (_time_major(emissions[:, 1:]), _time_major(mask[:, 1:]))
    score, pointers = ops.scan(forward, score, inputs)  # pointers: [steps-1, batch, K]
    pointers = ops.cast(pointers, "int32")
    last = ops.cast(ops.argmax(score + end_bias, axis=-1), "int32")

    def backward(label, pointer):
        previous = ops.take_along_axis(pointer, label[:, None], axis=1)[:, 0]
        return previous, label

    first, rest = ops.scan(backward, last, pointers, reverse=True)
    paths = ops.concatenate([first[:, None], ops.transpose(rest)], axis=1)
    return ops.where(mask, paths, 0)


# ----------------------------------------------------------------------------
# Layers
