"""Cached generation for the lm / unilm applications of the encoder families:
the same tokens as bert4keras' seq2seq decoding (AutoRegressiveDecoder whose
predict concatenates the source, segment 0, and the output so far, segment
1 for UniLM, and recomputes everything), greedy for a batch of sources of
different lengths and beam search; the families without a cache path are
refused with the reason."""

import keras
import numpy as np
import pytest

from nlp4keras.generation import CachedGenerator
from nlp4keras.generation.prompts import PromptBatch
from nlp4keras.models import build_transformer_model
from nlp4keras.snippets import AutoRegressiveDecoder

VOCAB = 53
CONFIG = dict(
    vocab_size=VOCAB, hidden_size=24, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=40, hidden_act="gelu", max_position_embeddings=64,
    initializer_range=0.3,  # sharp next-token distributions: no near ties
    with_mlm="linear",
)  # fmt: skip
CASES = [("bert", "unilm"), ("bert", "lm"), ("roformer", "unilm"), ("albert", "unilm")]
CASES += [("roformer_v2", "unilm"), ("roformer", "lm"), ("nezha", "unilm"), ("nezha", "lm")]


# NEZHA clips distances at 4: the 12-token source and 9 new tokens reach past it.
FAMILY_CONFIG = {"nezha": {"max_relative_position": 4}}


def build(model, application, **kwargs):
    keras.utils.set_random_seed(11)
    config = {**CONFIG, **FAMILY_CONFIG.get(model, {}), **kwargs}
    return build_transformer_model(
        model=model, application=application, return_keras_model=False, **config
    )


class Seq2Seq(AutoRegressiveDecoder):
    """bert4keras' autotitle predict: [source, output] and their segment ids."""

    def __init__(self, model, new_segment, **kwargs):
        super().__init__(start_id=None, **kwargs)
        self.model, self.new_segment = model, new_segment

    @AutoRegressiveDecoder.wraps(default_rtype="logits")
    def predict(self, inputs, output_ids, states):
        token_ids, segment_ids = inputs
        token_ids = np.concatenate([token_ids, output_ids], 1)
        new_segments = np.full_like(output_ids, self.new_segment)
        segment_ids = np.concatenate([segment_ids, new_segments], 1)
        return self.last_token(self.model).predict([token_ids, segment_ids])

    def generate(self, source, topk=1):
        return [int(i) for i in self.beam_search([source, [0] * len(source)], topk=topk)]


def sources(seed, lengths=(3, 7, 12)):
    rng = np.random.default_rng(seed)
    return [[int(i) for i in rng.integers(1, VOCAB, n)] for n in lengths]


@pytest.fixture(scope="module", params=CASES, ids=lambda case: "-".join(case))
def case(request):
    model, application = request.param
    transformer = build(model, application)
    return application, transformer, CachedGenerator(transformer)


@pytest.mark.spread
def test_cached_greedy_equals_uncached(case):
    application, transformer, generator = case
    batch = sources(0)
    new_segment = 1 if application == "unilm" else 0
    uncached = Seq2Seq(transformer.model, new_segment, end_id=None, maxlen=9)
    assert generator.generate(batch, 9) == [uncached.generate(source) for source in batch]


@pytest.mark.spread
def test_cached_beam_search_equals_uncached(case):
    application, transformer, generator = case
    new_segment = 1 if application == "unilm" else 0
    for source in sources(1, lengths=(4, 10)):
        end_id = generator.generate([source], 9)[0][3]
        uncached = Seq2Seq(transformer.model, new_segment, end_id=end_id, maxlen=9)
        got = generator.beam_search(source, topk=3, max_new_tokens=9, end_id=end_id)
        assert got == uncached.generate(source, topk=3)


@pytest.mark.spread
@pytest.mark.parametrize("application", ["unilm", "lm"])
@pytest.mark.parametrize("model", ["bert", "nezha"])
def test_prompt_scores_equal_the_model_at_every_position(model, application):
    """The decoding graph on a (left-padded) prompt gives the model's own
    scores at every prompt position: the UniLM source attends both ways
    (its first token sees the last), the lm prompt causally; NEZHA's
    relative positions from slots shifted by the padding (max 1e-5)."""
    transformer = build(model, application)
    generator = CachedGenerator(transformer)
    source = [5, 6, 7, 8, 9]
    batch = PromptBatch(
        [source], 1, transformer.pad_token_id, None, "test",
        bidirectional=application == "unilm", new_segment=1,
    )  # fmt: skip
    caches = [np.zeros((1, batch.length) + tuple(c.shape[2:]), "float32")
              for c in generator.model.inputs if c.name.endswith("-Cache")]  # fmt: skip
    cached = generator.model.predict(batch.first_inputs() + caches, verbose=0)[0]
    expected = transformer.model.predict([np.array([source]), np.zeros((1, 5))], verbose=0)
    np.testing.assert_allclose(cached[0, -5:], expected[0], atol=1e-5)


@pytest.mark.parametrize(
    "model, application, extra, error, pattern",
    [
        ("gau_alpha", "unilm", {}, NotImplementedError, r"softmax_plus scales each query"),
        ("bert", "encoder", {}, TypeError, r"application='lm' or 'unilm'"),
        ("bert", "lm", {"residual_attention_scores": True}, NotImplementedError, r"RealFormer"),
        ("bert", "unilm", {"with_pool": True}, ValueError, r"only output must be the LM head"),
    ],
)
def test_what_has_no_cache_path_is_refused(model, application, extra, error, pattern):
    transformer = build(model, application, **extra)
    with pytest.raises(error, match=pattern):
        CachedGenerator(transformer)


def test_start_id_is_refused_outside_t5():
    with pytest.raises(ValueError, match=r"`start_id` is a T5 decoder's first token"):
        CachedGenerator(build("bert", "unilm"), start_id=1)
