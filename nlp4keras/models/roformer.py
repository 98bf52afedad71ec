"""RoFormer (rotary positions, kexue.fm/archives/8265) and RoFormerV2 (no
biases, parameterless RMS norm, tied `Output-Mapping` MLM head)."""

import keras

from nlp4keras.checkpoints.layout import CheckpointLayout, dense
from nlp4keras.layers.positions import SinusoidalPositionEmbedding
from nlp4keras.models.bert import (
    BERT,
    bert_block_layout,
    bert_embeddings_layout,
    bert_heads_layout,
)


def _roformer_layout():
    embeddings = bert_embeddings_layout(positions=False)
    embeddings["Embedding-Mapping"] = dense(
        "bert/encoder/embedding_hidden_mapping_in", "embeddings_project"
    )
    base, heads = bert_heads_layout()
    return CheckpointLayout(
        layers={
            **embeddings,
            **bert_block_layout("bert/encoder/layer_{i}/", "encoder.layer.{i}."),
            **base,
        },
        heads=heads,
        ignored=[
            "encoder.embed_positions.weight",
            "embeddings.token_type_ids",
            "cls.predictions.decoder.weight",
        ],
        base_prefixes=("roformer.",),
    )


class RoFormer(BERT):
    """BERT with rotary position embeddings on q and k (no absolute
    positions). Google `bert/` names (the Chinese RoFormer / WoBERT / SimBERT
    v2 releases), HF `roformer` names."""

    absolute_positions = False
    position_mode = "rotary"
    layout = _roformer_layout()
    family = "roformer"
    hf_model_types = ("roformer",)
    hf_architecture = "RoFormerForMaskedLM"

    def compute_position_bias(self, inputs=None):
        if self.position_bias is None:
            # From the token ids, not the embeddings: a tensor computed from
            # block 0's input would be pulled into block 0 by recompute.
            ids = self.inputs[0]
            x = (
                [ids, self.inputs[2 if self.segment_vocab_size > 0 else 1]]
                if self.custom_position_ids
                else ids
            )
            self.position_bias = self.apply(
                inputs=x,
                arguments=self.cached_positions(),
                layer=SinusoidalPositionEmbedding,
                output_dim=self.attention_key_size,
                custom_position_ids=self.custom_position_ids,
                name="Embedding-Rotary-Position",
            )
        return self.position_bias

    def hf_config(self):
        return {
            **super().hf_config(),
            "embedding_size": self.embedding_size,
            "rotary_value": False,
        }


def _roformer_v2_layout():
    return CheckpointLayout(
        layers={
            **bert_embeddings_layout(hf=False, positions=False, norms=False, bias=False),
            **bert_block_layout("bert/encoder/layer_{i}/", None, bias=False, norms=False),
        }
    )


class RoFormerV2(RoFormer):
    """RoFormerV2: RoFormer without biases, with a parameterless RMS norm
    after the embeddings and every sublayer; the MLM head is the tied token
    embedding (after `Output-Mapping` when embedding_size differs). No pooler."""

    use_bias = False
    norm_options = {"zero_mean": False, "offset": False, "scale": False}
    layout = _roformer_v2_layout()
    family = "roformer_v2"
    hf_model_types = ()
    has_pooler = False

    def apply_mlm_head(self, x):
        if self.embedding_size != self.hidden_size:
            x = self.apply(
                inputs=x,
                layer=keras.layers.Dense,
                units=self.embedding_size,
                use_bias=False,
                kernel_initializer=self.initializer,
                name="Output-Mapping",
            )
        x = self.tied_logits(x)
        return self.vocab_activation(x, self.with_mlm, "Output-MLM-Activation")
