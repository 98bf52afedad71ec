"""Cached, batched generation for the decoder-only families (gpt, gpt2,
gpt2_ml, llama): the prompt is run once, then each step feeds one token per
row through the decoding graph (models/cache_graph.py) against per-layer
key/value caches, instead of recomputing the whole prefix as bert4keras'
`AutoRegressiveDecoder` does.

    transformer = build_transformer_model(checkpoint_path='model.gguf', model='llama',
                                          return_keras_model=False)
    generator = CachedGenerator(transformer)
    outputs = generator.generate([prompt_ids, other_prompt_ids], max_new_tokens=32, end_id=2)

Prompts of different lengths run together: they are left-padded to a common
length (rounded up to a bucket, so JAX compiles a few shapes) and every row
writes its new token to the same cache slot; padded slots are masked and
each row counts its positions from its own first token. The caches stay on
the device (JAX: one jitted function per shape; torch: no_grad calls;
TensorFlow: a tf.function), only the next-token scores come back to the host.
"""

import keras
import numpy as np

from nlp4keras import validation
from nlp4keras.models.decoder import LanguageModel
from nlp4keras.snippets.arrays import softmax
from nlp4keras.snippets.decoding import _uniform_source, sample_tokens
from nlp4keras.snippets.last_token import MIN_LENGTH_BUCKET, bucket


class CachedGenerator:
    """Greedy or sampled generation with a key/value cache for a decoder-only
    `Transformer` (built with `return_keras_model=False`)."""

    def __init__(self, transformer):
        who = "CachedGenerator"
        if not isinstance(transformer, LanguageModel):
            validation.instance(
                transformer, "transformer", (), who,
                what="a decoder-only Transformer (gpt, gpt2, gpt2_ml, llama) built with "
                "return_keras_model=False",
            )  # fmt: skip
        self.transformer = transformer
        self.model = transformer.build_cache_model()
        self.max_position = transformer.max_position
        self._run = _runner(self.model)
        self._probabilities = transformer.final_activation == "softmax"

    def generate(
        self,
        prompts,
        max_new_tokens,
        end_id=None,
        sample=False,
        topk=None,
        topp=None,
        temperature=1.0,
        seed=None,
    ):
        """The new tokens of each prompt (a list of int lists), at most
        `max_new_tokens` each; a row stops after emitting `end_id`. Greedy
        (the most probable token) unless `sample=True`: then drawn at
        `temperature` among the `topk` / nucleus `topp` tokens, from a
        generator seeded with `seed` (see AutoRegressiveDecoder.random_sample)."""
        who = "CachedGenerator.generate"
        prompts = _prompts(prompts, self.transformer.vocab_size, who)
        max_new_tokens = validation.integer(max_new_tokens, "max_new_tokens", who, minimum=1)
        end_id = validation.optional_integer(end_id, "end_id", who, minimum=0)
        sample = validation.boolean(sample, "sample", who)
        topk = validation.optional_integer(topk, "topk", who, minimum=1)
        if topp is not None:
            topp = validation.real(topp, "topp", who, minimum=0, maximum=1)
        temperature = validation.real(temperature, "temperature", who, above=0)
        uniform = _uniform_source(seed, who) if sample else None
        lengths = np.array([len(p) for p in prompts])
        longest = int(lengths.max()) + max_new_tokens
        if self.max_position is not None and longest > self.max_position:
            raise ValueError(
                f"{who}: a prompt of {longest - max_new_tokens} tokens plus {max_new_tokens} new "
                f"ones needs {longest} positions; the model has {self.max_position}"
            )

        rows, prompt_length = len(prompts), bucket(int(lengths.max()), MIN_LENGTH_BUCKET)
        length = bucket(prompt_length + max_new_tokens, MIN_LENGTH_BUCKET)
        token_ids = np.zeros((rows, prompt_length), "int32")
        key_mask = np.zeros((rows, length), "int32")
        for row, prompt in enumerate(prompts):
            token_ids[row, prompt_length - len(prompt) :] = prompt
            key_mask[row, prompt_length - len(prompt) : prompt_length] = 1
        pad_id = self.transformer.pad_token_id  # masked as in the model (None: no id is)
        if pad_id is not None:
            key_mask[:, :prompt_length] &= token_ids != pad_id
        slots = np.tile(np.arange(prompt_length, dtype="int32"), (rows, 1))
        positions = np.maximum(slots - (prompt_length - lengths)[:, None], 0).astype("int32")
        caches = self._empty_caches(rows, length)

        outputs = [[] for _ in prompts]
        running = np.ones(rows, bool)
        for step in range(max_new_tokens):
            scores, caches = self._step(token_ids, positions, slots, key_mask, caches)
            next_ids = self._choose(scores, sample, topk, topp, temperature, uniform)
            for row in np.flatnonzero(running):
                outputs[row].append(int(next_ids[row]))
            running &= next_ids != (-1 if end_id is None else end_id)
            if not running.any() or step == max_new_tokens - 1:
                break
            slot = prompt_length + step
            token_ids = next_ids[:, None].astype("int32")
            positions = (lengths + step)[:, None].astype("int32")
            slots = np.full((rows, 1), slot, "int32")
            key_mask[:, slot] = 1 if pad_id is None else next_ids != pad_id
        return outputs

    # ------------------------------------------------------------------ internals

    def _empty_caches(self, rows, length):
        """Zeros for every cache input of the decoding graph (those after the first 4)."""
        return [
            keras.ops.zeros((rows, length) + tuple(cache.shape[2:]), cache.dtype)
            for cache in self.model.inputs[4:]
        ]

    def _step(self, token_ids, positions, slots, key_mask, caches):
        arrays = [keras.ops.convert_to_tensor(a) for a in (token_ids, positions, slots, key_mask)]
        outputs = self._run(arrays + list(caches))
        scores = np.asarray(keras.ops.convert_to_numpy(outputs[0][:, -1]), "float64")
        return scores, outputs[1:]

    def _choose(self, scores, sample, topk, topp, temperature, uniform):
        if not sample:
            return scores.argmax(axis=1)
        if self._probabilities:
            probas = np.power(scores, 1.0 / temperature)
        else:
            probas = softmax(scores / temperature)
        probas = probas / probas.sum(axis=1, keepdims=True)
        return sample_tokens(probas, topk, topp, uniform)


def _prompts(prompts, vocab_size, who):
    if isinstance(prompts, np.ndarray) and prompts.ndim == 2:
        prompts = prompts.tolist()
    if not isinstance(prompts, (list, tuple)) or not prompts:
        validation.instance(prompts, "prompts", (), who, what="a non-empty list of token id lists")
    checked = []
    for index, prompt in enumerate(prompts):
        array = np.asarray(prompt)
        if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
            raise ValueError(
                f"{who}: `prompts[{index}]` must be a non-empty list of token ids, "
                f"got {prompt!r:.80}"
            )
        if array.min() < 0 or array.max() >= vocab_size:
            raise ValueError(
                f"{who}: `prompts[{index}]` holds ids outside the vocab of {vocab_size} tokens"
            )
        checked.append([int(i) for i in array])
    return checked


def _runner(model):
    """A function: list of input arrays -> list of backend tensors, the caches
    kept on the device."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        @jax.jit
        def run(trainable, non_trainable, inputs):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            return outputs

        def call(inputs):
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return run(trainable, non_trainable, inputs)

        return call
    if backend == "torch":
        import torch

        def call(inputs):
            with torch.no_grad():
                return model(inputs, training=False)

        return call
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
    return lambda inputs: model(inputs, training=False)
