"""ELECTRA: the BERT encoder under `electra/` names, with the discriminator
head (`with_discriminator`) or the generator's MLM head (`with_mlm`)."""

import keras

from nlp4keras import validation as check
from nlp4keras.backend import get_activation
from nlp4keras.checkpoints.layout import CheckpointLayout, dense, norm, tensor
from nlp4keras.models.bert import BERT, bert_block_layout, bert_embeddings_layout


def _electra_layout():
    embeddings = bert_embeddings_layout("electra")
    embeddings["Embedding-Mapping"] = dense("electra/embeddings_project", "embeddings_project")
    return CheckpointLayout(
        layers={
            **embeddings,
            **bert_block_layout("electra/encoder/layer_{i}/", "encoder.layer.{i}."),
        },
        heads={
            "Discriminator-Dense": dense(
                "discriminator_predictions/dense", "discriminator_predictions.dense"
            ),
            "Discriminator-Prediction": dense(
                "discriminator_predictions/dense_1", "discriminator_predictions.dense_prediction"
            ),
            "MLM-Dense": dense("generator_predictions/dense", "generator_predictions.dense"),
            "MLM-Norm": norm("generator_predictions/LayerNorm", "generator_predictions.LayerNorm"),
            "MLM-Bias": tensor(
                "generator_predictions/output_bias", "generator_lm_head.bias", vocab=True
            ),
        },
        ignored=[
            "embeddings.position_ids",
            "embeddings.token_type_ids",
            "generator_lm_head.weight",
        ],
        base_prefixes=("electra.",),
    )


class ELECTRA(BERT):
    """ELECTRA. with_discriminator: True (sigmoid) or an activation ('linear'
    gives logits), [batch, len, 1]. with_mlm: the generator's head (Dense to
    embedding_size with GELU, LayerNorm, tied decoder, bias), for generator
    checkpoints. No pooler (ELECTRA has none)."""

    layout = _electra_layout()
    core_scopes = ("electra/embeddings/", "electra/encoder/")
    family = "electra"
    hf_model_types = ("electra",)
    hf_architecture = "ElectraForPreTraining"

    has_pooler = False

    def __init__(self, with_discriminator=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(with_discriminator, bool):
            check.activation(with_discriminator, "with_discriminator", "ELECTRA")
        self.with_discriminator = with_discriminator

    def apply_heads(self, x):
        outputs = super().apply_heads(x)
        if self.with_discriminator:
            y = self.apply(
                inputs=x,
                layer=keras.layers.Dense,
                units=self.hidden_size,
                activation=get_activation(self.hidden_act),
                kernel_initializer=self.initializer,
                name="Discriminator-Dense",
            )
            activation = "sigmoid" if self.with_discriminator is True else self.with_discriminator
            outputs.append(
                self.apply(
                    inputs=y,
                    layer=keras.layers.Dense,
                    units=1,
                    activation=get_activation(activation),
                    kernel_initializer=self.initializer,
                    dtype="float32",
                    name="Discriminator-Prediction",
                )
            )
        return outputs

    def mlm_activation(self):
        return "gelu"  # the generator head's GELU, whatever hidden_act is

    def hf_config(self):
        return {**super().hf_config(), "embedding_size": self.embedding_size}
