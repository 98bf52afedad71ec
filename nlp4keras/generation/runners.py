"""Running a decoding graph on each backend: one call per step (caches kept
on the device, only the last position's scores returned), and on JAX a
whole greedy decode compiled as one `while_loop`."""

import keras
import numpy as np

from nlp4keras.generation.prompts import next_step_inputs
from nlp4keras.generation.scores import mark_seen


def step_runner(model):
    """`run(arrays, caches) -> (scores at the last position, new caches)`:
    arrays are the token/position/slot/mask (and segment) inputs, caches the rest."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        # the caches are donated: the step writes them in place
        step = jax.jit(_stateless_step(model), donate_argnums=(2,))
        return lambda arrays, caches: step(_values(model), arrays, list(caches))
    if backend == "torch":
        import torch

        call = _direct_call(model) or (lambda inputs: model(inputs, training=False))

        def run(arrays, caches):
            with torch.no_grad():
                outputs = call([keras.ops.convert_to_tensor(a) for a in arrays] + list(caches))
            return outputs[0][:, -1], outputs[1:]

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def run_graph(inputs):
            outputs = model(inputs, training=False)
            return outputs[0][:, -1], outputs[1:]

        return lambda arrays, caches: run_graph(arrays + list(caches))
    raise NotImplementedError(f"cached decoding on the {backend!r} backend")


def _direct_call(model):
    """On torch, Keras' per-layer `__call__` (input checks, masks, autocast)
    costs more than a decode step's matmuls at batch 1: run the graph calling
    each layer's `call` directly (1.5x faster on SmolLM2). Only in float32,
    where there is nothing to cast, and where Keras' graph runner exists."""
    run_graph = getattr(model, "_run_through_graph", None)
    if run_graph is None or any(layer.dtype_policy.name != "float32" for layer in model.layers):
        return None

    def direct(op):
        return op.call if isinstance(op, keras.layers.Layer) else op

    return lambda inputs: run_graph(inputs, operation_fn=direct)


def _stateless_step(model):
    """JAX: `(variables, arrays, caches) -> (float32 scores at the last
    position, new caches)`, a pure function of the model's variables."""

    def step(variables, arrays, caches):
        outputs, _ = model.stateless_call(*variables, list(arrays) + list(caches), training=False)
        return outputs[0][:, -1].astype("float32"), list(outputs[1:])

    return step


def _values(model):
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
    )


class CompiledGreedy:
    """A greedy decode on JAX as one compiled function: the prompt, then a
    `lax.while_loop` of steps that ends when every row has stopped or
    `max_new_tokens` are out; the tokens come back once, [rows,
    max_new_tokens], -1 after a row's stop. Compiled once per shape and
    per set of rules (kept in `functions`)."""

    def __init__(self, model, pad_id):
        self.model, self.pad_id = model, pad_id
        self.functions = {}

    def __call__(self, batch, caches, seen, rules, max_new_tokens):
        key = (max_new_tokens, rules.key(), batch.new_segment)
        if key not in self.functions:
            self.functions[key] = self._compile(rules, max_new_tokens, batch.new_segment)
        lengths = batch.lengths.astype("int32")
        tokens = self.functions[key](
            _values(self.model), batch.first_inputs(), batch.statics, list(caches), seen, lengths
        )
        return np.asarray(tokens)

    def _compile(self, rules, max_new_tokens, new_segment):
        import jax
        import jax.numpy as jnp

        pad_id, forward = self.pad_id, _stateless_step(self.model)

        def choose(scores, seen, step):
            return jnp.argmax(rules.apply(jnp, scores, seen, step), axis=-1).astype("int32")

        def decode(variables, first_inputs, statics, caches, seen, lengths):
            prompt_length, key_mask = first_inputs[0].shape[1], first_inputs[3]
            scores, caches = forward(variables, list(first_inputs) + statics, caches)
            ids = choose(scores, seen, 0)
            rows = ids.shape[0]
            tokens = jnp.full((rows, max_new_tokens), -1, "int32").at[:, 0].set(ids)
            state = (jnp.int32(1), ids, caches, key_mask, mark_seen(jnp, seen, ids), tokens)
            state += (~rules.stops(jnp, ids),)

            def running(state):
                step, *_, alive = state
                return jnp.logical_and(step < max_new_tokens, jnp.any(alive))

            def next_token(state):
                step, ids, caches, key_mask, seen, tokens, alive = state
                arrays = next_step_inputs(  # the tokens chosen at the previous step
                    jnp, key_mask, ids, step - 1, lengths, prompt_length, pad_id, new_segment
                )
                key_mask = arrays[3]
                scores, caches = forward(variables, arrays + statics, caches)
                new = jnp.where(alive, choose(scores, seen, step), -1)
                tokens = tokens.at[:, step].set(new)
                alive = jnp.logical_and(alive, ~rules.stops(jnp, new))
                fed = jnp.maximum(new, 0)  # a stopped row's input does not matter
                return (step + 1, fed, caches, key_mask, mark_seen(jnp, seen, new), tokens, alive)

            return jax.lax.while_loop(running, next_token, state)[5]

        return jax.jit(decode)
