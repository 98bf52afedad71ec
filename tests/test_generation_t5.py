"""Cached generation for T5 / T5.1.1 / mT5 (CachedGenerator over a T5 built
with return_keras_model=False): the encoder runs once, each cross-attention
layer's keys and values are computed once, the decoder steps against its
self-attention caches. Same tokens as bert4keras' mT5 example decoding
(AutoRegressiveDecoder over `.encoder` / `.decoder`, the prefix recomputed),
greedy and beam search, with and without bert4keras' cross_position_bias;
same tokens as transformers' greedy `generate` on stock T5 (no cross bias)."""

import tempfile

import numpy as np
import pytest
from families.t5_cases import hf_model, t5_cases

from nlp4keras.generation import CachedGenerator
from nlp4keras.snippets import AutoRegressiveDecoder

_FOLDER = tempfile.TemporaryDirectory(prefix="nlp4keras-t5-generation-")
CASES = t5_cases(_FOLDER.name)


class Seq2Seq(AutoRegressiveDecoder):
    """bert4keras' mT5 example: the source encoded once, the decoder rerun on
    [context, output so far] at every step."""

    def __init__(self, t5, **kwargs):
        super().__init__(start_id=0, **kwargs)
        self.t5 = t5

    @AutoRegressiveDecoder.wraps(default_rtype="logits")
    def predict(self, inputs, output_ids, states):
        return self.last_token(self.t5.decoder).predict([inputs[0], output_ids])

    def generate(self, source, topk=1):
        context = self.t5.encoder.predict_on_batch(np.array([source]))[0]
        return [int(i) for i in self.beam_search([context], topk=topk)][1:]  # after the start id


def sources(seed, lengths=(3, 9, 14)):
    rng = np.random.default_rng(seed)
    return [[int(i) for i in rng.integers(2, 61, n)] for n in lengths]


@pytest.fixture(
    scope="module",
    params=[(name, bias) for name in sorted(CASES) for bias in (False, True)],
    ids=lambda param: f"{param[0]}-cross_bias={param[1]}",
)
def t5(request):
    name, cross_position_bias = request.param
    model = CASES[name].build(cross_position_bias=cross_position_bias)
    return name, cross_position_bias, model, CachedGenerator(model)


@pytest.mark.spread
def test_cached_greedy_equals_uncached(t5):
    """A batch of sources of different lengths (padded, masked) at once."""
    _, _, model, generator = t5
    batch = sources(0)
    uncached = Seq2Seq(model, end_id=None, maxlen=9)
    assert generator.generate(batch, 8) == [uncached.generate(source)[:8] for source in batch]


@pytest.mark.spread
def test_cached_beam_search_equals_uncached(t5):
    _, _, model, generator = t5
    for source in sources(1, lengths=(5, 11)):
        end_id = generator.generate([source], 8)[0][2]
        uncached = Seq2Seq(model, end_id=end_id, maxlen=8)
        got = generator.beam_search(source, topk=3, max_new_tokens=8, end_id=end_id)
        assert got == uncached.generate(source, topk=3)


@pytest.mark.spread
@pytest.mark.parametrize("name", sorted(CASES))
def test_greedy_equals_transformers_generate(name):
    """Stock T5 (cross_position_bias=False; bert4keras' cross bias differs
    from HF by design): transformers' greedy tokens, a batch at once."""
    import torch

    generator = CachedGenerator(CASES[name].build(cross_position_bias=False))
    batch = sources(2)
    got = generator.generate(batch, 8)
    reference = hf_model(name)
    expected = []
    for source in batch:
        with torch.no_grad():
            output = reference.generate(
                torch.tensor([source]), do_sample=False, num_beams=1, max_new_tokens=8,
                min_new_tokens=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=None,
            )  # fmt: skip
        expected.append([int(i) for i in output[0, 1:]])
    assert got == expected


def test_bad_start_id_and_a_t5_without_its_head_are_named():
    model = CASES["t5"].build()
    with pytest.raises(ValueError, match=r"`start_id`"):
        CachedGenerator(model, start_id=61)
    with pytest.raises(ValueError, match=r"only output must be the LM head"):
        CachedGenerator(CASES["t5"].build(with_lm=False))
