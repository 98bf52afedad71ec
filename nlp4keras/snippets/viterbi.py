"""Viterbi decoding of one sequence on the host, in numpy (bert4keras' ViterbiDecoder)."""

import numpy as np

from nlp4keras import validation


class ViterbiDecoder:
    """Best label path under a transition matrix.

    trans: [K, K] array, trans[i, j] scores label i followed by label j (e.g.
    `keras.ops.convert_to_numpy(crf.trans)`); -inf forbids a transition.
    starts / ends: label ids allowed at the first / last position; every
    other label gets -inf there (None allows all). Scores must not be NaN or
    +inf. When no path has a finite score (e.g. a one-step sequence and no
    label in both lists), `decode` raises ValueError rather than returning an
    arbitrary path as bert4keras did (`nlp4keras.layers.CRFDecoder`, which
    cannot raise on device, still returns one).
    For batches on device, see `nlp4keras.layers.CRFDecoder`.
    """

    def __init__(self, trans, starts=None, ends=None):
        trans = _scores(trans, "trans", "ViterbiDecoder")
        if trans.ndim != 2 or trans.shape[0] != trans.shape[1] or not trans.size:
            raise ValueError(
                f"ViterbiDecoder: `trans` must be a square [K, K] matrix with K >= 1, "
                f"got shape {trans.shape}"
            )
        self.trans = trans
        self.num_labels = trans.shape[0]
        self.start_bias = self._bias(starts, "starts")
        self.end_bias = self._bias(ends, "ends")

    def _bias(self, allowed, name):
        bias = np.zeros(self.num_labels)
        if allowed is None:
            return bias
        allowed = validation.integer_list(allowed, name, "ViterbiDecoder", allow_empty=True)
        if not allowed:
            raise ValueError(f"ViterbiDecoder: `{name}` must name at least one label (or be None)")
        bad = [i for i in allowed if not 0 <= i < self.num_labels]
        if bad:
            raise ValueError(
                f"ViterbiDecoder: `{name}` has label ids {bad} outside [0, {self.num_labels})"
            )
        bias[:] = -np.inf
        bias[allowed] = 0.0
        return bias

    def decode(self, nodes):
        """nodes: [T, K] label scores of one sequence (T >= 1). Returns the
        best path as an int array [T]; the input is not modified."""
        nodes = _scores(nodes, "nodes", "ViterbiDecoder.decode")
        if nodes.ndim != 2 or nodes.shape[1] != self.num_labels or len(nodes) == 0:
            raise ValueError(
                f"ViterbiDecoder.decode: `nodes` must have shape [steps >= 1, "
                f"{self.num_labels}], got {nodes.shape}"
            )
        score = nodes[0] + self.start_bias
        pointers = np.empty((len(nodes), self.num_labels), dtype="int64")
        for t in range(1, len(nodes)):
            candidates = score[:, None] + self.trans  # [from, to]
            pointers[t] = candidates.argmax(axis=0)
            score = candidates.max(axis=0) + nodes[t]
        score = score + self.end_bias
        if not np.isfinite(score).any():
            raise ValueError(
                "ViterbiDecoder.decode: no label path is allowed: every path has score -inf "
                "(the starts/ends lists, -inf transitions and -inf node scores exclude them all)"
            )
        path = np.empty(len(nodes), dtype="int64")
        path[-1] = np.argmax(score)
        for t in range(len(nodes) - 1, 0, -1):
            path[t - 1] = pointers[t, path[t]]
        return path


def _scores(values, name, who):
    """`values` as a float64 array of scores: numbers, no NaN, no +inf."""
    try:
        if values is None or isinstance(values, (str, bytes)):
            raise TypeError
        scores = np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        raise TypeError(
            f"{who}: `{name}` must be an array of numbers, got {values!r:.60} "
            f"({type(values).__name__})"
        ) from None
    if np.isnan(scores).any() or np.isposinf(scores).any():
        raise ValueError(
            f"{who}: `{name}` holds NaN or +inf scores (-inf is allowed, to forbid a "
            "label or transition)"
        )
    return scores
