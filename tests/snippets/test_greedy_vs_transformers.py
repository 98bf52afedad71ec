"""Greedy decoding with bert4keras' `AutoRegressiveDecoder` (beam width 1, the
prefix recomputed at each step) gives the same tokens as transformers'
`generate(do_sample=False)` (its own KV cache), for:

- tiny perturbed gpt, gpt2 and llama (grouped-query and tied) checkpoints
  saved by transformers, prompts of different lengths, 20 new tokens, the
  model's eos as the end token on both sides;
- the real SmolLM2-135M-Instruct GGUF (Q4_1), loaded by path into the llama
  family, 32 new tokens for a few prompts: "The capital of France is"
  continues with " Paris". This one runs in the JAX lane only (the
  uncached 135M decode is the suite's slowest test on torch and TF); there
  the README's AutoRegressiveDecoder block (12 tokens, expected text) and
  tests/test_generation.py's cached batch (24 tokens vs transformers) run
  the same file on every backend.

Both sides decode the same token ids (the prompts are encoded once, by
nlp4keras' BpeTokenizer, and checked against transformers' tokenizer).
"""

import keras
import numpy as np
import pytest
from families.decoder_cases import HF_DECODERS, MODEL_NAMES, _hf_model

from nlp4keras.models import build_transformer_model
from nlp4keras.snippets import AutoRegressiveDecoder

torch = pytest.importorskip("torch")

# (tests/test_generation.py runs more prompts through the cached path)
PROMPTS = (
    "The capital of France is",
    # the chat format: <|im_end|> (id 2, also the config's pad id) is a real token
    "<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n",
)


class Greedy(AutoRegressiveDecoder):
    """The next token's probabilities from the model's output at the last position."""

    def __init__(self, model, **kwargs):
        super().__init__(start_id=None, **kwargs)
        self.model = model

    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        token_ids = np.concatenate([inputs[0], output_ids], 1)
        return self.last_token(self.model).predict(token_ids)

    def generate(self, prompt):
        return [int(i) for i in self.beam_search([prompt], topk=1)]


def hf_greedy(model, prompt, new_tokens, end_id):
    with torch.no_grad():
        output = model.generate(
            torch.tensor([prompt], dtype=torch.long),
            max_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=end_id,
            pad_token_id=end_id,
        )
    return [int(i) for i in output[0, len(prompt) :]]


@pytest.mark.spread
@pytest.mark.parametrize("name", sorted(HF_DECODERS))
def test_tiny_models_greedy_equals_transformers_generate(name, tmp_path):
    reference = _hf_model(name)
    reference.save_pretrained(tmp_path)
    end_id = reference.generation_config.eos_token_id
    model = build_transformer_model(str(tmp_path), str(tmp_path), model=MODEL_NAMES[name])
    decoder = Greedy(model, end_id=end_id, maxlen=20)
    rng = np.random.default_rng(7)
    vocab = reference.config.vocab_size
    for length in (3, 8, 13):
        prompt = [int(i) for i in rng.integers(3, vocab, length)]
        expected = hf_greedy(reference, prompt, 20, end_id)
        assert decoder.generate(prompt) == expected, (name, prompt)


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the real SmolLM2 uncached 32-token check runs in the JAX lane; on this backend the "
    "README block and test_generation's cached batch cover the same file",
)
def test_smollm2_greedy_equals_transformers_and_knows_paris(smollm2_reference):
    from nlp4keras.tokenizers import BpeTokenizer

    path, reference, hf_tokenizer = smollm2_reference
    tokenizer = BpeTokenizer(path)
    model = build_transformer_model(checkpoint_path=path, model="llama")
    end_id = tokenizer.token_to_id("<|im_end|>")
    assert end_id == reference.generation_config.eos_token_id == 2
    decoder = Greedy(model, end_id=end_id, maxlen=32)
    continuations = []
    for text in PROMPTS:
        prompt, _ = tokenizer.encode(text)
        assert prompt == hf_tokenizer(text, add_special_tokens=False)["input_ids"], text
        expected = hf_greedy(reference, prompt, 32, end_id)
        got = decoder.generate(prompt)
        assert got == expected, (text, tokenizer.decode(got), tokenizer.decode(expected))
        continuations.append(tokenizer.decode(got))
    assert continuations[0].startswith(" Paris"), continuations[0]
