"""Beam search with a length penalty: finished outputs wait in a pool and
compete across lengths by sum of log-probabilities / length ** penalty
(length: the tokens generated, the end token included). This is the rule of
transformers' `generate(num_beams=k, length_penalty=a)` with its default
early stopping, so the two give the same output:

- each step ranks the running outputs' continuations by their summed
  log-probabilities and looks at the best 2k;
- of those, the ones among the first k that end (with end_id, or at maxlen)
  enter the pool, which keeps the k best by penalised score;
- the best k that do not end run on;
- the search stops when the pool is full and the best running output,
  penalised at its current length, does not beat the pool's worst.

bert4keras' own beam search (AutoRegressiveDecoder.beam_search without
length_penalty) instead stops as soon as its best output ends.
"""

import numpy as np


def pooled_beam_search(decoder, inputs, topk, states, temperature, length_penalty, who):
    """The best output (int array) of `decoder` (an AutoRegressiveDecoder)
    for `inputs` (one sample, batch axis 1). An end_id before `minlen`
    output tokens is not allowed."""
    end_id, maxlen = decoder.end_id, decoder.maxlen
    output_ids, running_scores = decoder.first_output_ids, np.zeros(1)
    pool_scores, pool_ids = np.zeros(0), []
    for step in range(maxlen):
        scores, states = decoder.predict(inputs, output_ids, states, temperature, "logits")
        scores = np.array(decoder._checked(scores, len(output_ids), who), "float64")
        if end_id is not None and output_ids.shape[1] + 1 < decoder.minlen:
            scores[:, end_id] = -np.inf
        totals = (running_scores[:, None] + scores).ravel()
        order = np.argsort(-totals, kind="stable")[: 2 * topk]  # best first
        rows, new_ids = np.divmod(order, scores.shape[1])
        candidates = np.concatenate([output_ids[rows], new_ids[:, None]], 1)
        ends = (new_ids == end_id) | (step == maxlen - 1)
        # the first k that end join the pool; it keeps the k best
        entering = np.flatnonzero(ends[:topk])
        pool_scores = np.concatenate(
            [pool_scores, totals[order[entering]] / (step + 1) ** length_penalty]
        )
        pool_ids += [candidates[i] for i in entering]
        best = np.argsort(-pool_scores, kind="stable")[:topk]
        pool_scores, pool_ids = pool_scores[best], [pool_ids[i] for i in best]
        alive = np.flatnonzero(~ends)[:topk]
        if alive.size == 0:
            break
        output_ids, running_scores = candidates[alive], totals[order[alive]]
        best_running = running_scores[0] / (step + 1) ** length_penalty
        if len(pool_ids) == topk and best_running <= pool_scores.min():
            break  # no running output can improve the pool
        decoder.select_rows(rows[alive])
        inputs = [i[rows[alive]] for i in inputs]
    return pool_ids[0]
