"""Token and position embeddings."""

import keras
from keras import ops

from nlp4keras import validation as check
from nlp4keras.layers.base import Layer, first_mask, serializable
from nlp4keras.tensor_checks import check_range


def lookup(table, ids, owner):
    """Rows of `table` for integer `ids`, each checked to be in [0, rows) on
    every backend, inside compiled code too (nlp4keras.tensor_checks). With
    the checks turned off, a negative id is never wrapped around: like an id
    >= rows it raises on torch and TensorFlow's CPU, and gives a NaN row
    from a jitted JAX lookup."""
    ids = ops.cast(ids, "int32")
    rows = table.shape[0]
    message = f"{owner}: ids must be in [0, {rows}), got one outside"
    ids = check_range(ids, 0, rows, message)
    ids = ops.where(ids < 0, rows, ids)
    try:
        return ops.take(table, ids, axis=0)
    except IndexError as error:
        raise ValueError(message) from error


@serializable
class Embedding(Layer):
    """Token embedding whose matrix doubles as the tied output projection.

    `call(ids)` looks rows up; `call(hidden, mode='dense')` multiplies by the
    transposed matrix (the MLM / LM head of BERT-style models). Positions
    holding `pad_token_id` are masked (`mask_zero=True` means pad_token_id=0);
    with neither, no mask is produced. With `unmask_first`, position 0 is
    never masked (T5: the decoder starts with id 0, which is also the pad id;
    bert4keras' Embedding never masked position 0).
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        mask_zero=False,
        pad_token_id=None,
        unmask_first=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = f"Embedding {self.name!r}"
        self.unmask_first = check.boolean(unmask_first, "unmask_first", who)
        self.input_dim = check.integer(input_dim, "input_dim", who, minimum=1)
        self.output_dim = check.integer(output_dim, "output_dim", who, minimum=1)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        if pad_token_id is None and check.boolean(mask_zero, "mask_zero", who):
            pad_token_id = 0
        self.pad_token_id = check.optional_integer(
            pad_token_id, "pad_token_id", who, minimum=0, below=self.input_dim
        )

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
        )

    def call(self, inputs, mode="embedding"):
        if mode == "embedding":
            return lookup(self.embeddings, inputs, self.name)
        if mode == "dense":
            return ops.matmul(inputs, ops.transpose(ops.cast(self.embeddings, inputs.dtype)))
        raise ValueError(f"Embedding mode must be 'embedding' or 'dense', got {mode!r}")

    def compute_mask(self, inputs, mask=None):
        # Float input means the tied head (mode='dense'): keep the incoming mask.
        if "float" in str(inputs.dtype):
            return mask
        if self.pad_token_id is None:
            return None
        mask = ops.not_equal(inputs, self.pad_token_id)
        if self.unmask_first:
            first = ops.ones_like(mask[:, :1])
            mask = ops.concatenate([first, mask[:, 1:]], axis=1)
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            pad_token_id=self.pad_token_id,
            unmask_first=self.unmask_first,
        )
        return config


MERGE_MODES = ("add", "mul", "zero", "concat")


@serializable
class PositionEmbedding(Layer):
    """Learned absolute position embeddings.

    merge_mode: 'add' (x + p), 'mul' (x * (1 + p)), 'zero' (p only) or 'concat'.
    hierarchical: None, True (alpha 0.4) or a float alpha. Extends a table of
        n positions to n*n positions: position i*n + j gets
        alpha * u[i] + (1 - alpha) * u[j] with u = (p - alpha * p[0]) / (1 - alpha),
        which leaves the first n positions unchanged.
    custom_position_ids: the layer takes [x, position_ids] instead of x.
        (A `position_ids` call argument does the same for one call: the
        decoding graph gives the positions of the new tokens that way.)
    offset: HF RoBERTa's convention: rows start at `offset` (pad id + 1) and
        only real tokens are counted (from the Keras mask of x), so left or
        middle padding shifts no position.
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        merge_mode="add",
        hierarchical=None,
        embeddings_initializer="zeros",
        custom_position_ids=False,
        offset=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = f"PositionEmbedding {self.name!r}"
        self.merge_mode = check.one_of(merge_mode, "merge_mode", MERGE_MODES, who)
        self.input_dim = check.integer(input_dim, "input_dim", who, minimum=1)
        self.output_dim = check.integer(output_dim, "output_dim", who, minimum=1)
        if hierarchical is not None and not isinstance(hierarchical, bool):
            # alpha = 1 would divide by zero; outside (0, 1) the table is not extended sensibly
            hierarchical = check.real(hierarchical, "hierarchical", who, above=0, below=1)
        self.hierarchical = hierarchical
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.custom_position_ids = check.boolean(custom_position_ids, "custom_position_ids", who)
        self.offset = check.integer(offset, "offset", who, minimum=0, below=self.input_dim)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
        )

    @property
    def max_positions(self):
        rows = self.input_dim - self.offset
        return rows**2 if self.hierarchical else rows

    def call(self, inputs, mask=None, position_ids=None):
        if self.custom_position_ids:
            inputs, position_ids = inputs
        mask = first_mask(mask)
        if self.offset and position_ids is None and mask is not None:
            real = ops.cast(mask, "int32")
            position_ids = (ops.cumsum(real, axis=1) - 1) * real
        seq_len = ops.shape(inputs)[1]
        if isinstance(seq_len, int) and position_ids is None and seq_len > self.max_positions:
            raise ValueError(
                f"{self.name}: sequence length {seq_len} exceeds the {self.max_positions} "
                "positions this model was built with (max_position)"
            )
        embeddings = ops.cast(self.embeddings, inputs.dtype)
        if self.offset:
            embeddings = embeddings[self.offset :]
        if self.hierarchical:
            positions = (
                position_ids
                if position_ids is not None
                else ops.expand_dims(ops.arange(seq_len, dtype="int32"), 0)
            )
            rows = self.input_dim - self.offset
            alpha = 0.4 if self.hierarchical is True else float(self.hierarchical)
            basis = (embeddings - alpha * embeddings[:1]) / (1.0 - alpha)
            positions = ops.cast(positions, "int32")
            coarse = lookup(basis, positions // rows, self.name)
            fine = lookup(basis, positions % rows, self.name)
            positions_emb = alpha * coarse + (1.0 - alpha) * fine
        elif position_ids is not None:
            positions_emb = lookup(embeddings, position_ids, self.name)
        else:
            positions_emb = ops.expand_dims(embeddings[:seq_len], 0)
        return self._merge(inputs, positions_emb)

    def _merge(self, inputs, positions_emb):
        if self.merge_mode == "add":
            return inputs + positions_emb
        if self.merge_mode == "mul":
            return inputs * (positions_emb + 1.0)
        if self.merge_mode == "zero":
            return ops.broadcast_to(positions_emb, ops.shape(inputs)[:2] + (self.output_dim,))
        positions_emb = ops.broadcast_to(positions_emb, ops.shape(inputs)[:2] + (self.output_dim,))
        return ops.concatenate([inputs, positions_emb], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return first_mask(mask)

    def compute_output_shape(self, input_shape):
        if self.custom_position_ids:
            input_shape = input_shape[0]
        if self.merge_mode == "concat":
            return tuple(input_shape[:-1]) + (input_shape[-1] + self.output_dim,)
        if self.merge_mode == "zero":
            return tuple(input_shape[:-1]) + (self.output_dim,)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            merge_mode=self.merge_mode,
            hierarchical=self.hierarchical,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            custom_position_ids=self.custom_position_ids,
            offset=self.offset,
        )
        return config
