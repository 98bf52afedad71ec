"""ALBERT: BERT with a factorised embedding (`Embedding-Mapping`) and one
block shared by every layer; `albert_unshared` loads the shared weights into
num_hidden_layers separate blocks (to fine-tune them apart)."""

from nlp4keras import validation as check
from nlp4keras.checkpoints.layout import CheckpointLayout, dense, norm, tensor
from nlp4keras.models.bert import BERT, bert_embeddings_layout

_GOOGLE = "bert/encoder/transformer/group_0/inner_group_0/"
_HF = "encoder.albert_layer_groups.0.albert_layers.0."


def albert_layout(block):
    """block: 'Transformer-' (shared) or 'Transformer-{i}-' (unshared)."""
    attention = []
    for projection in ("query", "key", "value"):
        attention += dense(
            _GOOGLE + "attention_1/self/" + projection, _HF + "attention." + projection
        )
    attention += dense(_GOOGLE + "attention_1/output/dense", _HF + "attention.dense")
    embeddings = bert_embeddings_layout()
    embeddings["Embedding-Mapping"] = dense(
        "bert/encoder/embedding_hidden_mapping_in", "encoder.embedding_hidden_mapping_in"
    )
    heads = {
        "NSP-Proba": tensor(
            "cls/seq_relationship/output_weights",
            "sop_classifier.classifier.weight",
            transposed=True,
        )
        + tensor("cls/seq_relationship/output_bias", "sop_classifier.classifier.bias"),
        "MLM-Dense": dense("cls/predictions/transform/dense", "predictions.dense"),
        "MLM-Norm": norm("cls/predictions/transform/LayerNorm", "predictions.LayerNorm"),
        "MLM-Bias": tensor("cls/predictions/output_bias", "predictions.bias", vocab=True),
    }
    return CheckpointLayout(
        layers={
            **embeddings,
            block + "MultiHeadSelfAttention": attention,
            block + "MultiHeadSelfAttention-Norm": norm(
                _GOOGLE + "LayerNorm", _HF + "attention.LayerNorm"
            ),
            block + "FeedForward": dense(_GOOGLE + "ffn_1/intermediate/dense", _HF + "ffn")
            + dense(_GOOGLE + "ffn_1/intermediate/output/dense", _HF + "ffn_output"),
            block + "FeedForward-Norm": norm(
                _GOOGLE + "LayerNorm_1", _HF + "full_layer_layer_norm"
            ),
            "Pooler-Dense": dense("bert/pooler/dense", "pooler"),
        },
        heads=heads,
        ignored=[
            "embeddings.position_ids",
            "embeddings.token_type_ids",
            "predictions.decoder.weight",
            "predictions.decoder.bias",
        ],
        base_prefixes=("albert.",),
    )


class ALBERT(BERT):
    """ALBERT (one shared block; Google `group_0/inner_group_0` names, HF
    `albert_layer_groups` names). Only one layer group is supported, as in
    every released ALBERT."""

    shared_blocks = True
    layout = albert_layout("Transformer-")
    family = "albert"
    hf_model_types = ("albert",)
    hf_architecture = "AlbertForPreTraining"

    def __init__(self, num_hidden_groups=1, inner_group_num=1, **kwargs):
        for name, value in (
            ("num_hidden_groups", num_hidden_groups),
            ("inner_group_num", inner_group_num),
        ):
            if check.integer(value, name, type(self).__name__, minimum=1) != 1:
                raise NotImplementedError(
                    f"{type(self).__name__}: {name}={value} is not supported (only 1, as in the "
                    "released ALBERT checkpoints)"
                )
        super().__init__(**kwargs)

    def hf_config(self):
        return {**super().hf_config(), "embedding_size": self.embedding_size}


class ALBERT_Unshared(ALBERT):
    """ALBERT's checkpoint in num_hidden_layers separate blocks."""

    shared_blocks = False
    layout = albert_layout("Transformer-{i}-")
    family = "albert_unshared"

    def save_weights_as_hf(self, folder, dtype=None):
        raise NotImplementedError(
            "albert_unshared: HF ALBERT shares one block; its blocks no longer fit that layout"
        )
