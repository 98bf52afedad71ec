"""AutoRegressiveDecoder (bert4keras' API) and last_token(model).

- beam_search against brute force: every sequence of each length enumerated on a
  3-token vocabulary with fixed random next-token log-probabilities, scored from
  scratch, with bert4keras' stopping rule (end_id, min_ends, minlen, maxlen);
  and against a plain re-implementation of bert4keras' loop where the beam is
  narrower than the set of all sequences.
- random_sample: the same draws as bert4keras' per-row np.random.choice under the
  same global seed; `seed=` reproducible; top-k / top-p never emit an excluded
  token and follow the renormalised distribution; temperature; n outputs.
- last_token(model).predict equals exact `model.predict(x)[:, -1]` (1e-5) for tiny
  UniLM and LM models at many lengths and batch sizes, with padding in use; a
  bidirectional model without padding mask is caught and run on exact shapes.
- A UniLM seq2seq decode on a tiny Keras model: same tokens bucketed and exact.
- Bad arguments raise errors naming the argument and what is allowed.
"""

import contextlib
import itertools
import warnings

import keras
import numpy as np
import pytest

from nlp4keras.models import build_transformer_model
from nlp4keras.snippets import AutoRegressiveDecoder
from nlp4keras.snippets.last_token import LastToken, bucket, bucket_rows

V = 3  # the table models' vocabulary
END = 2


# ---------------------------------------------------------------------- table models


def table_decoder(default_rtype="logits", use_states=False, seed=0, vocab=V, **kwargs):
    """A decoder whose "model" is a fixed random table: the next token's logits
    depend on the step, the last token and the input (a condition id), so every
    sequence's probability is known exactly."""
    rng = np.random.default_rng(seed)
    maxlen = kwargs.get("maxlen", 4)
    logits = rng.normal(scale=2.0, size=(maxlen + 2, vocab + 1, vocab))
    bias = rng.normal(size=(4, vocab))

    class Table(AutoRegressiveDecoder):
        calls = []

        def scores(self, condition, output_ids):
            step = output_ids.shape[1]
            last = output_ids[:, -1] if step else np.full(len(output_ids), vocab)
            value = logits[step, last] + bias[condition]
            return value if default_rtype == "logits" else _softmax(value)

        @AutoRegressiveDecoder.wraps(default_rtype=default_rtype, use_states=use_states)
        def predict(self, inputs, output_ids, states):
            assert len(inputs[0]) == len(output_ids)
            self.calls.append(states)
            scores = self.scores(inputs[0][:, 0], output_ids)
            return (scores, states + 1) if use_states else scores

    return Table(**kwargs)


def _softmax(x):
    x = np.exp(x - x.max(axis=-1, keepdims=True))
    return x / x.sum(axis=-1, keepdims=True)


def log_probas(decoder, condition, prefix, temperature=1.0):
    """Next-token log-probabilities the decoder's beam search uses after `prefix`."""
    scores, _ = decoder.predict(
        [np.array([[condition]])], np.array([prefix], dtype=int).reshape(1, -1), 0,
        temperature, "logits",
    )  # fmt: skip
    return scores[0]


def brute_force_beam(decoder, condition, temperature=1.0, min_ends=1):
    """The output of an unbounded beam, by enumeration: at each length t, every
    sequence of t tokens that does not extend a finished one, scored from
    scratch; stop at the first length whose best sequence is finished."""
    start = [] if decoder.start_id is None else [decoder.start_id]

    def is_finished(seq):
        return (
            len(seq) >= decoder.minlen
            and decoder.end_id is not None
            and seq[-1] == decoder.end_id
            and seq.count(decoder.end_id) >= min_ends
        )

    def score(seq):
        total = 0.0
        for j in range(len(start), len(seq)):
            total += log_probas(decoder, condition, seq[:j], temperature)[seq[j]]
        return total

    for t in range(1, decoder.maxlen + 1):
        candidates = []
        for tail in itertools.product(range(V), repeat=t):
            seq = start + list(tail)
            if any(is_finished(seq[:j]) for j in range(len(start) + 1, len(seq))):
                continue
            candidates.append((score(seq), seq))
        best = max(candidates)
        if len(best[1]) >= decoder.minlen:
            if is_finished(best[1]):
                return best[1]
            candidates = [c for c in candidates if not is_finished(c[1])]
    return max(candidates)[1]


def reference_beam_search(decoder, inputs, topk, states=None, temperature=1, min_ends=1):
    """bert4keras' beam search, written plainly: keep the topk best extensions
    (a full sort), stop when the best is finished, drop finished ones."""
    inputs = [np.array([i]) for i in inputs]
    outputs, totals = [list(decoder.first_output_ids[0])], [0.0]
    for step in range(decoder.maxlen):
        scores, states = decoder.predict(
            inputs, np.array(outputs, dtype=int).reshape(len(outputs), -1), states,
            temperature, "logits",
        )  # fmt: skip
        if step == 0:
            inputs = [np.repeat(i, topk, axis=0) for i in inputs]
        extended = [
            (totals[r] + scores[r, token], r, token)
            for r in range(len(outputs))
            for token in range(scores.shape[1])
        ]
        extended.sort(key=lambda item: -item[0])
        kept = extended[:topk]
        rows = [r for _, r, _ in kept]
        outputs = [outputs[r] + [token] for _, r, token in kept]
        totals = [total for total, _, _ in kept]
        inputs = [i[rows] if step else i[: len(rows)] for i in inputs]
        if len(outputs[0]) >= decoder.minlen:
            ends = [
                o[-1] == decoder.end_id and o.count(decoder.end_id) >= min_ends for o in outputs
            ]
            if ends[0]:
                return np.array(outputs[0])
            live = [k for k, end in enumerate(ends) if not end]
            inputs = [i[live] for i in inputs]
            outputs = [outputs[k] for k in live]
            totals = [totals[k] for k in live]
            topk = len(live)
    return np.array(outputs[int(np.argmax(totals))])


def reference_random_sample(decoder, inputs, n, topk=None, topp=None, temperature=1, min_ends=1):
    """bert4keras' random sampling, written plainly: one np.random.choice per row
    over its (top-k, then top-p) candidates, in bert4keras' candidate order."""
    inputs = [np.array([i]) for i in inputs]
    output_ids = decoder.first_output_ids
    results = []
    for step in range(decoder.maxlen):
        probas, _ = decoder.predict(inputs, output_ids, None, temperature, "probas")
        probas = probas / probas.sum(axis=1, keepdims=True)
        if step == 0:
            probas = np.repeat(probas, n, axis=0)
            inputs = [np.repeat(i, n, axis=0) for i in inputs]
            output_ids = np.repeat(output_ids, n, axis=0)
        new_ids = []
        for p in probas:
            candidates = np.arange(len(p))
            if topk is not None:
                candidates = p.argpartition(-topk)[-topk:]
                p = p[candidates] / p[candidates].sum()
            if topp is not None:
                order = p.argsort()[::-1]
                candidates, p = candidates[order], p[order]
                keep = np.searchsorted(np.cumsum(p), topp) + 1  # up to the first reaching topp
                p = np.where(np.arange(len(p)) < keep, p, 0.0)
                p = p / p.sum()
            new_ids.append(candidates[np.random.choice(len(p), p=p)])
        output_ids = np.concatenate([output_ids, np.array(new_ids).reshape(-1, 1)], 1)
        if output_ids.shape[1] >= decoder.minlen:
            done = (output_ids[:, -1] == decoder.end_id) & (
                (output_ids == decoder.end_id).sum(1) >= min_ends
            )
            results.extend(output_ids[done])
            inputs = [i[~done] for i in inputs]
            output_ids = output_ids[~done]
            if not len(output_ids):
                break
    return results + list(output_ids)


# ---------------------------------------------------------------------- beam_search

SETTINGS = [
    dict(start_id=None, end_id=END, maxlen=4, minlen=1),
    dict(start_id=0, end_id=END, maxlen=4, minlen=1),
    dict(start_id=None, end_id=END, maxlen=5, minlen=3),
    dict(start_id=1, end_id=END, maxlen=4, minlen=4),
    dict(start_id=None, end_id=None, maxlen=3, minlen=1),
    dict(start_id=None, end_id=END, maxlen=1, minlen=0),
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("min_ends", [1, 2])
@pytest.mark.parametrize("default_rtype", ["logits", "probas"])
def test_beam_search_as_wide_as_all_sequences_is_brute_force(settings, min_ends, default_rtype):
    found_ends = 0
    for seed in range(6):
        decoder = table_decoder(default_rtype, seed=seed, **settings)
        condition = seed % 4
        temperature = [1, 0.7, 1.6][seed % 3]
        expected = brute_force_beam(decoder, condition, temperature, min_ends)
        got = decoder.beam_search(
            [[condition]], topk=V**decoder.maxlen, temperature=temperature, min_ends=min_ends
        )
        assert np.issubdtype(got.dtype, np.integer)
        assert list(got) == expected, (seed, settings)
        found_ends += expected[-1] == END
    if settings["end_id"] is not None and settings["maxlen"] > 1:
        assert found_ends, "no case stopped at end_id: the end handling went untested"


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("topk", [1, 2, 3, 5])
@pytest.mark.parametrize("min_ends", [1, 2])
def test_beam_search_is_bert4keras_beam_search(settings, topk, min_ends):
    for seed in range(5):
        decoder = table_decoder("probas", seed=seed, vocab=5, **settings)
        expected = reference_beam_search(decoder, [[seed % 4]], topk, min_ends=min_ends)
        got = decoder.beam_search([[seed % 4]], topk, min_ends=min_ends)
        np.testing.assert_array_equal(got, expected)


def test_beam_search_greedy_is_argmax_path_and_states_flow():
    decoder = table_decoder("logits", use_states=True, seed=3, start_id=None, end_id=None,
                            maxlen=4)  # fmt: skip
    decoder.calls.clear()
    got = decoder.beam_search([[1]], topk=1, states=10)
    path = []
    for _ in range(4):
        path.append(int(np.argmax(decoder.scores(np.array([1]), np.array([path], dtype=int)))))
    assert list(got) == path
    assert decoder.calls == [10, 11, 12, 13]  # the states predict returned, step by step


def test_beam_wider_than_vocabulary_keeps_all_tokens():
    decoder = table_decoder(seed=1, start_id=None, end_id=END, maxlen=3)
    assert list(decoder.beam_search([[0]], topk=50)) == brute_force_beam(decoder, 0)


# ---------------------------------------------------------------------- random_sample

SAMPLE_CASES = [
    dict(),
    dict(topk=2),
    dict(topp=0.6),
    dict(topk=3, topp=0.8),
    dict(topp=0.0),
    dict(temperature=0.5),
    dict(topk=4, temperature=2.0, min_ends=2),
]


@pytest.mark.parametrize("case", SAMPLE_CASES)
@pytest.mark.parametrize("settings", SETTINGS[:4])
def test_random_sample_is_bert4keras_under_the_same_global_seed(case, settings):
    for seed in range(3):
        decoder = table_decoder("logits", seed=seed, vocab=5, **settings)
        np.random.seed(seed)
        expected = reference_random_sample(decoder, [[seed]], 7, **case)
        np.random.seed(seed)
        got = decoder.random_sample([[seed]], 7, **case)
        assert len(got) == len(expected) == 7
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


def test_random_sample_seed_is_reproducible():
    decoder = table_decoder(seed=0, vocab=5, start_id=None, end_id=END, maxlen=6)
    first = decoder.random_sample([[0]], 20, topk=4, seed=7)
    np.random.seed(0)  # the global generator plays no part
    again = decoder.random_sample([[0]], 20, topk=4, seed=7)
    other = decoder.random_sample([[0]], 20, topk=4, seed=8)
    generator = decoder.random_sample([[0]], 20, topk=4, seed=np.random.default_rng(7))
    assert [list(x) for x in first] == [list(x) for x in again] == [list(x) for x in generator]
    assert [list(x) for x in first] != [list(x) for x in other]


class Fixed(AutoRegressiveDecoder):
    """The same next-token distribution at every step (probabilities)."""

    def __init__(self, probas, **kwargs):
        super().__init__(**kwargs)
        self.probas = np.asarray(probas, dtype=np.float64)

    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        return np.tile(self.probas, (len(output_ids), 1))


PROBAS = np.array([0.05, 0.3, 0.02, 0.25, 0.08, 0.2, 0.1])  # sorted: 1, 3, 5, 6, 4, 0, 2


@pytest.mark.parametrize(
    "topk, topp, allowed",
    [
        (None, None, [0, 1, 2, 3, 4, 5, 6]),
        (3, None, [1, 3, 5]),
        (1, None, [1]),
        (None, 0.5, [1, 3]),  # 0.3 < 0.5, 0.55 reaches it
        (None, 0.54, [1, 3]),
        (None, 0.56, [1, 3, 5]),
        (None, 0.0, [1]),
        (5, 0.9, [1, 3, 5, 6]),  # top-5 renormalised (/ 0.93): 0.75 / 0.93 < 0.9 <= 0.85 / 0.93
        (2, 0.5, [1]),  # top-2 renormalised: 0.3 / 0.55 >= 0.5
    ],
)
def test_topk_topp_only_emit_allowed_tokens_with_their_probabilities(topk, topp, allowed):
    decoder = Fixed(PROBAS, start_id=None, end_id=None, maxlen=4)
    samples = np.array(decoder.random_sample([], 2000, topk=topk, topp=topp, seed=1))
    assert samples.shape == (2000, 4)
    assert set(np.unique(samples)) <= set(allowed)
    expected = np.zeros(len(PROBAS))
    expected[allowed] = PROBAS[allowed] / PROBAS[allowed].sum()
    frequencies = np.bincount(samples.ravel(), minlength=len(PROBAS)) / samples.size
    np.testing.assert_allclose(frequencies, expected, atol=0.02)


def test_topp_above_one_keeps_every_token_with_a_warning():
    """bert4keras' conditional LM example passes topp=5: no token excluded, as there."""
    decoder = Fixed(PROBAS, start_id=None, end_id=None, maxlen=3)
    with pytest.warns(UserWarning, match=r"topp=5 is above 1, so it excludes no token"):
        got = np.array(decoder.random_sample([], 2000, topp=5, seed=4))
    # the same draws as topp=1 (the tokens sorted the same way), every token possible
    np.testing.assert_array_equal(got, np.array(decoder.random_sample([], 2000, topp=1, seed=4)))
    frequencies = np.bincount(got.ravel(), minlength=len(PROBAS)) / got.size
    np.testing.assert_allclose(frequencies, PROBAS, atol=0.02)


def test_temperature():
    logits = np.array([[1.0, 2.0, -0.5]])
    probas = _softmax(logits)

    class FromLogits(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="logits")
        def predict(self, inputs, output_ids, states):
            return logits

    class FromProbas(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="probas")
        def predict(self, inputs, output_ids, states):
            return probas

    for decoder in (FromLogits(None, None, 3), FromProbas(None, None, 3)):
        for t in (0.5, 1, 3.0):
            p, states = decoder.predict([], np.zeros((1, 0)), "s", t, "probas")
            assert states is None
            np.testing.assert_allclose(p, _softmax(logits / t), rtol=1e-12)
            np.testing.assert_allclose(
                decoder.predict([], np.zeros((1, 0)), None, t, "logits")[0],
                np.log(_softmax(logits / t) + 1e-12),
                rtol=1e-12,
            )
    # a low temperature samples the argmax, a high one flattens the distribution
    decoder = Fixed(PROBAS, start_id=None, end_id=None, maxlen=3)
    cold = np.array(decoder.random_sample([], 200, temperature=0.01, seed=0))
    assert (cold == 1).all()
    hot = np.array(decoder.random_sample([], 2000, temperature=1000.0, seed=0))
    np.testing.assert_allclose(np.bincount(hot.ravel()) / hot.size, 1 / 7, atol=0.02)


def test_n_outputs_end_handling_min_ends_and_minlen():
    probas = np.array([0.3, 0.3, 0.4])  # token 2 ends
    decoder = Fixed(probas, start_id=0, end_id=2, maxlen=8, minlen=4)
    outputs = decoder.random_sample([], 300, min_ends=2, seed=3)
    assert len(outputs) == 300
    lengths = [len(o) for o in outputs]
    assert min(lengths) >= 4 and max(lengths) <= 9  # the start token + maxlen at most
    finished = [o for o in outputs if len(o) < 9]
    assert finished, "no output finished early: the end handling went untested"
    for o in outputs:
        assert o[0] == 0
        if len(o) < 9:
            assert o[-1] == 2 and (o == 2).sum() >= 2
            assert not any(  # no earlier position already finished it
                o[j] == 2 and (o[: j + 1] == 2).sum() >= 2 for j in range(3, len(o) - 1)
            )
    # the finished outputs come first, in the order they finish, then the unfinished
    assert lengths == sorted(lengths)


def test_select_rows_lets_a_predict_keep_per_row_state():
    """A predict that keeps the outputs so far in its own per-row "cache" (what a
    KV cache does), gathered by select_rows, always agrees with output_ids."""

    class Cached(AutoRegressiveDecoder):
        cache = None

        @AutoRegressiveDecoder.wraps(default_rtype="probas")
        def predict(self, inputs, output_ids, states):
            if self.cache is not None:
                np.testing.assert_array_equal(self.cache, output_ids[:, :-1])
            self.cache = output_ids
            rng = np.random.default_rng(output_ids.sum(axis=1, keepdims=True) + inputs[0])
            return rng.random((len(output_ids), 6)) + 0.01

        def select_rows(self, rows):
            self.cache = self.cache[rows]

    decoder = Cached(start_id=None, end_id=3, maxlen=10)
    decoder.beam_search([[1]], topk=4)
    decoder.cache = None
    decoder.random_sample([[2]], 9, topk=3)


# ---------------------------------------------------------------------- last_token


def tiny_model(application, **kwargs):
    keras.utils.set_random_seed(0)
    return build_transformer_model(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, hidden_act="gelu", application=application, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def unilm():
    return tiny_model("unilm")


@pytest.fixture(scope="module")
def lm():
    return tiny_model("lm")


def test_buckets():
    assert [bucket(n, 16) for n in (1, 16, 17, 32, 33, 48, 49, 65, 129, 500, 512)] == [
        16, 16, 32, 32, 48, 48, 64, 80, 160, 512, 512,
    ]  # fmt: skip
    for n in range(1, 3000):
        assert n <= bucket(n, 16) <= max(n + 15, 1.25 * n)
        assert bucket(bucket(n, 16), 16) == bucket(n, 16)
        assert n <= bucket_rows(n) <= max(2 * n - 1, 1.25 * n)
    assert [bucket_rows(n) for n in (1, 2, 3, 5, 9, 16, 17, 100)] == [1, 2, 4, 8, 16, 16, 20, 112]


@contextlib.contextmanager
def no_fallback_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert not [w for w in caught if "last_token(" in str(w.message)]


def _batch(length, rows, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 50, size=(rows, length))
    segments = np.zeros_like(ids)
    segments[:, length // 2 :] = 1
    return ids, segments


@pytest.mark.spread
@pytest.mark.parametrize("application", ["unilm", "lm"])
def test_last_token_is_exact_last_position(application, unilm, lm):
    model = unilm if application == "unilm" else lm
    last = LastToken(model, bucketing=True)
    for k, (length, rows) in enumerate([(3, 1), (7, 3), (16, 2), (17, 5), (30, 1), (33, 9)]):
        ids, segments = _batch(length, rows, k)
        with no_fallback_warning():  # padding is harmless here
            got = last.predict([ids, segments], verbose=0)
        expected = model.predict([ids, segments], verbose=0)[:, -1]
        assert got.shape == (rows, 50)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert last.length_padding is True and last.batch_padding is True  # padding was in use


def test_last_token_of_several_outputs_and_bert4keras_call_forms(unilm):
    hidden = unilm.get_layer("Transformer-0-FeedForward-Norm").output
    two = keras.Model(unilm.inputs, [unilm.outputs[0], hidden])
    last = LastToken(two, bucketing=True)
    ids, segments = _batch(9, 3, 0)
    got = last.predict([ids, segments])
    expected = [o[:, -1] for o in two.predict([ids, segments], verbose=0)]
    assert isinstance(got, list) and len(got) == 2
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    split = last.predict([ids, segments], batch_size=2, verbose=0)
    np.testing.assert_allclose(split[0], expected[0], atol=1e-5, rtol=0)
    decoder = table_decoder(start_id=None, end_id=None, maxlen=2)
    assert decoder.last_token(unilm) is decoder.last_token(unilm)  # one per model
    assert decoder.last_token(unilm).bucketing == (keras.backend.backend() == "jax")


def unmasked_bidirectional_model():
    """Token embeddings without a padding mask, then self-attention over every
    position: padding changes every real position's output."""
    keras.utils.set_random_seed(1)
    tokens = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(50, 8)(tokens)
    x = x + keras.layers.MultiHeadAttention(2, 4)(x, x)
    probas = keras.layers.Dense(50, activation="softmax")(x)
    return keras.Model(tokens, probas)


def test_padding_that_changes_outputs_falls_back_to_exact_shapes():
    model = unmasked_bidirectional_model()
    last = LastToken(model, bucketing=True)
    ids = np.random.default_rng(0).integers(1, 50, size=(3, 5))
    with pytest.warns(UserWarning, match="padding the sequence axis changes the model's outputs"):
        got = last.predict(ids)
    np.testing.assert_allclose(got, model.predict(ids, verbose=0)[:, -1], atol=1e-5, rtol=0)
    assert last.length_padding is False
    assert last.batch_padding is True  # rows do not interact: batch padding still used
    for length, rows in [(6, 3), (11, 5), (20, 1)]:
        ids = np.random.default_rng(length).integers(1, 50, size=(rows, length))
        with no_fallback_warning():  # warned once only
            got = last.predict(ids)
        np.testing.assert_allclose(got, model.predict(ids, verbose=0)[:, -1], atol=1e-5, rtol=0)
    # the padded result really differs here: the check is not vacuous
    padded = np.pad(ids, [(0, 0), (0, 12)])
    assert np.abs(model.predict(padded, verbose=0)[:, 19] - got).max() > 1e-4


def test_padding_beyond_the_position_table_is_avoided():
    model = tiny_model("lm", max_position=20)
    last = LastToken(model, bucketing=True)
    for length in (18, 5, 19):  # 18 -> 32 fails (20 positions): exact; 5 -> 16 works
        ids, segments = _batch(length, 2, length)
        with no_fallback_warning():
            got = last.predict([ids, segments])
        expected = model.predict([ids, segments], verbose=0)[:, -1]
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert last.length_padding is True


class Title(AutoRegressiveDecoder):
    """task_seq2seq_autotitle's decoder: the source in segment 0, the title in 1."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        token_ids, segment_ids = inputs
        token_ids = np.concatenate([token_ids, output_ids], 1)
        segment_ids = np.concatenate([segment_ids, np.ones_like(output_ids)], 1)
        return self.last_token(self.model).predict([token_ids, segment_ids])


def test_seq2seq_decode_is_the_same_bucketed_and_exact(unilm):
    outputs = {}
    for bucketing in (True, False):
        decoder = Title(unilm, start_id=None, end_id=3, maxlen=8, minlen=2)
        decoder.bucketing = bucketing
        runs = []
        for source in ([2, 5, 9, 14, 3], [2, 7, 7, 30, 41, 12, 18, 3]):
            inputs = [source, [0] * len(source)]
            runs.append(list(decoder.beam_search(inputs, topk=3)))
            runs.extend(list(x) for x in decoder.random_sample(inputs, 4, topp=0.9, seed=2))
        outputs[bucketing] = runs
        if bucketing:
            assert decoder.models[unilm].length_padding is True
    assert outputs[True] == outputs[False]
    assert any(len(run) > 1 for run in outputs[True])


# ---------------------------------------------------------------------- bad arguments


def test_bad_arguments_raise_clear_errors(unilm):
    decoder = table_decoder(start_id=None, end_id=END, maxlen=3)
    cases = [
        (lambda: decoder.beam_search([[0]], topk=0), ValueError, r"`topk` must be an integer >= 1"),
        (lambda: decoder.beam_search([[0]], topk=1.5), TypeError, r"`topk` must be an integer"),
        (lambda: decoder.beam_search([[0]], 2, min_ends=0), ValueError, r"`min_ends` .* >= 1"),
        (lambda: decoder.beam_search([[0]], 2, temperature=0), ValueError, r"`temperature` .* > 0"),
        (lambda: decoder.random_sample([[0]], 0), ValueError, r"`n` must be an integer >= 1"),
        (lambda: decoder.random_sample([[0]], 2, topk=0), ValueError, r"`topk` .* >= 1"),
        (lambda: decoder.random_sample([[0]], 2, topp=-0.1), ValueError, r"`topp` .* >= 0"),
        (lambda: decoder.random_sample([[0]], 2, temperature=-1), ValueError, "`temperature`"),
        (lambda: decoder.random_sample([[0]], 2, seed="x"), TypeError, r"`seed` must be"),
        (lambda: decoder.beam_search(np.array([0, 1]), 2), TypeError, r"`inputs` must be a list"),
        (lambda: decoder.beam_search("ab", 2), TypeError, r"`inputs` must be a list"),
        (lambda: decoder.beam_search([["a"]], 2), TypeError, r"`inputs\[0\]` must be an array"),
        (lambda: decoder.beam_search([[[1], [1, 2]]], 2), ValueError, r"`inputs\[0\]` is not an"),
        (lambda: decoder.predict([[[0]]], np.zeros((1, 0)), None, 1, "prob"), ValueError,
         r"`rtype` must be one of 'probas', 'logits'"),
        (lambda: AutoRegressiveDecoder.wraps("prob"), ValueError,
         r"`default_rtype` must be one of .* Did you mean 'probas'"),
        (lambda: AutoRegressiveDecoder(start_id=-1, end_id=2, maxlen=3), ValueError, "`start_id`"),
        (lambda: AutoRegressiveDecoder(None, 2, maxlen=0), ValueError, r"`maxlen` .* >= 1"),
        (lambda: AutoRegressiveDecoder(None, 2.5, maxlen=3), TypeError, "`end_id`"),
        (lambda: AutoRegressiveDecoder(None, 2, 3).beam_search([[0]], 1), NotImplementedError,
         "must define predict"),
        (lambda: decoder.last_token(unilm).predict([np.ones((1, 3), int)]), ValueError,
         r"takes 2 inputs \(Input-Token, Input-Segment\), got 1"),
        (lambda: decoder.last_token("model"), TypeError, "`model` must be a Keras model"),
    ]  # fmt: skip
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            call()


def test_a_predict_without_wraps_or_with_a_wrong_result_is_explained():
    class Unwrapped(AutoRegressiveDecoder):
        def predict(self, inputs, output_ids, states):
            return np.ones((1, 3))

    with pytest.raises(TypeError, match=r"must be decorated with @AutoRegressiveDecoder.wraps"):
        Unwrapped(None, 2, 3).beam_search([[0]], 2)

    class OwnTemperature(AutoRegressiveDecoder):  # a bert4keras-compatible predict of its own
        def predict(self, inputs, output_ids, states, temperature=1, rtype="logits"):
            return np.log(np.tile([0.5, 0.4, 0.1], (len(output_ids), 1))), states

    assert list(OwnTemperature(None, 2, 3).beam_search([[0]], 2)) == [0, 0, 0]

    class Sequence(AutoRegressiveDecoder):  # forgot last_token: [rows, steps, vocab]
        @AutoRegressiveDecoder.wraps()
        def predict(self, inputs, output_ids, states):
            return np.ones((1, 4, 3)) / 3

    with pytest.raises(ValueError, match=r"shape \[rows, vocab_size\].*last_token"):
        Sequence(None, 2, 3).beam_search([[0]], 2)

    class NoStates(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(use_states=True)
        def predict(self, inputs, output_ids, states):
            return np.ones((1, 3)) / 3

    with pytest.raises(TypeError, match=r"use_states=True, so it must return \(scores, states\)"):
        NoStates(None, 2, 3).random_sample([[0]], 2)

    class AllExcluded(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps()
        def predict(self, inputs, output_ids, states):
            return np.zeros((len(output_ids), 3))

    with pytest.raises(ValueError, match="not all 0 in a row"):
        AllExcluded(None, 2, 3).random_sample([[0]], 2)
