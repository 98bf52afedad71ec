"""Tensor functions behind the CRF and MEMM heads (keras.ops, any backend):
padding scores and masks, the CRF log-partition and path score, and batched
Viterbi decoding. Conventions are those of `nlp4keras.layers.crf`."""

import numpy as np
from keras import ops

from nlp4keras import validation
from nlp4keras.backend import infinity, integer_labels
from nlp4keras.tensor_checks import check_range

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


def label_ids(allowed, name, who):
    """None, or a non-empty list of label ids (integers >= 0)."""
    return None if allowed is None else validation.integer_list(allowed, name, who)


def _label_bias(allowed, num_labels, name, who="viterbi_decode"):
    """0 for allowed labels, PAD_SCORE for the others (None allows all)."""
    bias = np.zeros(num_labels, "float32")
    allowed = label_ids(allowed, name, who)
    if allowed is None:
        return bias
    bad = [i for i in allowed if not 0 <= i < num_labels]
    if bad:
        raise ValueError(f"{who}: `{name}` has label ids {bad} outside [0, {num_labels})")
    bias[:] = PAD_SCORE
    bias[allowed] = 0.0
    return bias


def scores_mask(scores):
    """The [batch, steps] mask of real tokens, read back from CRF/MEMM outputs:
    a position is padding when every score is at or below PAD_THRESHOLD (a NaN
    score makes it a real token, so the NaN shows in the loss)."""
    return ops.logical_not(ops.all(ops.less_equal(scores, PAD_THRESHOLD), axis=-1))


def _static_dims_differ(a, b):
    return a is not None and b is not None and a != b


def _check_label_shape(y_true, y_pred, who, dense):
    """Sparse labels are [batch, steps] or [batch, steps, 1]; dense ones have
    y_pred's shape [batch, steps, num_labels]. Dimensions unknown when traced
    are not compared."""
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    if dense:
        wanted = "one-hot (or soft) labels [batch, steps, num_labels] shaped like y_pred"
        fits = len(true_shape) == 3
    else:
        wanted = "integer labels [batch, steps] or [batch, steps, 1]"
        fits = len(true_shape) == 2 or (len(true_shape) == 3 and true_shape[-1] in (1, None))
    if fits:
        compared = 3 if dense else 2
        fits = not any(_static_dims_differ(a, b) for a, b in zip(true_shape[:compared], pred_shape))
    if not fits:
        hint = "" if dense else "; one-hot labels go to dense_loss / dense_accuracy"
        raise ValueError(
            f"{who}: y_true must be {wanted}, got shape {true_shape} for y_pred of shape "
            f"{pred_shape}{hint}"
        )


def checked_labels(y_true, y_pred, mask, num_labels, who):
    """Integer labels [batch, steps] from [batch, steps] or [batch, steps, 1]
    (Keras hands them over as floats), 0 on padding, after checking on every
    backend (inside compiled code too: nlp4keras.tensor_checks) that each
    label of a real token is an integer in [0, num_labels). Labels on padded
    positions are ignored, whatever they are (-100 included)."""
    _check_label_shape(y_true, y_pred, who, dense=False)
    labels = ops.reshape(y_true, ops.shape(y_pred)[:-1])
    labels = ops.where(mask, labels, ops.zeros_like(labels))
    message = (
        f"{who}: labels (y_true) must be integers in [0, {num_labels}) on real tokens, "
        "got one outside"
    )
    return integer_labels(labels, num_labels, message)


def dense_labels(y_true, y_pred, who):
    """`y_true` as float32 after checking it is shaped like y_pred."""
    _check_label_shape(y_true, y_pred, who, dense=True)
    return ops.cast(y_true, "float32")


def right_padded(mask, who):
    """`mask`, after checking (on every backend, inside compiled code too) that
    no real token follows a padded one: the CRF maths assume right padding."""
    if mask.shape[1] is not None and mask.shape[1] < 2:
        return mask
    gaps = ops.logical_and(mask[:, 1:], ops.logical_not(mask[:, :-1]))
    count = check_range(
        ops.sum(ops.cast(gaps, "int32")),
        0,
        1,
        f"{who}: padding must come after the real tokens of each sequence (right "
        "padding), got a real token after a padded one",
    )
    # Ties the check to the result (TensorFlow graphs run what is used).
    return ops.logical_and(mask, ops.equal(count, 0))


def _time_major(x):
    return ops.moveaxis(x, 1, 0)


def _steps_after_first(emissions, mask):
    """The scan inputs of steps 1..T-1 as one time-major tensor [T-1, batch, K+1]
    (emissions, then the mask as 0/1): Keras' TensorFlow scan fails on several
    inputs when the length is unknown (as in fit). `_split_step` undoes it."""
    valid = ops.cast(mask[:, 1:, None], emissions.dtype)
    return _time_major(ops.concatenate([emissions[:, 1:], valid], axis=-1))


def _split_step(inputs):
    return inputs[:, :-1], inputs[:, -1] > 0.5


# ----------------------------------------------------------------------------
# Backend-neutral CRF maths (keras.ops; jit- and autodiff-friendly)


def _prepare(emissions, trans, mask, who):
    """Checked float32 emissions (0 on padding) and trans, a bool mask (all
    True when None; else checked to be right-padded) and the label count."""
    num_labels = _check_trans(trans)
    _check_emissions(emissions, num_labels)
    emissions = ops.cast(emissions, "float32")
    if mask is None:
        mask = ops.ones(ops.shape(emissions)[:2], "bool")
    else:
        _check_mask_shape(mask, emissions, who)
        mask = right_padded(ops.cast(mask, "bool"), who)
    emissions = ops.where(mask[..., None], emissions, 0.0)
    return emissions, ops.cast(trans, "float32"), mask, num_labels


def _check_mask_shape(mask, emissions, who):
    shape, wanted = tuple(mask.shape), tuple(emissions.shape[:2])
    if len(shape) != 2 or any(_static_dims_differ(a, b) for a, b in zip(shape, wanted)):
        raise ValueError(f"{who}: mask must have shape [batch, steps] = {wanted}, got {shape}")


def crf_log_partition(emissions, trans, mask=None):
    """log Z per sequence: logsumexp over every label path of
    sum_t emissions[t, y_t] + sum_t trans[y_t, y_{t+1}] (valid steps only),
    by the forward algorithm in log space. Returns [batch] float32; 0 for a
    sequence without any real token (its only path, the empty one, scores 0).

    The forward scores are shifted by their maximum at every step (the shifts
    summed apart), so they stay small and float32 keeps its precision on long
    sequences: unshifted, they grow like the sequence length."""
    return log_partition(*_prepare(emissions, trans, mask, "crf_log_partition")[:3])


def log_partition(emissions, trans, mask):
    """`crf_log_partition` on inputs already checked (emissions 0 on padding)."""
    offset = ops.max(emissions[:, 0], axis=-1)
    alpha = emissions[:, 0] - offset[:, None]
    if emissions.shape[1] is None or emissions.shape[1] > 1:

        def step(carry, inputs):
            alpha, offset = carry
            scores, valid = _split_step(inputs)
            new = ops.logsumexp(alpha[:, :, None] + trans[None], axis=1) + scores
            shift = ops.max(new, axis=-1)
            alpha = ops.where(valid[:, None], new - shift[:, None], alpha)
            carry = (alpha, offset + ops.where(valid, shift, 0.0))
            return carry, carry  # Keras' TensorFlow scan wants outputs like the carry

        (alpha, offset), _ = ops.scan(step, (alpha, offset), _steps_after_first(emissions, mask))
    return ops.where(ops.any(mask, axis=1), offset + ops.logsumexp(alpha, axis=-1), 0.0)


def crf_path_score(emissions, trans, labels, mask=None):
    """Score of given integer label paths [batch, steps]: emissions of the
    chosen labels plus the transitions between consecutive valid steps.
    Labels of real steps must be in [0, K) (checked); padded ones are ignored."""
    emissions, trans, mask, num_labels = _prepare(emissions, trans, mask, "crf_path_score")
    labels = ops.convert_to_tensor(labels)
    labels = checked_labels(labels, emissions, mask, num_labels, "crf_path_score")
    return path_score(emissions, trans, labels, mask)


def path_score(emissions, trans, labels, mask):
    """`crf_path_score` on inputs already checked (labels int32, 0 on padding)."""
    num_labels = trans.shape[0]
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
    emissions, trans, mask, num_labels = _prepare(emissions, trans, mask, "viterbi_decode")
    start_bias = ops.convert_to_tensor(_label_bias(starts, num_labels, "starts"))
    end_bias = ops.convert_to_tensor(_label_bias(ends, num_labels, "ends"))

    score = emissions[:, 0] + start_bias
    if emissions.shape[1] == 1:
        best = ops.cast(ops.argmax(score + end_bias, axis=-1), "int32")
        return ops.where(mask, best[:, None], 0)

    stay = ops.arange(num_labels, dtype="int32")[None]

    def forward(score, inputs):
        scores, valid = _split_step(inputs)
        candidates = score[:, :, None] + trans[None]  # [batch, from, to]
        came_from = ops.cast(ops.argmax(candidates, axis=1), "int32")
        new = ops.max(candidates, axis=1) + scores
        new = new - ops.max(new, axis=-1, keepdims=True)  # same argmax, small numbers
        # Padded steps keep the score and point every label back at itself.
        pointers = ops.where(valid[:, None], came_from, stay)
        # Emitted as float (exact for label ids): Keras' TF scan wants the
        # outputs in the carry's dtype.
        return ops.where(valid[:, None], new, score), ops.cast(pointers, score.dtype)

    # pointers: [steps-1, batch, K]
    score, pointers = ops.scan(forward, score, _steps_after_first(emissions, mask))
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
