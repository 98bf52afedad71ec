"""Viterbi decoding of one sequence on the host, in numpy (bert4keras' ViterbiDecoder)."""

import numpy as np


class ViterbiDecoder:
    """Best label path under a transition matrix.

    trans: [K, K] array, trans[i, j] scores label i followed by label j (e.g.
    `keras.ops.convert_to_numpy(crf.trans)`). starts / ends: label ids allowed
    at the first / last position; every other label gets -inf there (None
    allows all). When no path can satisfy both (a one-step sequence and no
    label in both lists), the result is arbitrary, as in bert4keras.
    For batches on device, see `nlp4keras.layers.CRFDecoder`.
    """

    def __init__(self, trans, starts=None, ends=None):
        trans = np.asarray(trans, dtype="float64")
        if trans.ndim != 2 or trans.shape[0] != trans.shape[1]:
            raise ValueError(f"trans must be a square [K, K] matrix, got shape {trans.shape}")
        self.trans = trans
        self.num_labels = trans.shape[0]
        self.start_bias = self._bias(starts, "starts")
        self.end_bias = self._bias(ends, "ends")

    def _bias(self, allowed, name):
        bias = np.zeros(self.num_labels)
        if allowed is None:
            return bias
        allowed = [int(i) for i in allowed]
        if not allowed:
            raise ValueError(f"{name} must name at least one label")
        bad = [i for i in allowed if not 0 <= i < self.num_labels]
        if bad:
            raise ValueError(f"{name} has label ids {bad} outside [0, {self.num_labels})")
        bias[:] = -np.inf
        bias[allowed] = 0.0
        return bias

    def decode(self, nodes):
        """nodes: [T, K] label scores of one sequence (T >= 1). Returns the
        best path as an int array [T]; the input is not modified."""
        nodes = np.asarray(nodes, dtype="float64")
        if nodes.ndim != 2 or nodes.shape[1] != self.num_labels or len(nodes) == 0:
            raise ValueError(
                f"nodes must have shape [steps >= 1, {self.num_labels}], got {nodes.shape}"
            )
        score = nodes[0] + self.start_bias
        pointers = np.empty((len(nodes), self.num_labels), dtype="int64")
        for t in range(1, len(nodes)):
            candidates = score[:, None] + self.trans  # [from, to]
            pointers[t] = candidates.argmax(axis=0)
            score = candidates.max(axis=0) + nodes[t]
        path = np.empty(len(nodes), dtype="int64")
        path[-1] = np.argmax(score + self.end_bias)
        for t in range(len(nodes) - 1, 0, -1):
            path[t - 1] = pointers[t, path[t]]
        return path
