"""Cached, batched generation for the decoder-only families (gpt, gpt2,
gpt2_ml, llama), the lm / unilm applications of the encoder families (bert,
roberta, albert, nezha, roformer, roformer_v2) and T5 / mT5: the prompt is run
once, then each step feeds one token per row through the decoding graph
(models/cache_graph.py) against per-layer key/value caches, instead of
recomputing the whole prefix as bert4keras' `AutoRegressiveDecoder` does.

    transformer = build_transformer_model(checkpoint_path='model.gguf', model='llama',
                                          return_keras_model=False)
    generator = CachedGenerator(transformer)
    outputs = generator.generate([prompt_ids, other_prompt_ids], max_new_tokens=32, end_id=2)
    for tokens in generator.stream([prompt_ids], max_new_tokens=32, end_id=2):
        print(tokens[0])                  # each row's new token as it comes (None once stopped)
    best = generator.beam_search(prompt_ids, topk=4, max_new_tokens=32, end_id=2)

Prompts of different lengths run together (prompts.PromptBatch). For a
UniLM model the prompt is the source (segment 0, its tokens see each other)
and the new tokens are segment 1, as bert4keras' seq2seq examples decode.
For a T5 the prompts are the encoder's sources: encoded once, each
cross-attention layer's keys and values computed once (the batch's
statics); the decoder starts from `start_id` (0, T5's). The caches stay on
the device; greedy decoding on JAX runs as one compiled loop
(runners.CompiledGreedy), otherwise one call per step brings the last
position's scores to the host, where the rules (scores.ScoreRules) and the
choice (argmax, or sampling as AutoRegressiveDecoder.random_sample) apply.
"""

import keras
import numpy as np

from nlp4keras import validation
from nlp4keras.generation.prompts import PromptBatch, checked_prompts
from nlp4keras.generation.runners import CompiledGreedy, step_runner
from nlp4keras.generation.scores import ScoreRules, mark_seen
from nlp4keras.models.applications import LM_Mask, UniLM_Mask
from nlp4keras.models.cache_graph import build_cross_model
from nlp4keras.models.t5 import T5
from nlp4keras.snippets.arrays import softmax
from nlp4keras.snippets.decoding import AutoRegressiveDecoder, sample_tokens, uniform_source
from nlp4keras.snippets.last_token import MIN_LENGTH_BUCKET, bucket


class CachedGenerator:
    """Greedy, sampled or beam-search generation with a key/value cache for a
    language-model `Transformer` or a `T5` (built with
    `return_keras_model=False`); start_id: the first token of a T5's decoder
    (default 0, T5's; only for a T5)."""

    def __init__(self, transformer, start_id=None):
        who = "CachedGenerator"
        self._encoder = None  # T5: the encoder model; the prompts are its sources
        if isinstance(transformer, T5):
            self._encoder, transformer = transformer.encoder, transformer.decoder_stack
            self.start_id = validation.integer(
                0 if start_id is None else start_id, "start_id", who, minimum=0,
                below=transformer.vocab_size,
            )  # fmt: skip
        elif start_id is not None:
            raise ValueError(
                f"{who}: `start_id` is a T5 decoder's first token; a language model continues "
                "its prompts (put a start token in them)"
            )
        elif not isinstance(transformer, (LM_Mask, UniLM_Mask)):
            validation.instance(
                transformer, "transformer", (), who,
                what="a language model built with return_keras_model=False: a decoder family "
                "(gpt, gpt2, gpt2_ml, llama), an encoder with application='lm' or 'unilm', "
                "or a T5",
            )  # fmt: skip
        self.transformer = transformer
        self.model = transformer.build_cache_model()
        names = [i.name for i in self.model.inputs]
        self._cache_inputs = [i for i in self.model.inputs if i.name.endswith("-Cache")]
        if self._encoder is not None:
            self._cross_model = build_cross_model(transformer, self.model.cross_attention_names)
        has_segments = any(name.endswith("Input-Segment") for name in names)
        self._unilm = isinstance(transformer, UniLM_Mask)
        self._new_segment = (1 if self._unilm else 0) if has_segments else None
        self._step = step_runner(self.model)
        jax = keras.backend.backend() == "jax"
        self._compiled = CompiledGreedy(self.model, transformer.pad_token_id) if jax else None

    def generate(self, prompts, max_new_tokens, end_id=None, sample=False, topk=None, topp=None,
                 temperature=1.0, seed=None, repetition_penalty=1.0, min_new_tokens=0,
                 compiled=None):  # fmt: skip
        """The new tokens of each prompt (a list of int lists), at most
        `max_new_tokens` each. end_id: a token id or a list of them (stop
        tokens): a row stops after emitting one, never before
        `min_new_tokens` tokens. Greedy (the highest score) unless
        `sample=True`: then drawn at `temperature` among the `topk` / nucleus
        `topp` tokens, from a generator seeded with `seed` (see
        AutoRegressiveDecoder.random_sample). repetition_penalty (> 0, 1:
        none): tokens already in the prompt or the output have their logit
        divided by it when positive, multiplied when negative (as
        transformers). compiled: greedy decoding as one compiled loop (JAX
        only); None: whenever it can."""
        who = "CachedGenerator.generate"
        if compiled is not None:
            compiled = validation.boolean(compiled, "compiled", who)
        if compiled and (self._compiled is None or validation.boolean(sample, "sample", who)):
            raise ValueError(
                f"{who}: compiled=True runs greedy decoding on JAX only (backend: "
                f"{keras.backend.backend()}, sample={sample})"
            )
        prompts, batch, rules, choice = self._prepare(
            who, prompts, max_new_tokens, end_id, sample, topk, topp, temperature, seed,
            repetition_penalty, min_new_tokens,
        )  # fmt: skip
        if compiled is not False and self._compiled is not None and not sample:
            seen = rules.initial_seen(prompts)
            caches = self._empty_caches(batch)
            tokens = self._compiled(batch, caches, seen, rules, max_new_tokens)
            return [[int(i) for i in row if i >= 0] for row in tokens]
        outputs = [[] for _ in prompts]
        for step_ids in self._decode(prompts, batch, rules, choice):
            for row, token in enumerate(step_ids):
                if token is not None:
                    outputs[row].append(token)
        return outputs

    def stream(self, prompts, max_new_tokens, end_id=None, sample=False, topk=None, topp=None,
               temperature=1.0, seed=None, repetition_penalty=1.0, min_new_tokens=0):  # fmt: skip
        """What `generate` makes, step by step: an iterator that yields, once
        per step, a list with each row's new token (None for a row that has
        stopped). Arguments as `generate` (always one call per step)."""
        prepared = self._prepare(
            "CachedGenerator.stream", prompts, max_new_tokens, end_id, sample, topk, topp,
            temperature, seed, repetition_penalty, min_new_tokens,
        )  # fmt: skip
        return self._decode(*prepared)

    def beam_search(self, prompt, topk, max_new_tokens, end_id=None, min_ends=1, temperature=1.0,
                    repetition_penalty=1.0, min_new_tokens=0, length_penalty=None):  # fmt: skip
        """The best continuation of one prompt (a list of ids) by bert4keras'
        beam search (AutoRegressiveDecoder.beam_search: `topk` beams, the
        highest sum of log-probabilities, finished when it ends with `end_id`
        (one id) holding `min_ends` of them), each beam a row of the cache,
        reordered by its parent at every step. length_penalty: finished
        continuations compete across lengths by sum / length ** penalty, as
        transformers' `generate(num_beams=topk, length_penalty=...)`."""
        who = "CachedGenerator.beam_search"
        end_id = validation.optional_integer(end_id, "end_id", who, minimum=0)
        prompts, batch, rules, _ = self._prepare(
            who, [prompt], max_new_tokens, end_id, False, None, None, 1.0, None,
            repetition_penalty, min_new_tokens,
        )  # fmt: skip
        beams = _CachedBeams(self, prompts[0], batch, rules, end_id, max_new_tokens)
        best = beams.beam_search([prompts[0]], topk, None, temperature, min_ends, length_penalty)
        return [int(i) for i in best]

    # ------------------------------------------------------------------ internals

    def _prepare(self, who, prompts, max_new_tokens, end_id, sample, topk, topp, temperature,
                 seed, repetition_penalty, min_new_tokens):  # fmt: skip
        vocab = self.transformer.vocab_size
        prompts = checked_prompts(prompts, vocab, who)
        max_new_tokens = validation.integer(max_new_tokens, "max_new_tokens", who, minimum=1)
        stop_ids = _stop_ids(end_id, vocab, who)
        sample = validation.boolean(sample, "sample", who)
        topk = validation.optional_integer(topk, "topk", who, minimum=1)
        if topp is not None:
            topp = validation.real(topp, "topp", who, minimum=0, maximum=1)
        temperature = validation.real(temperature, "temperature", who, above=0)
        penalty = validation.real(repetition_penalty, "repetition_penalty", who, above=0)
        min_new_tokens = validation.integer(min_new_tokens, "min_new_tokens", who, minimum=0)
        uniform = uniform_source(seed, who) if sample else None
        statics = []
        if self._encoder is not None:  # T5: encode the sources once, decode from the start id
            statics = self._context_inputs(prompts)
            prompts = [[self.start_id] for _ in prompts]
        batch = PromptBatch(
            prompts, max_new_tokens, self.transformer.pad_token_id, self._max_positions(), who,
            bidirectional=self._unilm, new_segment=self._new_segment,
            unmask_first=self._encoder is not None, statics=statics,
        )  # fmt: skip
        rules = ScoreRules(vocab, stop_ids, min_new_tokens, penalty)
        choice = (sample, topk, topp, temperature, uniform, max_new_tokens)
        return prompts, batch, rules, choice

    def _max_positions(self):
        """The longest prompt + output the model's position table holds (None:
        no table, e.g. rotary or relative positions)."""
        t = self.transformer
        if not getattr(t, "absolute_positions", False):
            return None
        return t.layers[t.prefixed("Embedding-Position")].max_positions

    def _context_inputs(self, sources):
        """T5: [context mask, then each cross-attention layer's keys and values]
        of the sources, right-padded with the pad id (the encoder masks it
        except at position 0, as bert4keras')."""
        pad_id = self.transformer.pad_token_id or 0
        length = bucket(max(len(source) for source in sources), MIN_LENGTH_BUCKET)
        token_ids = np.full((len(sources), length), pad_id, "int32")
        for row, source in enumerate(sources):
            token_ids[row, : len(source)] = source
        mask = (token_ids != pad_id).astype("int32")
        mask[:, 0] = 1
        context = self._encoder.predict_on_batch(token_ids)
        keys_values = self._cross_model.predict_on_batch(context)
        return [keras.ops.convert_to_tensor(a) for a in [mask] + list(keys_values)]

    def _decode(self, prompts, batch, rules, choice):
        """Yields each step's tokens (None for the rows that have stopped)."""
        sample, topk, topp, temperature, uniform, max_new_tokens = choice
        seen = rules.initial_seen(prompts)
        arrays, caches = batch.first_inputs(), self._empty_caches(batch)
        running = np.ones(batch.rows, bool)
        for step in range(max_new_tokens):
            scores, caches = self._scores(arrays, caches, batch)
            scores = rules.apply(np, scores, seen, step)
            if sample:
                probas = softmax(scores / temperature)
                ids = sample_tokens(probas, topk, topp, uniform)
            else:
                ids = scores.argmax(axis=1)
            yield [int(i) if alive else None for i, alive in zip(ids, running, strict=True)]
            seen = mark_seen(np, seen, ids)
            running &= ~rules.stops(np, ids)
            if not running.any() or step == max_new_tokens - 1:
                return
            arrays = batch.next_inputs(step, ids)

    def _scores(self, arrays, caches, batch):
        arrays = [keras.ops.convert_to_tensor(a) for a in arrays] + batch.statics
        scores, caches = self._step(arrays, caches)
        return np.asarray(keras.ops.convert_to_numpy(scores), "float64"), caches

    def _empty_caches(self, batch):
        """Zeros for every cache input of the decoding graph."""
        return [
            keras.ops.zeros((batch.rows, batch.length) + tuple(cache.shape[2:]), cache.dtype)
            for cache in self._cache_inputs
        ]


def _stop_ids(end_id, vocab_size, who):
    """The stop ids of `end_id`: None, an id or a list of ids."""
    if end_id is None:
        return []
    ids = end_id if isinstance(end_id, (list, tuple, np.ndarray)) else [end_id]
    return [
        validation.integer(i, "end_id", who, minimum=0, below=vocab_size) for i in np.ravel(ids)
    ]


class _CachedBeams(AutoRegressiveDecoder):
    """bert4keras' beam search over the cache: predict feeds each beam's last
    token, select_rows reorders the caches (and masks) by parent beam."""

    def __init__(self, generator, prompt, batch, rules, end_id, max_new_tokens):
        super().__init__(start_id=None, end_id=end_id, maxlen=max_new_tokens)
        self.generator, self.batch, self.rules = generator, batch, rules
        self.seen = rules.initial_seen([prompt])
        self.caches = None

    @AutoRegressiveDecoder.wraps(default_rtype="logits")
    def predict(self, inputs, output_ids, states):
        step = output_ids.shape[1]
        if step == 0:
            arrays, self.caches = (
                self.batch.first_inputs(),
                self.generator._empty_caches(self.batch),
            )
        else:
            self.seen = mark_seen(np, self.seen, output_ids[:, -1])
            arrays = self.batch.next_inputs(step - 1, output_ids[:, -1])
        scores, self.caches = self.generator._scores(arrays, self.caches, self.batch)
        return self.rules.apply(np, scores, self.seen, step)

    def select_rows(self, rows):
        self.batch.select(rows)
        self.seen = self.seen[rows]
        indices = keras.ops.convert_to_tensor(np.asarray(rows, "int32"))
        self.caches = [keras.ops.take(cache, indices, axis=0) for cache in self.caches]
