"""bert4keras' `AutoRegressiveDecoder`: beam search and random sampling on the
host (numpy) around a model's next-token prediction.

A script subclasses it and writes `predict`, decorated with `wraps`:

    class AutoTitle(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype='probas')
        def predict(self, inputs, output_ids, states):
            token_ids, segment_ids = inputs
            token_ids = np.concatenate([token_ids, output_ids], 1)
            segment_ids = np.concatenate([segment_ids, np.ones_like(output_ids)], 1)
            return self.last_token(model).predict([token_ids, segment_ids])

    autotitle = AutoTitle(start_id=None, end_id=tokenizer._token_end_id, maxlen=32)
    output_ids = autotitle.beam_search([token_ids, segment_ids], topk=3)

Same results as bert4keras for the same model outputs (random_sample draws from
numpy's global generator as bert4keras did, unless given a `seed`). New:
`random_sample(..., seed=)`, argument checks with clear errors, a fast
`last_token` (see `nlp4keras.snippets.last_token`), and `select_rows`, the hook
a predict that keeps per-row state (a KV cache) needs.
"""

import functools
import inspect

import numpy as np

from nlp4keras import validation
from nlp4keras.messages import warn_user
from nlp4keras.snippets.arrays import softmax
from nlp4keras.snippets.last_token import LastToken
from nlp4keras.snippets.pooled_beams import pooled_beam_search

_WRAPPED = "_nlp4keras_decoder_predict"


class AutoRegressiveDecoder:
    """Base class of autoregressive decoders: beam search and random sampling.

    start_id: the token every output starts with (None: none, outputs start empty).
    end_id: the token that ends an output (None: outputs end at `maxlen` only).
    maxlen: the most tokens generated (decoding steps).
    minlen: an output ends only once it has at least `minlen` tokens (with the
    start token if any); before, end tokens are kept going like any other.

    `bucketing` (a class attribute; set it per instance before the first
    `last_token`) is what `last_token` uses: 'auto' pads shapes to buckets on
    JAX, True on every backend (checked once per model, see
    `nlp4keras.snippets.last_token`), False runs the exact shapes.
    """

    bucketing = "auto"

    def __init__(self, start_id, end_id, maxlen, minlen=1):
        who = type(self).__name__
        self.start_id = validation.optional_integer(start_id, "start_id", who, minimum=0)
        self.end_id = validation.optional_integer(end_id, "end_id", who, minimum=0)
        self.maxlen = validation.integer(maxlen, "maxlen", who, minimum=1)
        self.minlen = validation.integer(minlen, "minlen", who, minimum=0)
        self.models = {}
        if self.start_id is None:
            self.first_output_ids = np.empty((1, 0), dtype=int)
        else:
            self.first_output_ids = np.array([[self.start_id]])

    @staticmethod
    def wraps(default_rtype="probas", use_states=False):
        """Decorator of `predict(self, inputs, output_ids, states)`.

        default_rtype: what the undecorated predict returns, 'probas' (next-token
        probabilities) or 'logits' (scores before softmax).
        use_states: whether it returns `(scores, states)` (True) or the scores alone.

        The decorated predict takes `(inputs, output_ids, states, temperature=1,
        rtype=default_rtype)` and returns `(scores, states)`: probabilities for
        rtype='probas', log-probabilities for rtype='logits', at `temperature`
        (logits / temperature before softmax; probabilities ** (1 / temperature),
        normalised).
        """
        who = "AutoRegressiveDecoder.wraps"
        default_rtype = validation.one_of(default_rtype, "default_rtype", ("probas", "logits"), who)
        use_states = validation.boolean(use_states, "use_states", who)

        def decorator(predict):
            if not callable(predict):
                validation.instance(predict, "predict", (), who, what="a function")

            @functools.wraps(predict)
            def new_predict(self, inputs, output_ids, states, temperature=1, rtype=default_rtype):
                name = f"{type(self).__name__}.predict"
                rtype = validation.one_of(rtype, "rtype", ("probas", "logits"), name)
                temperature = validation.real(temperature, "temperature", name, above=0)
                prediction = predict(self, inputs, output_ids, states)
                if use_states:
                    if not isinstance(prediction, (tuple, list)) or len(prediction) != 2:
                        raise TypeError(
                            f"{name} is wrapped with use_states=True, so it must return "
                            f"(scores, states), got {type(prediction).__name__}"
                        )
                    scores, states = prediction
                else:
                    scores, states = prediction, None
                scores = _scores(scores, name, default_rtype)
                if default_rtype == "logits":
                    scores = softmax(scores / temperature)
                elif temperature != 1:
                    scores = np.power(scores, 1.0 / temperature)
                    scores = scores / scores.sum(axis=-1, keepdims=True)
                if rtype == "logits":
                    scores = np.log(scores + 1e-12)
                return scores, states

            setattr(new_predict, _WRAPPED, True)
            return new_predict

        return decorator

    def last_token(self, model):
        """An object whose `predict(inputs)` is `model.predict(inputs)[:, -1]` (each
        output at the last position), fast on every backend (bucketed shapes); one
        per model, kept in `self.models`."""
        if model not in self.models:
            self.models[model] = LastToken(model, bucketing=self.bucketing)
        return self.models[model]

    def predict(self, inputs, output_ids, states=None):
        """Write it in the subclass, decorated with `AutoRegressiveDecoder.wraps`:
        `inputs` are the arrays given to beam_search/random_sample with a batch
        axis (one row per live output), `output_ids` [rows, steps so far] the
        outputs so far; return the next token's scores [rows, vocab] (and the new
        states when use_states=True)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define predict(self, inputs, output_ids, states), "
            "decorated with @AutoRegressiveDecoder.wraps(default_rtype='probas' or 'logits')"
        )

    def select_rows(self, rows):
        """Called once per step with the indices, into that step's rows, of the
        rows the next step continues from (a beam kept, copies made after the first
        step, finished outputs dropped). Does nothing here; a predict that keeps
        per-row state between steps (a KV cache) gathers it with `rows`."""

    # ------------------------------------------------------------------ decoding

    def beam_search(self, inputs, topk, states=None, temperature=1, min_ends=1,
                    length_penalty=None):  # fmt: skip
        """The best output of a beam search of width `topk` (the highest sum of
        log-probabilities), as an int array. An output is finished when it ends
        with end_id, holds at least `min_ends` end_ids and `minlen` tokens; the
        search stops when the best-scoring output is finished, or after
        `maxlen` steps. length_penalty (not in bert4keras): finished outputs
        compete across lengths by sum / length ** length_penalty, as
        transformers' beam search (snippets/pooled_beams.py; min_ends 1)."""
        who = f"{type(self).__name__}.beam_search"
        inputs = self._inputs(inputs, who)
        topk = validation.integer(topk, "topk", who, minimum=1)
        temperature = validation.real(temperature, "temperature", who, above=0)
        min_ends = validation.integer(min_ends, "min_ends", who, minimum=1)
        self._check_predict(who)
        if length_penalty is not None:
            length_penalty = validation.real(length_penalty, "length_penalty", who)
            if min_ends != 1:
                raise ValueError(f"{who}: length_penalty ends an output at its first end_id")
            return pooled_beam_search(self, inputs, topk, states, temperature, length_penalty, who)
        output_ids, output_scores = self.first_output_ids, np.zeros(1)
        for step in range(self.maxlen):
            scores, states = self.predict(inputs, output_ids, states, temperature, "logits")
            scores = self._checked(scores, len(output_ids), who)
            topk = min(topk, scores.size)  # (a beam wider than the vocabulary: all of it)
            if step == 0:  # the first prediction is shared: copy the inputs topk times
                inputs = [np.repeat(i, topk, axis=0) for i in inputs]
            scores = output_scores.reshape((-1, 1)) + scores
            indices = scores.argpartition(-topk, axis=None)[-topk:]
            rows = indices // scores.shape[1]
            new_ids = (indices % scores.shape[1]).reshape((-1, 1))
            output_ids = np.concatenate([output_ids[rows], new_ids], 1)
            output_scores = np.take_along_axis(scores, indices, axis=None)
            is_end = output_ids[:, -1] == self.end_id
            end_counts = (output_ids == self.end_id).sum(1)
            if output_ids.shape[1] >= self.minlen:
                best = output_scores.argmax()
                if is_end[best] and end_counts[best] >= min_ends:
                    return output_ids[best]
                unfinished = ~is_end | (end_counts < min_ends)
                if not unfinished.all():  # drop the finished outputs
                    inputs = [i[unfinished] for i in inputs]
                    output_ids = output_ids[unfinished]
                    output_scores = output_scores[unfinished]
                    rows = rows[unfinished]
                    topk = int(unfinished.sum())
            self.select_rows(rows)
        return output_ids[output_scores.argmax()]

    def random_sample(
        self, inputs, n, topk=None, topp=None, states=None, temperature=1, min_ends=1, seed=None
    ):
        """`n` outputs sampled token by token, as a list of int arrays (finished
        ones first, in the order they finish). topk: sample among the `topk` most
        probable tokens only; topp: among the most probable tokens whose
        probabilities first reach `topp` in total (nucleus sampling); both apply
        top-k first. An output is finished as in beam_search.

        seed: None draws from numpy's global generator (`np.random.seed` makes it
        reproducible, as in bert4keras); an int or a `np.random.Generator` uses
        its own generator, the same outputs for the same seed."""
        who = f"{type(self).__name__}.random_sample"
        inputs = self._inputs(inputs, who)
        n = validation.integer(n, "n", who, minimum=1)
        topk = validation.optional_integer(topk, "topk", who, minimum=1)
        if topp is not None:
            topp = validation.real(topp, "topp", who, minimum=0)
            if topp > 1:  # bert4keras' conditional LM example passes topp=5
                warn_user(
                    f"{who}: topp={topp:g} is above 1, so it excludes no token (as in "
                    "bert4keras); a nucleus is a total probability in [0, 1], e.g. topp=0.95"
                )
        temperature = validation.real(temperature, "temperature", who, above=0)
        min_ends = validation.integer(min_ends, "min_ends", who, minimum=1)
        uniform = uniform_source(seed, who)
        self._check_predict(who)
        output_ids = self.first_output_ids
        results = []
        for step in range(self.maxlen):
            probas, states = self.predict(inputs, output_ids, states, temperature, "probas")
            probas = self._checked(probas, len(output_ids), who, probabilities=True)
            probas = probas / probas.sum(axis=1, keepdims=True)
            rows = np.arange(len(output_ids))
            if step == 0:  # the first prediction is shared: copy it n times
                probas = np.repeat(probas, n, axis=0)
                inputs = [np.repeat(i, n, axis=0) for i in inputs]
                output_ids = np.repeat(output_ids, n, axis=0)
                rows = np.zeros(n, dtype=int)
            sample_ids = sample_tokens(probas, topk, topp, uniform).reshape((-1, 1))
            output_ids = np.concatenate([output_ids, sample_ids], 1)
            is_end = output_ids[:, -1] == self.end_id
            end_counts = (output_ids == self.end_id).sum(1)
            if output_ids.shape[1] >= self.minlen:
                finished = is_end & (end_counts >= min_ends)
                if finished.any():
                    results.extend(output_ids[finished])
                    unfinished = ~finished
                    inputs = [i[unfinished] for i in inputs]
                    output_ids = output_ids[unfinished]
                    rows = rows[unfinished]
                    if len(output_ids) == 0:
                        break
            self.select_rows(rows)
        results.extend(output_ids)
        return results

    # ------------------------------------------------------------------ checks

    def _inputs(self, inputs, who):
        """bert4keras' `[np.array([i]) for i in inputs]`: each input of one sample,
        given a batch axis of 1."""
        if isinstance(inputs, np.ndarray) and inputs.ndim >= 2:
            inputs = list(inputs)
        if not isinstance(inputs, (list, tuple)):
            validation.instance(
                inputs, "inputs", (), who,
                what="a list of the model inputs of one sample (e.g. [token_ids, segment_ids] "
                "or [token_ids])",
            )  # fmt: skip
        arrays = []
        for index, item in enumerate(inputs):
            try:
                array = np.array([item])
            except ValueError as error:  # ragged nested lists
                raise ValueError(f"{who}: `inputs[{index}]` is not an array ({error})") from None
            if array.dtype.kind not in "biuf":
                validation.instance(item, f"inputs[{index}]", (), who, what="an array of numbers")
            arrays.append(array)
        return arrays

    def _check_predict(self, who):
        predict = getattr(type(self), "predict", None)
        if predict is AutoRegressiveDecoder.predict:
            self.predict(None, None)  # raises NotImplementedError, saying what to write
        if getattr(predict, _WRAPPED, False):
            return
        try:  # a predict of its own that takes temperature and rtype is fine
            inspect.signature(predict).bind(self, None, None, None, 1, "logits")
        except (TypeError, ValueError):
            raise TypeError(
                f"{who}: {type(self).__name__}.predict must be decorated with "
                "@AutoRegressiveDecoder.wraps(default_rtype='probas' or 'logits'), which "
                "adds its temperature and rtype arguments"
            ) from None

    def _checked(self, scores, rows, who, probabilities=False):
        if scores.shape[0] != rows:
            raise ValueError(
                f"{who}: predict returned scores for {scores.shape[0]} rows, but "
                f"{rows} outputs are being decoded (shape {scores.shape})"
            )
        if probabilities:
            sums = scores.sum(axis=1)
            if (scores < 0).any() or not np.isfinite(sums).all() or (sums <= 0).any():
                raise ValueError(
                    f"{who}: predict's probabilities must be finite, >= 0 and not all 0 in "
                    "a row (every token excluded)"
                )
        return scores


def _scores(scores, name, default_rtype):
    """A predict's result as a float array [rows, vocab]."""
    try:
        array = np.asarray(scores)
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype.kind not in "biuf" or array.ndim != 2:
        shape = getattr(array, "shape", None)
        raise ValueError(
            f"{name} must return {default_rtype} of shape [rows, vocab_size] (one row per "
            f"output being decoded), got {type(scores).__name__} of shape {shape}: for a "
            "model with a sequence output, use self.last_token(model).predict(...)"
        )
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array


def uniform_source(seed, who):
    """A function `size -> uniform draws in [0, 1)`."""
    if seed is None:
        return np.random.random_sample
    if isinstance(seed, np.random.Generator):
        return seed.random
    seed = validation.integer(seed, "seed", who, minimum=0)
    return np.random.default_rng(seed).random


def sample_tokens(probas, topk, topp, uniform):
    """One token id per row of `probas` [rows, vocab] (normalised), drawn
    among the `topk` most probable (if given), then among the most probable
    whose total first reaches `topp` (if given), as bert4keras did; `uniform`
    gives the uniform draws."""
    columns = []  # index maps back to token ids, innermost last
    if topk is not None:
        k = min(topk, probas.shape[1])
        columns.append(probas.argpartition(-k, axis=1)[:, -k:])
        probas = np.take_along_axis(probas, columns[-1], axis=1)
        probas = probas / probas.sum(axis=1, keepdims=True)
    if topp is not None:
        columns.append(probas.argsort(axis=1)[:, ::-1])
        probas = np.take_along_axis(probas, columns[-1], axis=1)
        cumulative = np.cumsum(probas, axis=1)
        # keep the tokens up to the first whose cumulative probability reaches topp
        beyond = np.roll(cumulative >= topp, 1, axis=1)
        beyond[:, 0] = False
        probas[beyond] = 0
        probas = probas / probas.sum(axis=1, keepdims=True)
    sample_ids = _sample(probas, uniform).reshape((-1, 1))
    for indices in reversed(columns):
        sample_ids = np.take_along_axis(indices, sample_ids, axis=1)
    return sample_ids[:, 0]


def _sample(probas, uniform):
    """One token per row drawn from `probas`, by the inverse of each row's
    cumulative distribution (what `np.random.choice(len(p), p=p)` does, one draw
    per row in order, so with numpy's global generator it gives bert4keras'
    samples)."""
    cdf = np.cumsum(probas.astype(np.float64), axis=1)
    cdf /= cdf[:, -1:]
    draws = uniform(len(probas))
    return (cdf < draws[:, None]).sum(axis=1)
