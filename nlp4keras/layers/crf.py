"""Sequence labelling heads: linear-chain CRF, bidirectional MEMM, Viterbi decoding.

Conventions shared by everything here:

- emissions (a.k.a. nodes, unary scores) are `[batch, steps, num_labels]`;
- `trans[i, j]` scores the label `i` at step t followed by the label `j` at step t+1;
- masks are boolean `[batch, steps]`, True on real tokens, padded on the right
  (a real token after a padded one is an error). A sequence may be all padding:
  its loss is 0 and it takes no part in the accuracy.
- integer labels of real tokens must lie in [0, num_labels); this is checked on
  every backend, inside compiled `fit` / `evaluate` too (see
  `nlp4keras.tensor_checks`), while labels on padded positions are ignored.

The CRF and MEMM layers write `PAD_SCORE` (a large finite negative number, not
-inf, so no NaN can appear) into every label score of a padded position. Their
output carries no Keras mask: the losses, metrics and `CRFDecoder` recover the
mask from the scores themselves (a position is padding when every score is
below `PAD_THRESHOLD`). This is bert4keras' design, and it keeps Keras from
weighting a one-value-per-sequence loss with a `[batch, steps]` mask.
"""

import keras
from keras import ops

from nlp4keras import validation
from nlp4keras.layers.base import Layer, serializable
from nlp4keras.layers.crf_ops import (
    PAD_SCORE,
    _check_emissions,
    _label_bias,
    checked_labels,
    dense_labels,
    label_ids,
    log_partition,
    path_score,
    right_padded,
    scores_mask,
    viterbi_decode,
)


class _TaggingHead(Layer):
    """Shared plumbing of the CRF and MEMM: input checks, padding scores,
    the transition reparameterisation and the token accuracy metrics."""

    def __init__(self, lr_multiplier=1, **kwargs):
        super().__init__(**kwargs)
        self.lr_multiplier = validation.real(
            lr_multiplier, "lr_multiplier", type(self).__name__, above=0
        )
        self.num_labels = None  # set by build()

    def _add_scaled_weight(self, name, shape):
        """A glorot-uniform weight stored as init / lr_multiplier (bert4keras),
        so `lr_multiplier * weight` starts at the usual init but moves
        lr_multiplier times faster under SGD-like optimisers."""
        weight = self.add_weight(name=name, shape=shape, initializer="glorot_uniform")
        if self.lr_multiplier != 1:
            weight.assign(weight / self.lr_multiplier)
        return weight

    def _scaled(self, weight):
        weight = ops.cast(weight, "float32")
        return weight if self.lr_multiplier == 1 else self.lr_multiplier * weight

    def _check_input_shape(self, input_shape):
        name = type(self).__name__
        if len(input_shape) != 3:
            raise ValueError(
                f"{name} expects emissions [batch, steps, num_labels], got shape {input_shape}"
            )
        if input_shape[-1] is None:
            raise ValueError(f"{name} needs a known number of labels, got shape {input_shape}")
        self.num_labels = int(input_shape[-1])
        self.input_spec = keras.InputSpec(ndim=3, axes={-1: self.num_labels})
        return self.num_labels

    def call(self, inputs, mask=None):
        scores = ops.cast(inputs, "float32")
        if mask is None:
            return scores
        return ops.where(ops.cast(mask, "bool")[..., None], scores, PAD_SCORE)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs, mask=None):
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def _who(self, method):
        return f"{type(self).__name__} {self.name!r}.{method}"

    def _checked_scores(self, y_pred, who):
        """y_pred as float32 and its right-padded mask of real tokens."""
        # No `self.trans` here: under JAX, Keras computes metrics where the
        # model's variables cannot be read.
        if self.num_labels is None:
            raise ValueError(f"call {self.name} on emissions before using its losses or metrics")
        y_pred = ops.convert_to_tensor(y_pred)
        _check_emissions(y_pred, self.num_labels, who=f"{who}: y_pred")
        y_pred = ops.cast(y_pred, "float32")
        return y_pred, right_padded(scores_mask(y_pred), who)

    def _labels(self, y_true, y_pred, mask, who):
        return checked_labels(ops.convert_to_tensor(y_true), y_pred, mask, self.num_labels, who)

    def sparse_accuracy(self, y_true, y_pred):
        """Per-token argmax accuracy over the real tokens of the batch (integer
        labels). A batch without any real token has accuracy 0 (no token, no
        hit), never NaN; Keras still counts it as one batch in its running mean."""
        who = self._who("sparse_accuracy")
        y_pred, mask = self._checked_scores(y_pred, who)
        return self._accuracy(self._labels(y_true, y_pred, mask, who), y_pred, mask)

    def dense_accuracy(self, y_true, y_pred):
        """`sparse_accuracy` for one-hot labels [batch, steps, num_labels]."""
        who = self._who("dense_accuracy")
        y_pred, mask = self._checked_scores(y_pred, who)
        labels = ops.cast(ops.argmax(dense_labels(y_true, y_pred, who), axis=-1), "int32")
        return self._accuracy(labels, y_pred, mask)

    @staticmethod
    def _accuracy(labels, y_pred, mask):
        mask = ops.cast(mask, "float32")
        guess = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        hits = ops.cast(ops.equal(labels, guess), "float32")
        return ops.sum(hits * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update(lr_multiplier=self.lr_multiplier)
        return config


@serializable
class ConditionalRandomField(_TaggingHead):
    """Linear-chain CRF over emission scores [batch, steps, num_labels].

    The layer itself only marks padding (see the module docstring); the
    learning happens in its losses, used as
    `model.compile(loss=crf.sparse_loss, metrics=[crf.sparse_accuracy])`.

    loss = log Z - score(y), score(y) = sum_t e[t, y_t] + sum_t trans[y_t, y_{t+1}]
    over real steps, log Z by the forward algorithm; one value per sequence.

    lr_multiplier: `trans = lr_multiplier * _trans` (the stored variable starts
    at init / lr_multiplier), which multiplies the transitions' effective
    learning rate under SGD (bert4keras' NER example uses 1000).
    Decode with `CRFDecoder(crf)` on device or `ViterbiDecoder(crf.trans)` in numpy.

    Saving: Keras cannot serialise a loss bound to a layer, so reload with
    `keras.saving.load_model(path, compile=False)` and compile again with
    `model.get_layer(name).sparse_loss` (the same holds for the MEMM).
    """

    def build(self, input_shape):
        num_labels = self._check_input_shape(input_shape)
        self._trans = self._add_scaled_weight("trans", (num_labels, num_labels))

    @property
    def trans(self):
        """The effective transition matrix, lr_multiplier * stored variable."""
        return self._scaled(self._trans)

    def dense_loss(self, y_true, y_pred):
        """Negative log-likelihood per sequence for one-hot (or soft) labels
        [batch, steps, num_labels]; 0 for a sequence that is all padding."""
        who = self._who("dense_loss")
        y_pred, mask = self._checked_scores(y_pred, who)
        trans = self.trans
        on = ops.cast(mask, "float32")[..., None]
        y_true = dense_labels(y_true, y_pred, who) * on
        emissions = ops.where(mask[..., None], y_pred, 0.0)
        point = ops.sum(y_true * emissions, axis=(1, 2))
        steps = ops.einsum("bti,ij,btj->b", y_true[:, :-1], trans, y_true[:, 1:])
        return log_partition(emissions, trans, mask) - (point + steps)

    def sparse_loss(self, y_true, y_pred):
        """Negative log-likelihood per sequence for integer labels [batch,
        steps] (or [batch, steps, 1]); 0 for a sequence that is all padding."""
        who = self._who("sparse_loss")
        y_pred, mask = self._checked_scores(y_pred, who)
        trans = self.trans
        labels = self._labels(y_true, y_pred, mask, who)
        emissions = ops.where(mask[..., None], y_pred, 0.0)
        score = path_score(emissions, trans, labels, mask)
        return log_partition(emissions, trans, mask) - score


@serializable
class MaximumEntropyMarkovModel(_TaggingHead):
    """Bidirectional MEMM (bert4keras): local softmaxes instead of a global one.

    With e the emissions, y the labels, L the real length and `trans` the
    transition matrix (full, or `l_trans @ r_trans.T` when `hidden_dim` is set):

      left-to-right logits  f_t = e_t                           for t = 0
                                  (e_t + trans[y_{t-1}, :]) / 2 for t > 0
      right-to-left logits  b_t = e_t                           for t = L - 1
                                  (e_t + trans[:, y_{t+1}]) / 2 for t < L - 1
      nll_t(z) = logsumexp(z) - z[y_t]

    bert4keras' loss is the batch token average of both directions:
      loss = (sum nll_t(f_t) + sum nll_t(b_t)) / (2 * N),  N = real tokens in the batch.
    Keras wants one value per sequence, so sequence b gets
      loss_b = B * (sum_t nll_t(f_t) + sum_t nll_t(b_t)) / (2 * N)
    (B = batch size), whose batch mean is exactly bert4keras' loss.
    lr_multiplier scales every stored transition factor, as in the CRF.
    """

    def __init__(self, lr_multiplier=1, hidden_dim=None, **kwargs):
        super().__init__(lr_multiplier=lr_multiplier, **kwargs)
        self.hidden_dim = validation.optional_integer(
            hidden_dim, "hidden_dim", "MaximumEntropyMarkovModel", minimum=1
        )

    def build(self, input_shape):
        num_labels = self._check_input_shape(input_shape)
        if self.hidden_dim is None:
            self._trans = self._add_scaled_weight("trans", (num_labels, num_labels))
        else:
            shape = (num_labels, self.hidden_dim)
            self._l_trans = self._add_scaled_weight("l_trans", shape)
            self._r_trans = self._add_scaled_weight("r_trans", shape)

    @property
    def trans(self):
        """The effective transition matrix [K, K]."""
        if self.hidden_dim is None:
            return self._scaled(self._trans)
        return ops.matmul(self._scaled(self._l_trans), ops.transpose(self._scaled(self._r_trans)))

    def sparse_loss(self, y_true, y_pred):
        """bert4keras' bidirectional MEMM loss (see the class docstring); 0 for
        a sequence that is all padding (and for every one of an all-padding batch)."""
        who = self._who("sparse_loss")
        y_pred, mask = self._checked_scores(y_pred, who)
        return self._loss(self._labels(y_true, y_pred, mask, who), y_pred, mask)

    def dense_loss(self, y_true, y_pred):
        """`sparse_loss` for one-hot labels [batch, steps, num_labels]."""
        who = self._who("dense_loss")
        y_pred, mask = self._checked_scores(y_pred, who)
        labels = ops.cast(ops.argmax(dense_labels(y_true, y_pred, who), axis=-1), "int32")
        return self._loss(ops.where(mask, labels, 0), y_pred, mask)

    def _loss(self, labels, y_pred, mask):
        trans = self.trans
        emissions = ops.where(mask[..., None], y_pred, 0.0)
        # Row t holds the history term for step t: trans[y_{t-1}, :] / trans[:, y_{t+1}].
        from_left = ops.take(trans, labels[:, :-1], axis=0)
        from_right = ops.take(ops.transpose(trans), labels[:, 1:], axis=0)
        has_left = ops.pad(mask[:, :-1], ((0, 0), (1, 0)), constant_values=False)
        has_right = ops.pad(mask[:, 1:], ((0, 0), (0, 1)), constant_values=False)
        left = ops.pad(from_left, ((0, 0), (1, 0), (0, 0)))
        right = ops.pad(from_right, ((0, 0), (0, 1), (0, 0)))
        forward = ops.where(has_left[..., None], (emissions + left) / 2, emissions)
        backward = ops.where(has_right[..., None], (emissions + right) / 2, emissions)
        valid = ops.cast(mask, "float32")
        total = self._token_nll(forward, labels) + self._token_nll(backward, labels)
        per_sequence = ops.sum(total * valid, axis=1)
        batch = ops.cast(ops.shape(y_pred)[0], "float32")
        return per_sequence * batch / (2 * ops.maximum(ops.sum(valid), 1.0))

    @staticmethod
    def _token_nll(logits, labels):
        picked = ops.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
        return ops.logsumexp(logits, axis=-1) - picked

    def get_config(self):
        config = super().get_config()
        config.update(hidden_dim=self.hidden_dim)
        return config


@serializable
class CRFDecoder(Layer):
    """On-device Viterbi decoding with the transitions of a CRF (or MEMM) layer.

    Input: that layer's output (padding recovered from its PAD_SCORE rows, and
    from a Keras mask if one arrives). Output: int32 label paths [batch, steps],
    0 on padding. The decoder holds the tagging layer itself, so it always uses
    the current transitions and needs no weights of its own:

        scores = crf(Dense(num_labels)(hidden))          # train on `scores`
        tagger = keras.Model(inputs, CRFDecoder(crf)(scores))

    A saved tagger reloads with the CRF shared, not copied.
    starts / ends: label ids allowed at the first / last real step.
    """

    def __init__(self, crf, starts=None, ends=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(crf, keras.layers.Layer) or not hasattr(type(crf), "trans"):
            raise TypeError(
                "CRFDecoder: `crf` must be a ConditionalRandomField or "
                f"MaximumEntropyMarkovModel layer (a layer with `trans`), got {crf!r}"
            )
        self.crf = crf
        self.starts = label_ids(starts, "starts", "CRFDecoder")
        self.ends = label_ids(ends, "ends", "CRFDecoder")

    def build(self, input_shape):
        if not self.crf.built:
            self.crf.build(input_shape)
        num_labels = int(self.crf.trans.shape[0])
        _label_bias(self.starts, num_labels, "starts", "CRFDecoder")  # fail early on bad ids
        _label_bias(self.ends, num_labels, "ends", "CRFDecoder")

    def call(self, inputs, mask=None):
        scores = ops.cast(inputs, "float32")
        valid = scores_mask(scores)
        if mask is not None:
            valid = ops.logical_and(valid, ops.cast(mask, "bool"))
        return viterbi_decode(scores, self.crf.trans, valid, self.starts, self.ends)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs, mask=None):
        return keras.KerasTensor(tuple(inputs.shape[:-1]), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            crf=keras.saving.serialize_keras_object(self.crf),
            starts=self.starts,
            ends=self.ends,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["crf"] = keras.saving.deserialize_keras_object(config["crf"])
        return cls(**config)
