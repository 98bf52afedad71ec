"""Cached generation (nlp4keras.generation.CachedGenerator) against uncached
decoding: the same tokens as bert4keras' way (AutoRegressiveDecoder with the
whole prefix recomputed at each step, greedy and beam search) for every
decoder family, several prompts of different lengths in one batch; against
transformers' `generate` (repetition penalty, min_new_tokens, stop tokens)
and on the real SmolLM2; JAX's compiled loop against the step loop;
streaming, sampling, end tokens and bad input.
"""

import tempfile

import keras
import numpy as np
import pytest
from families.decoder_cases import all_decoder_cases

from nlp4keras.generation import CachedGenerator
from nlp4keras.generation.prompts import PromptBatch
from nlp4keras.models import build_transformer_model
from nlp4keras.snippets import AutoRegressiveDecoder

_FOLDER = tempfile.TemporaryDirectory(prefix="nlp4keras-generation-")
CASES = {case.name: case for case in all_decoder_cases(_FOLDER.name)}


class Uncached(AutoRegressiveDecoder):
    """bert4keras' greedy decoding: beam width 1, the prefix recomputed."""

    def __init__(self, model, **kwargs):
        super().__init__(start_id=None, **kwargs)
        self.model = model

    @AutoRegressiveDecoder.wraps(default_rtype="logits")
    def predict(self, inputs, output_ids, states):
        token_ids = np.concatenate([inputs[0], output_ids], 1)
        return self.last_token(self.model).predict(token_ids)

    def generate(self, prompt, topk=1):
        return [int(i) for i in self.beam_search([prompt], topk=topk)]


def prompts(vocab, lengths=(3, 8, 13), seed=0):
    rng = np.random.default_rng(seed)
    return [[int(i) for i in rng.integers(1, vocab, n)] for n in lengths]


@pytest.fixture(scope="module", params=sorted(CASES))
def decoder(request):
    case = CASES[request.param]
    return case, case.build()


@pytest.mark.spread
def test_cached_greedy_equals_uncached_for_a_batch_of_lengths(decoder):
    case, transformer = decoder
    batch = prompts(transformer.vocab_size)
    got = CachedGenerator(transformer).generate(batch, max_new_tokens=10)
    uncached = Uncached(transformer.model, end_id=None, maxlen=10)
    assert got == [uncached.generate(prompt) for prompt in batch], case.name
    # one prompt alone gives what it gives in the batch
    assert CachedGenerator(transformer).generate(batch[1:2], max_new_tokens=10) == got[1:2]


@pytest.mark.spread
def test_cached_beam_search_equals_uncached(decoder):
    """bert4keras' beam search, the caches reordered by parent beam at every
    step, finished beams dropped: the same best output as recomputing."""
    case, transformer = decoder
    generator = CachedGenerator(transformer)
    for prompt in prompts(transformer.vocab_size, seed=7):
        free = generator.generate([prompt], max_new_tokens=8)[0]
        end_id = free[3]  # a token the search is likely to end on
        uncached = Uncached(transformer.model, end_id=end_id, maxlen=8)
        for topk in (1, 3):
            got = generator.beam_search(prompt, topk=topk, max_new_tokens=8, end_id=end_id)
            assert got == uncached.generate(prompt, topk=topk), (case.name, topk)


def _reference(case):
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(case.checkpoint_path).eval()


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_rules_equal_transformers_generate(name):
    """repetition_penalty, min_new_tokens and a list of stop tokens give
    transformers' greedy tokens, on the step loop and (JAX) the compiled loop."""
    import torch

    case = CASES[name]
    transformer, reference = case.build(), _reference(case)
    generator = CachedGenerator(transformer)
    compiled = [False, True] if generator._compiled is not None else [False]
    for prompt in prompts(transformer.vocab_size, lengths=(4, 9), seed=8):
        rules = dict(repetition_penalty=1.8, min_new_tokens=3)
        free = generator.generate([prompt], 12, **rules)[0]
        stops = [free[1], free[6]]  # the first stops the row only after min_new_tokens
        with torch.no_grad():
            output = reference.generate(
                torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                eos_token_id=stops, pad_token_id=stops[0], **rules,
            )  # fmt: skip
        expected = [int(i) for i in output[0, len(prompt) :]]
        assert expected[-1] in stops or len(expected) == 12
        for flag in compiled:
            got = generator.generate([prompt], 12, end_id=stops, compiled=flag, **rules)
            assert got == [expected], (name, flag)


@pytest.mark.spread
@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_length_penalty_beam_search_equals_transformers(name):
    """Beam search with a length penalty (finished beams pooled, ranked by
    sum of log-probabilities / length ** penalty): transformers'
    `generate(num_beams=3, length_penalty=...)`, cached and uncached; the
    penalty changes the winner for some prompt (it is not ignored)."""
    import torch

    case = CASES[name]
    transformer, reference = case.build(), _reference(case)
    generator = CachedGenerator(transformer)
    winners = {}
    for prompt in prompts(transformer.vocab_size, lengths=(3, 5, 9), seed=9):
        end_id = generator.generate([prompt], 10)[0][2]
        uncached = Uncached(transformer.model, end_id=end_id, maxlen=10)
        for penalty in (-1.5, 0.0, 2.0):
            with torch.no_grad():
                output = reference.generate(
                    torch.tensor([prompt]), max_new_tokens=10, do_sample=False, num_beams=3,
                    length_penalty=penalty, eos_token_id=end_id, pad_token_id=end_id,
                )  # fmt: skip
            expected = [int(i) for i in output[0, len(prompt) :]]
            if end_id in expected:  # transformers pads after the end
                expected = expected[: expected.index(end_id) + 1]
            got = generator.beam_search(prompt, 3, 10, end_id=end_id, length_penalty=penalty)
            assert got == expected, (name, prompt, penalty)
            again = uncached.beam_search([prompt], topk=3, length_penalty=penalty)
            assert [int(i) for i in again] == expected, (name, prompt, penalty)
            winners.setdefault(tuple(prompt), set()).add(tuple(expected))
    assert max(len(outputs) for outputs in winners.values()) > 1


def teacher_forced(generator, prompt, continuation):
    """The decoding graph's last-position scores after the prompt, then after
    each token of `continuation` fed in turn; and the final caches."""
    t = generator.transformer
    batch = PromptBatch([prompt], len(continuation) + 1, t.pad_token_id, None, "test")
    arrays, caches, rows = batch.first_inputs(), generator._empty_caches(batch), []
    for step, token in enumerate([None] + continuation):
        if token is not None:
            arrays = batch.next_inputs(step - 1, np.array([token]))
        scores, caches = generator._scores(arrays, caches, batch)
        rows.append(scores[0])
    return np.stack(rows), caches


@pytest.mark.parametrize("name", ["gpt2", "llama"])
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_cached_scores_close_to_float32(name, policy):
    """Under mixed precision the caches hold the compute dtype and each
    step's scores stay within 10 unit roundoffs (relative norm) of the
    float32 decoding graph's (itself equal to the uncached model). The bound
    is empirical: a 2-layer model rounds ~10 matmul inputs per score;
    TensorFlow 2.21's bfloat16 CPU kernels reach 8.2u (llama, step 0)."""
    from nlp4keras.training import mixed_precision

    case = CASES[name]
    prompt, continuation = [3, 17, 8, 25, 4], [9, 30, 2, 14]
    expected, _ = teacher_forced(CachedGenerator(case.build()), prompt, continuation)
    with mixed_precision(policy):
        generator = CachedGenerator(case.build())
    got, caches = teacher_forced(generator, prompt, continuation)
    assert {keras.backend.standardize_dtype(c.dtype) for c in caches} == {policy[len("mixed_") :]}
    unit = {"mixed_bfloat16": 2.0**-8, "mixed_float16": 2.0**-11}[policy]
    for step, (row, reference) in enumerate(zip(got, expected, strict=True)):
        error = np.linalg.norm(row - reference) / np.linalg.norm(reference)
        assert np.isfinite(row).all() and error <= 10 * unit, (name, policy, step, error)


def test_compiled_loop_equals_step_loop(decoder):
    """Greedy decoding as one compiled JAX loop gives the step loop's tokens
    (rows of different lengths, rows ending early); on the other backends
    compiled=True is refused with the reason."""
    case, transformer = decoder
    generator = CachedGenerator(transformer)
    batch = prompts(transformer.vocab_size, seed=9)
    free = generator.generate(batch, 10, compiled=False)
    end_id = free[0][2]
    if keras.backend.backend() != "jax":
        with pytest.raises(ValueError, match=r"compiled=True runs greedy decoding on JAX only"):
            generator.generate(batch, 10, compiled=True)
        return
    for kwargs in ({}, dict(end_id=end_id), dict(end_id=[end_id, 1], repetition_penalty=1.3)):
        step_loop = generator.generate(batch, 10, compiled=False, **kwargs)
        assert generator.generate(batch, 10, compiled=True, **kwargs) == step_loop, case.name


@pytest.mark.spread
def test_stream_yields_each_step(decoder):
    """stream() yields every row's token per step, None once a row stopped;
    collected, it is what generate() returns."""
    _, transformer = decoder
    generator = CachedGenerator(transformer)
    batch = prompts(transformer.vocab_size, seed=10)
    end_id = generator.generate(batch, 9)[1][1]  # the second row stops at its second token
    expected = generator.generate(batch, 9, end_id=end_id)
    steps = list(generator.stream(batch, 9, end_id=end_id))
    assert len(steps) == max(len(row) for row in expected)
    for row, tokens in enumerate(expected):
        column = [step[row] for step in steps]
        assert column == tokens + [None] * (len(steps) - len(tokens))


def test_a_masked_pad_id_is_masked_in_the_cache_too():
    """pad_token_id passed as an argument masks that id's keys in the model;
    the cached path folds it into its key mask: same tokens."""
    transformer = CASES["gpt2"].build(pad_token_id=5)
    batch = [[5, 9, 5, 14], [7, 5, 5, 5, 30, 2, 11]]
    uncached = Uncached(transformer.model, end_id=None, maxlen=8)
    expected = [uncached.generate(prompt) for prompt in batch]
    assert CachedGenerator(transformer).generate(batch, max_new_tokens=8) == expected


@pytest.mark.spread
def test_each_row_stops_at_its_end_token(decoder):
    _, transformer = decoder
    batch = prompts(transformer.vocab_size, seed=1)
    generator = CachedGenerator(transformer)
    free = generator.generate(batch, max_new_tokens=8)
    end_id = free[0][2]  # the first row's third token ends it there
    stopped = generator.generate(batch, max_new_tokens=8, end_id=end_id)
    for row, tokens in zip(free, stopped, strict=True):
        expected = row[: row.index(end_id) + 1] if end_id in row else row
        assert tokens == expected


@pytest.mark.spread
def test_sampling_is_reproducible_and_topk_one_is_greedy(decoder):
    _, transformer = decoder
    batch = prompts(transformer.vocab_size, seed=2)
    generator = CachedGenerator(transformer)
    first = generator.generate(batch, 12, sample=True, topp=0.9, temperature=1.5, seed=3)
    assert generator.generate(batch, 12, sample=True, topp=0.9, temperature=1.5, seed=3) == first
    others = [generator.generate(batch, 12, sample=True, seed=seed) for seed in (4, 5)]
    assert first != others[0] or first != others[1]
    greedy = generator.generate(batch, 12)
    assert generator.generate(batch, 12, sample=True, topk=1, seed=6) == greedy


def test_bad_input_is_named():
    transformer = CASES["gpt2"].build()
    generator = CachedGenerator(transformer)
    vocab = transformer.vocab_size
    cases = [
        (lambda: generator.generate([], 3), TypeError, r"`prompts` must be a non-empty list"),
        (lambda: generator.generate([[1, 2], []], 3), ValueError, r"`prompts\[1\]` must be"),
        (lambda: generator.generate([[1, vocab]], 3), ValueError, r"outside the vocab of 61"),
        (lambda: generator.generate([[1, 2]], 0), ValueError, r"`max_new_tokens` .* >= 1"),
        (lambda: generator.generate([[1] * 30], 20), ValueError, r"needs 50 positions; .* 40"),
        (lambda: generator.generate([[1]], 2, sample=True, topp=2), ValueError, r"`topp`"),
        (lambda: generator.generate([[1]], 2, end_id=[1, vocab]), ValueError, r"`end_id`"),
        (lambda: generator.generate([[1]], 2, repetition_penalty=0), ValueError, r"penalty"),
        (lambda: generator.generate([[1]], 2, min_new_tokens=-1), ValueError, r"min_new"),
        (lambda: generator.generate([[1]], 2, compiled="yes"), TypeError, r"`compiled`"),
        (lambda: generator.stream([[1]], 0), ValueError, r"`max_new_tokens`"),
        (lambda: generator.beam_search([1], topk=0, max_new_tokens=2), ValueError, r"`topk`"),
    ]
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            call()
    encoder = build_transformer_model(
        vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=8, hidden_act="gelu", return_keras_model=False,
    )  # fmt: skip
    with pytest.raises(TypeError, match=r"must be a language model built with"):
        CachedGenerator(encoder)


@pytest.mark.spread
def test_smollm2_batch_equals_transformers_generate(smollm2_reference):
    """Three prompts of different lengths in one cached batch, 24 new tokens:
    each equal to transformers' greedy `generate` on the same GGUF."""
    import torch

    from nlp4keras.tokenizers import BpeTokenizer

    path, reference, _ = smollm2_reference
    tokenizer = BpeTokenizer(path)
    texts = [
        "The capital of France is",
        "def add(a, b):\n",
        # the chat format: <|im_end|> (id 2, the config's pad id) is a real token here
        "<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n",
    ]
    batch = [tokenizer.encode(text)[0] for text in texts]
    transformer = build_transformer_model(
        checkpoint_path=path, model="llama", return_keras_model=False
    )
    # the file's pad_token_id (2, the end token) masks nothing, as in transformers
    assert transformer.hf_config()["model_type"] == "llama" and transformer.pad_token_id is None
    got = CachedGenerator(transformer).generate(batch, max_new_tokens=24, end_id=2)
    for prompt, tokens in zip(batch, got, strict=True):
        with torch.no_grad():
            output = reference.generate(
                torch.tensor([prompt]), max_new_tokens=24, do_sample=False, pad_token_id=2
            )
        assert tokens == [int(i) for i in output[0, len(prompt) :]], tokenizer.decode(tokens)
    assert tokenizer.decode(got[0]).startswith(" Paris")
