"""Prompts checked and packed for cached decoding: left-padded to one length
(rounded up to a bucket, so JAX compiles a few shapes), every row writing
its next token to the same cache slot, each counting positions from its own
first token."""

import keras
import numpy as np

from nlp4keras import validation
from nlp4keras.snippets.last_token import MIN_LENGTH_BUCKET, bucket


def checked_prompts(prompts, vocab_size, who):
    """`prompts` as a list of int lists, or a clear error."""
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


class PromptBatch:
    """The first decoding call's inputs for `prompts`, and the next ones'.

    token_ids / positions / slots [rows, prompt_length], key_mask [rows,
    length] (length: room for the prompt and `max_new_tokens`). A slot of
    the pad id (if the model masks one) stays masked, as in the model.
    bidirectional: the prompt tokens see each other (UniLM's source).
    new_segment: the segment id of the new tokens (None: the model takes no
    segment ids; the prompt's are 0). unmask_first: a prompt's first token
    is never masked as padding (T5's decoder starts with the pad id).
    statics: inputs the same at every step, after the others (T5's
    context mask and projected context), reordered with the rows."""

    def __init__(self, prompts, max_new_tokens, pad_id, max_position, who, bidirectional=False,
                 new_segment=None, unmask_first=False, statics=()):  # fmt: skip
        self.lengths = np.array([len(p) for p in prompts])
        longest = int(self.lengths.max()) + max_new_tokens
        if max_position is not None and longest > max_position:
            raise ValueError(
                f"{who}: a prompt of {longest - max_new_tokens} tokens plus {max_new_tokens} new "
                f"ones needs {longest} positions; the model has {max_position}"
            )
        self.rows, self.pad_id, self.new_segment = len(prompts), pad_id, new_segment
        self.prompt_length = bucket(int(self.lengths.max()), MIN_LENGTH_BUCKET)
        self.length = bucket(self.prompt_length + max_new_tokens, MIN_LENGTH_BUCKET)
        self.token_ids = np.zeros((self.rows, self.prompt_length), "int32")
        self.key_mask = np.zeros((self.rows, self.length), "int32")
        for row, prompt in enumerate(prompts):
            self.token_ids[row, self.prompt_length - len(prompt) :] = prompt
            self.key_mask[row, self.prompt_length - len(prompt) : self.prompt_length] = (
                2 if bidirectional else 1
            )
        if pad_id is not None:
            self.key_mask[:, : self.prompt_length] *= self.token_ids != pad_id
        if unmask_first:
            self.key_mask[np.arange(self.rows), self.prompt_length - self.lengths] = 1
        self.statics = list(statics)
        self.slots = np.tile(np.arange(self.prompt_length, dtype="int32"), (self.rows, 1))
        padding = (self.prompt_length - self.lengths)[:, None]
        self.positions = np.maximum(self.slots - padding, 0).astype("int32")

    def first_inputs(self):
        inputs = [self.token_ids, self.positions, self.slots, self.key_mask]
        if self.new_segment is not None:
            inputs.append(np.zeros_like(self.token_ids))
        return inputs

    def next_inputs(self, step, next_ids):
        """The inputs that feed `next_ids` (the tokens chosen at `step`, from
        0); marks their slot in `key_mask`."""
        inputs = next_step_inputs(
            np, self.key_mask, np.asarray(next_ids, "int32"), step, self.lengths,
            self.prompt_length, self.pad_id, self.new_segment,
        )  # fmt: skip
        self.key_mask = inputs[3]
        return inputs

    def select(self, rows):
        """Keep `rows` (indices, repeats allowed) in this order: beams."""
        self.key_mask, self.lengths = self.key_mask[rows], self.lengths[rows]
        self.rows = len(rows)
        indices = keras.ops.convert_to_tensor(np.asarray(rows, "int32"))
        self.statics = [keras.ops.take(static, indices, axis=0) for static in self.statics]


def next_step_inputs(xp, key_mask, ids, step, lengths, prompt_length, pad_id, new_segment):
    """The decoding graph's inputs that feed `ids` [rows] (the tokens chosen
    at `step`, from 0) for prompts of `lengths` left-padded to
    `prompt_length`: [ids, positions, slots, key mask with their slot
    marked (unless the pad id), (segments)]. `xp`: numpy (host loop) or
    jax.numpy (the compiled loop; `step` may be traced)."""
    rows, slot = ids.shape[0], prompt_length + step
    real = xp.ones_like(ids) if pad_id is None else ids != pad_id
    column = xp.arange(key_mask.shape[1])[None, :] == slot
    key_mask = xp.where(column, real[:, None].astype(key_mask.dtype), key_mask)
    inputs = [ids[:, None].astype("int32"), (lengths + step)[:, None].astype("int32")]
    inputs += [xp.full((rows, 1), slot, "int32"), key_mask]
    if new_segment is not None:
        inputs.append(xp.full((rows, 1), new_segment, "int32"))
    return inputs
