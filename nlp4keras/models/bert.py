"""BERT (and RoBERTa, which shares its layout): post-LN Transformer encoder."""

import keras

from nlp4keras import validation as check
from nlp4keras.backend import get_activation
from nlp4keras.checkpoints.layout import CheckpointLayout, dense, norm, tensor
from nlp4keras.layers import (
    Add,
    BiasAdd,
    Embedding,
    PositionEmbedding,
    TakeToken,
)
from nlp4keras.models.transformer import Transformer


def bert_block_layout(google, hf, part="MultiHeadSelfAttention", bias=True, norms=True):
    """One BERT-style block: Google scope `google` ('bert/encoder/layer_{i}/'),
    HF scope `hf` ('encoder.layer.{i}.'; None: no HF names)."""

    def at(suffix):
        return None if hf is None else hf + suffix

    attention = []
    for projection in ("query", "key", "value"):
        attention += dense(
            google + "attention/self/" + projection, at("attention.self." + projection), bias
        )
    attention += dense(google + "attention/output/dense", at("attention.output.dense"), bias)
    layers = {
        f"Transformer-{{i}}-{part}": attention,
        "Transformer-{i}-FeedForward": dense(
            google + "intermediate/dense", at("intermediate.dense"), bias
        )
        + dense(google + "output/dense", at("output.dense"), bias),
    }
    if norms:
        layers[f"Transformer-{{i}}-{part}-Norm"] = norm(
            google + "attention/output/LayerNorm", at("attention.output.LayerNorm")
        )
        layers["Transformer-{i}-FeedForward-Norm"] = norm(
            google + "output/LayerNorm", at("output.LayerNorm")
        )
    return layers


def bert_embeddings_layout(root="bert", hf=True, positions=True, norms=True, bias=True):
    """Token, segment (and position) tables, embedding norm and mapping."""
    h = (lambda name: name) if hf else (lambda name: None)
    layers = {
        "Embedding-Token": tensor(
            root + "/embeddings/word_embeddings", h("embeddings.word_embeddings.weight"), vocab=True
        ),
        "Embedding-Segment": tensor(
            root + "/embeddings/token_type_embeddings", h("embeddings.token_type_embeddings.weight")
        ),
        "Embedding-Mapping": dense(root + "/encoder/embedding_hidden_mapping_in", bias=bias),
    }
    if positions:
        layers["Embedding-Position"] = tensor(
            root + "/embeddings/position_embeddings", h("embeddings.position_embeddings.weight")
        )
    if norms:
        layers["Embedding-Norm"] = norm(root + "/embeddings/LayerNorm", h("embeddings.LayerNorm"))
    return layers


def bert_heads_layout(hf=True):
    """Pooler (base), NSP and MLM heads with Google's `cls/` names; HF's
    `cls.` and RoBERTa's `lm_head.` names."""
    h = (lambda *names: names) if hf else (lambda *names: None)
    base = {"Pooler-Dense": dense("bert/pooler/dense", h("pooler.dense"))}
    heads = {
        "NSP-Proba": tensor(
            "cls/seq_relationship/output_weights",
            h("cls.seq_relationship.weight"),
            transposed=True,
        )
        + tensor("cls/seq_relationship/output_bias", h("cls.seq_relationship.bias")),
        "MLM-Dense": dense(
            "cls/predictions/transform/dense", h("cls.predictions.transform.dense", "lm_head.dense")
        ),
        "MLM-Norm": norm(
            "cls/predictions/transform/LayerNorm",
            h("cls.predictions.transform.LayerNorm", "lm_head.layer_norm"),
        ),
        "MLM-Bias": tensor(
            "cls/predictions/output_bias",
            h(
                "cls.predictions.bias",
                "cls.predictions.decoder.bias",
                "lm_head.bias",
                "lm_head.decoder.bias",
            ),
            vocab=True,
        ),
    }
    return base, heads


def _bert_layout():
    base, heads = bert_heads_layout()
    return CheckpointLayout(
        layers={
            **bert_embeddings_layout(),
            **bert_block_layout("bert/encoder/layer_{i}/", "encoder.layer.{i}."),
            **base,
        },
        heads=heads,
        # Buffers and the decoder matrix tied to the word embeddings.
        ignored=[
            "embeddings.position_ids",
            "embeddings.token_type_ids",
            "cls.predictions.decoder.weight",
            "lm_head.decoder.weight",
        ],
        base_prefixes=("bert.", "roberta."),
    )


BERT_LAYOUT = _bert_layout()
HF_BERT_NAMING = BERT_LAYOUT.naming


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

    layout = BERT_LAYOUT
    core_scopes = ("bert/embeddings/", "bert/encoder/")
    #: learned absolute positions in the embeddings (NEZHA, RoFormer: none)
    absolute_positions = True
    family = "bert"
    hf_model_types = ("bert", "roberta", "xlm-roberta", "camembert")
    #: the HF class save_weights_as_hf names in config.json
    hf_architecture = "BertForPreTraining"
    #: with_pool / with_nsp are refused where False (ELECTRA, RoFormerV2)
    has_pooler = True

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
        if not self.has_pooler and (with_pool or with_nsp):
            raise ValueError(f"{who} has no pooler: with_pool / with_nsp are not supported")
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

    def apply_embeddings(self, inputs):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        x = inputs.pop(0)
        segments = inputs.pop(0) if self.segment_vocab_size > 0 else None
        positions = inputs.pop(0) if self.custom_position_ids else None
        x = self.token_embedding(x)
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
        if self.absolute_positions:
            x = self.apply_position_embeddings(x, positions)
        x = self.layer_norm(x, "Embedding-Norm")
        x = self.apply(
            inputs=x, layer=keras.layers.Dropout, rate=self.dropout_rate, name="Embedding-Dropout"
        )
        return self.apply_embedding_mapping(x)

    def apply_embedding_mapping(self, x):
        """Dense to hidden_size when embedding_size differs (ALBERT, ELECTRA)."""
        if self.embedding_size == self.hidden_size:
            return x
        return self.apply(
            inputs=x,
            layer=keras.layers.Dense,
            units=self.hidden_size,
            use_bias=self.use_bias,
            kernel_initializer=self.initializer,
            name="Embedding-Mapping",
        )

    def apply_position_embeddings(self, x, positions):
        return self.apply(
            inputs=self.simplify([x, positions]),
            arguments=self.cached_positions(),
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

    def apply_final_layers(self, inputs):
        outputs = self.apply_heads(inputs)
        # bert4keras: the sequence output is dropped once a head exists.
        if not outputs:
            return inputs
        return outputs[0] if len(outputs) == 1 else outputs

    def apply_heads(self, x):
        """The heads' outputs, in bert4keras' order (pooler/NSP, then MLM)."""
        outputs = []
        if self.with_pool:
            outputs.append(self.apply_pooler(x))
        if self.with_mlm:
            outputs.append(self.apply_mlm_head(x))
        return outputs

    def apply_pooler(self, x):
        x = self.apply(inputs=x, layer=TakeToken, index=0, name="Pooler")
        activation = "tanh" if self.with_pool is True else self.with_pool
        x = self.apply(
            inputs=x,
            layer=keras.layers.Dense,
            units=self.hidden_size,
            activation=get_activation(activation),
            kernel_initializer=self.initializer,
            name="Pooler-Dense",
        )
        if not self.with_nsp:
            return x
        return self.apply(
            inputs=x,
            layer=keras.layers.Dense,
            units=2,
            activation="softmax",
            kernel_initializer=self.initializer,
            dtype="float32",  # probabilities in float32 under mixed precision
            name="NSP-Proba",
        )

    def apply_mlm_head(self, x):
        """Dense + norm, the decoder tied to the token embeddings, a bias."""
        x = self.apply(
            inputs=x,
            layer=keras.layers.Dense,
            units=self.embedding_size,
            activation=get_activation(self.mlm_activation()),
            kernel_initializer=self.initializer,
            name="MLM-Dense",
        )
        x = self.layer_norm(x, "MLM-Norm")
        x = self.tied_logits(x)
        x = self.apply(inputs=x, layer=BiasAdd, name="MLM-Bias")
        return self.vocab_activation(x, self.with_mlm, "MLM-Activation")

    def mlm_activation(self):
        """The MLM head's dense activation."""
        return self.hidden_act

    def vocab_activation(self, x, option, name):
        """softmax (option True) or the named activation, in float32."""
        return self.lm_activation(x, "softmax" if option is True else option, name)

    def hf_config(self):
        """config.json for HF's BertModel / BertForPreTraining."""
        return {
            "model_type": self.hf_model_types[0],
            "architectures": [self.hf_architecture],
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "hidden_dropout_prob": self.dropout_rate or 0.0,
            "attention_probs_dropout_prob": self.attention_dropout_rate or 0.0,
            "max_position_embeddings": getattr(self, "max_position", 512),
            "type_vocab_size": self.segment_vocab_size,
            "layer_norm_eps": self.layer_norm_eps,
            "initializer_range": self.initializer_range,
            "pad_token_id": self.pad_token_id,
        }
