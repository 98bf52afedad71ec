"""Decoder-only language models (GPT, GPT-2, GPT2-ML, Llama): token ids in,
the next-token distribution at every position out, causal attention.

Unlike bert4keras, the token embedding masks no padding id by default:
with causal attention, padding on the right cannot reach the real tokens,
and id 0 is a real token in GPT-2's and Llama's vocabularies (pass
pad_token_id to mask one)."""

import keras

from nlp4keras import validation as check
from nlp4keras.layers import PositionEmbedding
from nlp4keras.models.applications import LM_Mask
from nlp4keras.models.transformer import Transformer


class LanguageModel(LM_Mask, Transformer):
    """Base of the decoder-only families. Knobs: `absolute_positions`
    (learned position table `Embedding-Position`), `embedding_norm`
    (`Embedding-Norm` after the embeddings, GPT2-ML), and `norm_position`
    ('pre' adds `Output-Norm` after the last block). The head is the tied
    token embedding (`tie_word_embeddings=True`) or a Dense `Output-LM`,
    then `LM-Activation` (final_activation: 'softmax' as bert4keras, or
    'linear' for logits)."""

    absolute_positions = True
    embedding_norm = False
    # An HF config's pad_token_id names the id batches are padded with (often
    # the end token); transformers masks by attention_mask, not by id, and so
    # does this family unless pad_token_id is passed as an argument.
    file_config_ignored = ("pad_token_id",)

    def __init__(
        self,
        max_position=None,
        final_activation="softmax",
        tie_word_embeddings=True,
        pad_token_id=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = type(self).__name__
        self.max_position = check.optional_integer(max_position, "max_position", who, minimum=1)
        if self.absolute_positions and self.max_position is None:
            raise check.InvalidValue(
                f"{who} learns absolute positions: give max_position (the table's rows)",
                "max_position",
            )
        self.final_activation = check.activation(final_activation, "final_activation", who)
        self.tie_word_embeddings = check.boolean(tie_word_embeddings, "tie_word_embeddings", who)
        self.pad_token_id = check.optional_integer(
            pad_token_id, "pad_token_id", who, minimum=0, below=self.vocab_size
        )

    def get_inputs(self):
        return keras.Input(
            shape=(self.sequence_length,), dtype="int32", name=self.prefixed("Input-Token")
        )

    def apply_embeddings(self, inputs):
        x = self.token_embedding(inputs)
        if self.absolute_positions:
            x = self.apply(
                inputs=x,
                arguments=self.cached_positions(),
                layer=PositionEmbedding,
                input_dim=self.max_position,
                output_dim=self.embedding_size,
                merge_mode="add",
                embeddings_initializer=self.initializer,
                name="Embedding-Position",
            )
        if self.embedding_norm:
            x = self.layer_norm(x, "Embedding-Norm")
        x = self.apply(
            inputs=x, layer=keras.layers.Dropout, rate=self.dropout_rate, name="Embedding-Dropout"
        )
        if self.embedding_size != self.hidden_size:
            x = self.apply(
                inputs=x,
                layer=keras.layers.Dense,
                units=self.hidden_size,
                use_bias=self.use_bias,
                kernel_initializer=self.initializer,
                name="Embedding-Mapping",
            )
        return x

    def apply_final_layers(self, inputs):
        x = inputs
        if self.norm_position == "pre":
            x = self.layer_norm(x, "Output-Norm")
            x = self.apply(
                inputs=x, layer=keras.layers.Dropout, rate=self.dropout_rate, name="Output-Dropout"
            )
        x = self.lm_logits(x, self.tie_word_embeddings, "Output-LM")
        return self.lm_activation(x, self.final_activation, "LM-Activation")
