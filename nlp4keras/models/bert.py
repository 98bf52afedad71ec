"""BERT (and RoBERTa, which shares its layout): post-LN Transformer encoder."""

import keras

from nlp4keras import validation as check
from nlp4keras.backend import get_activation
from nlp4keras.checkpoints.hf_names import DENSE, NORM, NamingRules
from nlp4keras.layers import (
    Add,
    BiasAdd,
    Embedding,
    FeedForward,
    LayerNormalization,
    MultiHeadAttention,
    PositionEmbedding,
    TakeToken,
)
from nlp4keras.models.transformer import Transformer

_LAYER = "encoder.layer.{i:int}."
_GOOGLE_LAYER = "bert/encoder/layer_{i:int}/"

HF_BERT_NAMING = NamingRules(
    base=[
        ("embeddings.word_embeddings.weight", "bert/embeddings/word_embeddings"),
        ("embeddings.token_type_embeddings.weight", "bert/embeddings/token_type_embeddings"),
        ("embeddings.position_embeddings.weight", "bert/embeddings/position_embeddings"),
        ("embeddings.LayerNorm.{p}", "bert/embeddings/LayerNorm/{p}", NORM),
        (
            _LAYER + "attention.self.{m:query|key|value}.{p}",
            _GOOGLE_LAYER + "attention/self/{m:query|key|value}/{p}",
            DENSE,
        ),
        (
            _LAYER + "attention.output.dense.{p}",
            _GOOGLE_LAYER + "attention/output/dense/{p}",
            DENSE,
        ),
        (
            _LAYER + "attention.output.LayerNorm.{p}",
            _GOOGLE_LAYER + "attention/output/LayerNorm/{p}",
            NORM,
        ),
        (_LAYER + "intermediate.dense.{p}", _GOOGLE_LAYER + "intermediate/dense/{p}", DENSE),
        (_LAYER + "output.dense.{p}", _GOOGLE_LAYER + "output/dense/{p}", DENSE),
        (_LAYER + "output.LayerNorm.{p}", _GOOGLE_LAYER + "output/LayerNorm/{p}", NORM),
        ("pooler.dense.{p}", "bert/pooler/dense/{p}", DENSE),
    ],
    heads=[
        ("cls.predictions.transform.dense.{p}", "cls/predictions/transform/dense/{p}", DENSE),
        (
            "cls.predictions.transform.LayerNorm.{p}",
            "cls/predictions/transform/LayerNorm/{p}",
            NORM,
        ),
        ("cls.predictions.bias", "cls/predictions/output_bias"),
        ("cls.predictions.decoder.bias", "cls/predictions/output_bias"),
        ("cls.seq_relationship.weight", "cls/seq_relationship/output_weights"),
        ("cls.seq_relationship.bias", "cls/seq_relationship/output_bias"),
        # RoBERTa names its MLM head lm_head.
        ("lm_head.dense.{p}", "cls/predictions/transform/dense/{p}", DENSE),
        ("lm_head.layer_norm.{p}", "cls/predictions/transform/LayerNorm/{p}", NORM),
        ("lm_head.bias", "cls/predictions/output_bias"),
        ("lm_head.decoder.bias", "cls/predictions/output_bias"),
    ],
    # Buffers and the decoder matrix tied to the word embeddings.
    ignored=[
        "embeddings.position_ids",
        "embeddings.token_type_ids",
        "cls.predictions.decoder.weight",
        "lm_head.decoder.weight",
    ],
    base_prefixes=("bert.", "roberta."),
)


def _head_option(value, name, who):
    """with_pool / with_mlm: False, True (the default activation) or an activation."""
    if isinstance(value, bool):
        return value
    return check.activation(value, name, who)


def _hierarchical(value, who):
    """hierarchical_position: None / False (off), True (alpha 0.4) or alpha in (0, 1)."""
    if value is None or isinstance(value, bool):
        return value
    return check.real(value, "hierarchical_position", who, above=0, below=1)


class BERT(Transformer):
    """BERT / RoBERTa.

    max_position: rows of the position table. segment_vocab_size: 0 removes
    the segment input. with_pool: True (tanh) or an activation name; with_nsp
    implies the pooler and adds the 2-way NSP softmax. with_mlm: True (softmax)
    or an activation name ('linear' gives logits); the decoder is tied to the
    token embeddings plus a bias. hierarchical_position: True or alpha, to go
    beyond max_position. custom_position_ids: adds an Input-Position.
    pad_token_id: the id masked as padding. position_offset: first position
    row (HF RoBERTa: pad_token_id + 1).
    """

    hf_naming = HF_BERT_NAMING
    core_scopes = ("bert/embeddings/", "bert/encoder/")
    family = "bert"
    hf_model_types = ("bert", "roberta", "xlm-roberta", "camembert")

    def __init__(
        self,
        max_position=512,
        segment_vocab_size=2,
        with_pool=False,
        with_nsp=False,
        with_mlm=False,
        hierarchical_position=None,
        custom_position_ids=False,
        pad_token_id=0,
        position_offset=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = type(self).__name__
        self.max_position = check.integer(max_position, "max_position", who, minimum=1)
        self.segment_vocab_size = (
            0
            if segment_vocab_size is None
            else check.integer(segment_vocab_size, "segment_vocab_size", who, minimum=0)
        )
        self.with_pool = _head_option(with_pool, "with_pool", who) or with_nsp
        self.with_nsp = check.boolean(with_nsp, "with_nsp", who)
        self.with_mlm = _head_option(with_mlm, "with_mlm", who)
        self.hierarchical_position = _hierarchical(hierarchical_position, who)
        self.custom_position_ids = check.boolean(custom_position_ids, "custom_position_ids", who)
        self.pad_token_id = check.optional_integer(
            pad_token_id, "pad_token_id", who, minimum=0, below=self.vocab_size
        )
        self.position_offset = check.integer(
            position_offset, "position_offset", who, minimum=0, below=self.max_position
        )

    def get_inputs(self):
        def int_input(name):
            return keras.Input(
                shape=(self.sequence_length,), dtype="int32", name=self.prefixed(name)
            )

        inputs = [int_input("Input-Token")]
        if self.segment_vocab_size > 0:
            inputs.append(int_input("Input-Segment"))
        if self.custom_position_ids:
            inputs.append(int_input("Input-Position"))
        return inputs

    def _layer_norm(self, x, name):
        cond, hidden_units, hidden_act = self.layer_norm_conds
        return self.apply(
            inputs=self.simplify([x, cond]),
            layer=LayerNormalization,
            conditional=cond is not None,
            hidden_units=hidden_units,
            hidden_activation=hidden_act,
            hidden_initializer=self.initializer,
            epsilon=self.layer_norm_eps,
            name=name,
        )

    def apply_embeddings(self, inputs):
        inputs = list(inputs)
        x = inputs.pop(0)
        segments = inputs.pop(0) if self.segment_vocab_size > 0 else None
        positions = inputs.pop(0) if self.custom_position_ids else None
        x = self.apply(
            inputs=x,
            layer=Embedding,
            input_dim=self.vocab_size,
            output_dim=self.embedding_size,
            embeddings_initializer=self.initializer,
            pad_token_id=self.pad_token_id,
            name="Embedding-Token",
        )
        if segments is not None:
            s = self.apply(
                inputs=segments,
                layer=Embedding,
                input_dim=self.segment_vocab_size,
                output_dim=self.embedding_size,
                embeddings_initializer=self.initializer,
                name="Embedding-Segment",
            )
            x = self.apply(inputs=[x, s], layer=Add, name="Embedding-Token-Segment")
        x = self.apply(
            inputs=self.simplify([x, positions]),
            layer=PositionEmbedding,
            input_dim=self.max_position,
            output_dim=self.embedding_size,
            merge_mode="add",
            hierarchical=self.hierarchical_position,
            embeddings_initializer=self.initializer,
            custom_position_ids=self.custom_position_ids,
            offset=self.position_offset,
            name="Embedding-Position",
        )
        x = self._layer_norm(x, "Embedding-Norm")
        x = self.apply(
            inputs=x, layer=keras.layers.Dropout, rate=self.dropout_rate, name="Embedding-Dropout"
        )
        if self.embedding_size != self.hidden_size:
            x = self.apply(
                inputs=x,
                layer=keras.layers.Dense,
                units=self.hidden_size,
                kernel_initializer=self.initializer,
                name="Embedding-Mapping",
            )
        return x

    def _residual(self, shortcut, x, name):
        """Post-LN residual: Dropout, Add, LayerNorm, with bert4keras names."""
        x = self.apply(
            inputs=x, layer=keras.layers.Dropout, rate=self.dropout_rate, name=f"{name}-Dropout"
        )
        x = self.apply(inputs=[shortcut, x], layer=Add, name=f"{name}-Add")
        return self._layer_norm(x, f"{name}-Norm")

    def apply_main_layers(self, inputs, index):
        attention_name = f"Transformer-{index}-MultiHeadSelfAttention"
        feed_forward_name = f"Transformer-{index}-FeedForward"
        attention_bias = self.compute_attention_bias(index)
        extras = [] if attention_bias is None else [attention_bias]
        x = self.apply(
            inputs=[inputs, inputs, inputs] + extras,
            layer=MultiHeadAttention,
            heads=self.num_attention_heads,
            head_size=self.attention_head_size,
            out_dim=self.hidden_size,
            key_size=self.attention_key_size,
            attention_dropout=self.attention_dropout_rate,
            kernel_initializer=self.initializer,
            name=attention_name,
        )
        x = self._residual(inputs, x, attention_name)
        y = self.apply(
            inputs=x,
            layer=FeedForward,
            units=self.intermediate_size,
            activation=self.hidden_act,
            kernel_initializer=self.initializer,
            name=feed_forward_name,
        )
        return self._residual(x, y, feed_forward_name)

    def apply_final_layers(self, inputs):
        outputs = [inputs]
        if self.with_pool:
            x = self.apply(inputs=inputs, layer=TakeToken, index=0, name="Pooler")
            activation = "tanh" if self.with_pool is True else self.with_pool
            x = self.apply(
                inputs=x,
                layer=keras.layers.Dense,
                units=self.hidden_size,
                activation=get_activation(activation),
                kernel_initializer=self.initializer,
                name="Pooler-Dense",
            )
            if self.with_nsp:
                x = self.apply(
                    inputs=x,
                    layer=keras.layers.Dense,
                    units=2,
                    activation="softmax",
                    kernel_initializer=self.initializer,
                    dtype="float32",  # probabilities in float32 under mixed precision
                    name="NSP-Proba",
                )
            outputs.append(x)
        if self.with_mlm:
            x = self.apply(
                inputs=inputs,
                layer=keras.layers.Dense,
                units=self.embedding_size,
                activation=get_activation(self.hidden_act),
                kernel_initializer=self.initializer,
                name="MLM-Dense",
            )
            x = self._layer_norm(x, "MLM-Norm")
            x = self.apply(
                inputs=x, layer=Embedding, arguments={"mode": "dense"}, name="Embedding-Token"
            )
            x = self.apply(inputs=x, layer=BiasAdd, name="MLM-Bias")
            activation = "softmax" if self.with_mlm is True else self.with_mlm
            x = self.apply(
                inputs=x,
                layer=keras.layers.Activation,
                activation=get_activation(activation),
                dtype="float32",  # softmax over the vocab in float32 under mixed precision
                name="MLM-Activation",
            )
            outputs.append(x)
        # bert4keras: the sequence output is dropped once a head exists.
        if len(outputs) == 1:
            return outputs[0]
        return outputs[1] if len(outputs) == 2 else outputs[1:]

    def load_variable(self, checkpoint, name):
        value = super().load_variable(checkpoint, name)
        if name in ("bert/embeddings/word_embeddings", "cls/predictions/output_bias"):
            return self.load_embeddings(value)
        if name == "cls/seq_relationship/output_weights":
            return value.T
        return value

    def save_variable(self, name, value):
        if name == "cls/seq_relationship/output_weights":
            return value.T
        return value

    def variable_mapping(self):
        def pair(prefix):
            return [prefix + "/kernel", prefix + "/bias"]

        def norm(prefix):
            return [prefix + "/beta", prefix + "/gamma"]

        mapping = {
            "Embedding-Token": ["bert/embeddings/word_embeddings"],
            "Embedding-Segment": ["bert/embeddings/token_type_embeddings"],
            "Embedding-Position": ["bert/embeddings/position_embeddings"],
            "Embedding-Norm": norm("bert/embeddings/LayerNorm"),
            "Embedding-Mapping": pair("bert/encoder/embedding_hidden_mapping_in"),
            "Pooler-Dense": pair("bert/pooler/dense"),
            "NSP-Proba": [
                "cls/seq_relationship/output_weights",
                "cls/seq_relationship/output_bias",
            ],
            "MLM-Dense": pair("cls/predictions/transform/dense"),
            "MLM-Norm": norm("cls/predictions/transform/LayerNorm"),
            "MLM-Bias": ["cls/predictions/output_bias"],
        }
        for i in range(self.num_hidden_layers):
            google = f"bert/encoder/layer_{i}/"
            mapping[f"Transformer-{i}-MultiHeadSelfAttention"] = (
                pair(google + "attention/self/query")
                + pair(google + "attention/self/key")
                + pair(google + "attention/self/value")
                + pair(google + "attention/output/dense")
            )
            mapping[f"Transformer-{i}-MultiHeadSelfAttention-Norm"] = norm(
                google + "attention/output/LayerNorm"
            )
            mapping[f"Transformer-{i}-FeedForward"] = pair(google + "intermediate/dense") + pair(
                google + "output/dense"
            )
            mapping[f"Transformer-{i}-FeedForward-Norm"] = norm(google + "output/LayerNorm")
        return mapping
