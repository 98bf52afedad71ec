"""Whole-word masking for MLM, applied when an example is read: a seed, the
epoch and the example's index make its random generator, so each epoch
masks anew (dynamic masking), and any run, or a resumed one, masks alike."""

import numpy as np

from nlp4keras.pretraining.vocab import IGNORED_LABEL


def example_rng(seed, epoch, index):
    """The numpy Generator of one example in one epoch."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def whole_word_mask(
    token_ids, word_starts, vocab, rng, rate=0.15, mask_fraction=0.8, random_fraction=0.1
):
    """`(input_ids, labels)` for one token sequence (no [CLS]/[SEP] needed).

    Words (a token with its word-start flag set, and the tokens after it
    without) are chosen in a random order, each whole, skipping a word that
    would overshoot, until `rate` of the tokens (rounded at random, so the
    expected count is exact) are chosen. Words holding a special token
    ([CLS], [SEP], [PAD], [MASK], [UNK]...) are never chosen. Each chosen
    token becomes [MASK] with probability `mask_fraction`, a random
    non-special token with `random_fraction`, and stays as it is otherwise.
    labels: the original id at chosen tokens, 0 elsewhere (no loss)."""
    token_ids = np.asarray(token_ids, np.int64)
    chosen = _chosen_tokens(token_ids, word_starts, vocab, rng, rate)
    labels = np.where(chosen, token_ids, IGNORED_LABEL)
    input_ids = token_ids.copy()
    positions = np.flatnonzero(chosen)
    draw = rng.random(len(positions))
    to_mask = positions[draw < mask_fraction]
    to_replace = positions[(draw >= mask_fraction) & (draw < mask_fraction + random_fraction)]
    input_ids[to_mask] = vocab.mask_id
    input_ids[to_replace] = rng.choice(vocab.replacement_ids, len(to_replace))
    return input_ids, labels


def _chosen_tokens(token_ids, word_starts, vocab, rng, rate):
    n = len(token_ids)
    chosen = np.zeros(n, bool)
    if n == 0:
        return chosen
    starts = np.asarray(word_starts, bool).copy()
    starts[0] = True  # a sequence cut inside a word starts with its tail
    bounds = np.flatnonzero(starts)
    lengths = np.diff(np.append(bounds, n))
    special = vocab.is_special[token_ids]
    has_special = np.add.reduceat(special, bounds) > 0
    target = int(np.floor(rate * (n - special.sum()) + rng.random()))
    covered = 0
    for word in rng.permutation(len(bounds)):
        if covered >= target:
            break
        length = lengths[word]
        if has_special[word] or covered + length > target:
            continue
        chosen[bounds[word] : bounds[word] + length] = True
        covered += length
    return chosen
