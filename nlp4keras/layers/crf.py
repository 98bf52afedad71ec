"""Sequence labelling heads: linear-chain CRF, bidirectional MEMM, Viterbi decoding.

Conventions shared by everything here:

- emissions (a.k.a. nodes, unary scores) are `[batch, steps, num_labels]`;
- `trans[i, j]` scores the label `i` at step t followed by the label `j` at step t+1;
- masks are boolean `[batch, steps]`, True on real tokens, padded on the right,
  with at least one real token per sequence.

The CRF and MEMM layers write `PAD_SCORE` (a large finite negative number, not
-inf, so no NaN can appear) into every label score of a padded position. Their
output carries no Keras mask: the losses, metrics and `CRFDecoder` recover the
mask from the scores themselves (a position is padding when every score is
below `PAD_THRESHOLD`). This is bert4keras' design, and it keeps Keras from
weighting a one-value-per-sequence loss with a `[batch, steps]` mask.
"""

import keras
from keras import ops

from nlp4keras.layers.base import Layer, serializable
from nlp4keras.layers.crf_ops import (
    PAD_SCORE,
    _check_emissions,
    _label_bias,
    _labels_like,
    crf_log_partition,
    crf_path_score,
    scores_mask,
    viterbi_decode,
)


class _TaggingHead(Layer):
    """Shared plumbing of the CRF and MEMM: input checks, padding scores,
    the transition reparameterisation and the token accuracy metrics."""

    def __init__(self, lr_multiplier=1, **kwargs):
        super().__init__(**kwargs)
        self.lr_multiplier = float(lr_multiplier)
        if self.lr_multiplier <= 0:
            raise ValueError(f"lr_multiplier must be positive, got {lr_multiplier}")
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

    def _checked_scores(self, y_pred):
        # No `self.trans` here: under JAX, Keras computes metrics where the
        # model's variables cannot be read.
        if self.num_labels is None:
            raise ValueError(f"call {self.name} on emissions before using its losses or metrics")
        _check_emissions(y_pred, self.num_labels, who="y_pred")
        return ops.cast(y_pred, "float32")

    def sparse_accuracy(self, y_true, y_pred):
        """Per-token argmax accuracy over real tokens (integer labels)."""
        y_pred = self._checked_scores(y_pred)
        mask = ops.cast(scores_mask(y_pred), "float32")
        guess = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        hits = ops.cast(ops.equal(_labels_like(y_true, y_pred), guess), "float32")
        return ops.sum(hits * mask) / ops.sum(mask)

    def dense_accuracy(self, y_true, y_pred):
        """`sparse_accuracy` for one-hot labels."""
        return self.sparse_accuracy(ops.argmax(y_true, axis=-1), y_pred)

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
        """Negative log-likelihood per sequence for one-hot (or soft) labels."""
        y_pred = self._checked_scores(y_pred)
        trans = self.trans
        mask = scores_mask(y_pred)
        on = ops.cast(mask, "float32")[..., None]
        y_true = ops.cast(y_true, "float32") * on
        emissions = ops.where(mask[..., None], y_pred, 0.0)
        point = ops.sum(y_true * emissions, axis=(1, 2))
        steps = ops.einsum("bti,ij,btj->b", y_true[:, :-1], trans, y_true[:, 1:])
        return crf_log_partition(y_pred, trans, mask) - (point + steps)

    def sparse_loss(self, y_true, y_pred):
        """Negative log-likelihood per sequence for integer labels."""
        y_pred = self._checked_scores(y_pred)
        trans = self.trans
        mask = scores_mask(y_pred)
        labels = ops.where(mask, _labels_like(y_true, y_pred), 0)
        score = crf_path_score(y_pred, trans, labels, mask)
        return crf_log_partition(y_pred, trans, mask) - score


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
        if hidden_dim is not None and int(hidden_dim) < 1:
            raise ValueError(f"hidden_dim must be a positive integer or None, got {hidden_dim}")
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)

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
        """bert4keras' bidirectional MEMM loss (see the class docstring)."""
        y_pred = self._checked_scores(y_pred)
        trans = self.trans
        mask = scores_mask(y_pred)
        labels = ops.where(mask, _labels_like(y_true, y_pred), 0)
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
        return per_sequence * batch / (2 * ops.sum(valid))

    def dense_loss(self, y_true, y_pred):
        """`sparse_loss` for one-hot labels."""
        return self.sparse_loss(ops.argmax(y_true, axis=-1), y_pred)

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
        if not hasattr(crf, "trans"):
            raise TypeError(f"CRFDecoder needs a layer with a `trans` matrix, got {crf!r}")
        self.crf = crf
        self.starts = None if starts is None else [int(i) for i in starts]
        self.ends = None if ends is None else [int(i) for i in ends]

    def build(self, input_shape):
        if not self.crf.built:
            self.crf.build(input_shape)
        num_labels = int(self.crf.trans.shape[0])
        _label_bias(self.starts, num_labels, "starts")  # fail early on bad ids
        _label_bias(self.ends, num_labels, "ends")

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
