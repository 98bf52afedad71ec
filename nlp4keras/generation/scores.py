"""What happens to the next-token scores (logits) before a token is chosen:
a repetition penalty and no stop token before `min_new_tokens`. Written once
for numpy (host loop) and jax.numpy (the compiled JAX loop): `xp` is either."""

import numpy as np


class ScoreRules:
    """repetition_penalty: HF's (CTRL's) rule: a token already in the prompt
    or the output has its logit divided by the penalty when positive,
    multiplied when negative (1: none). min_new_tokens: the stop ids get
    -inf until that many tokens were generated."""

    def __init__(self, vocab_size, stop_ids, min_new_tokens, repetition_penalty):
        self.vocab_size = vocab_size
        self.stop_ids = np.asarray(stop_ids, "int32")
        self.stop_mask = np.zeros(vocab_size, bool)
        self.stop_mask[self.stop_ids] = True
        self.min_new_tokens = min_new_tokens
        self.repetition_penalty = repetition_penalty

    def key(self):
        """What tells these rules apart (compiled functions are kept per key)."""
        return (tuple(self.stop_ids.tolist()), self.min_new_tokens, self.repetition_penalty)

    def initial_seen(self, prompts):
        """[rows, vocab] bool: the tokens of each prompt."""
        seen = np.zeros((len(prompts), self.vocab_size), bool)
        for row, prompt in enumerate(prompts):
            seen[row, prompt] = True
        return seen

    def apply(self, xp, scores, seen, step):
        """`scores` [rows, vocab] after the rules, at decoding `step` (from 0)."""
        if self.repetition_penalty != 1:
            penalty = self.repetition_penalty
            penalised = xp.where(scores > 0, scores / penalty, scores * penalty)
            scores = xp.where(seen, penalised, scores)
        if self.min_new_tokens and self.stop_ids.size:
            early = xp.logical_and(self.stop_mask[None, :], step < self.min_new_tokens)
            scores = xp.where(early, -xp.inf, scores)
        return scores

    def stops(self, xp, ids):
        """[rows] bool: which of `ids` are stop ids."""
        return xp.any(ids[:, None] == self.stop_ids[None, :], axis=1)


def mark_seen(xp, seen, ids):
    """`seen` with each row's id in `ids` added."""
    return xp.logical_or(seen, ids[:, None] == xp.arange(seen.shape[1])[None, :])
