"""NEZHA (arXiv 1909.00204): BERT with functional relative positions on keys
and values instead of absolute position embeddings."""

from nlp4keras import validation as check
from nlp4keras.checkpoints.layout import CheckpointLayout
from nlp4keras.layers.positions import RelativePositionEmbedding
from nlp4keras.models.bert import (
    BERT,
    bert_block_layout,
    bert_embeddings_layout,
    bert_heads_layout,
)


def _nezha_layout():
    base, heads = bert_heads_layout()
    return CheckpointLayout(
        layers={
            **bert_embeddings_layout(positions=False),
            **bert_block_layout("bert/encoder/layer_{i}/", "encoder.layer.{i}."),
            **base,
        },
        heads=heads,
        ignored=[
            "embeddings.token_type_ids",
            "embeddings.position_ids",
            "cls.predictions.decoder.weight",
            "encoder.layer.{i:int}.attention.self.distance_embedding.weight",
            "embeddings.relative_positions_encoding.positions_encoding",
            "encoder.layer.{i:int}.attention.self.relative_positions_encoding.positions_encoding",
        ],
        base_prefixes=("bert.", "nezha."),
    )


class NEZHA(BERT):
    """NEZHA. max_relative_position (config key of the released checkpoints,
    default 64): distances are clipped to +-max_relative_position; the
    sinusoid table of clipped distance d is row d + max_relative_position."""

    absolute_positions = False
    position_mode = "relative"
    layout = _nezha_layout()
    family = "nezha"
    hf_model_types = ("nezha",)

    def __init__(self, max_relative_position=64, **kwargs):
        super().__init__(**kwargs)
        self.max_relative_position = check.integer(
            max_relative_position, "max_relative_position", "NEZHA", minimum=1
        )

    def compute_position_bias(self, inputs=None):
        if self.position_bias is None:
            queries = keys = self.inputs[0]  # the ids: only lengths matter
            arguments = None
            graph = self.cache_graph
            if graph is not None:  # decoding: the new tokens' slots against the whole cache
                keys, arguments = graph.key_mask, {"query_positions": graph.slots}
            self.position_bias = self.apply(
                inputs=[queries, keys],
                arguments=arguments,
                layer=RelativePositionEmbedding,
                output_dim=self.attention_head_size,
                max_distance=self.max_relative_position,
                name="Embedding-Relative-Position",
            )
        return self.position_bias

    def save_weights_as_hf(self, folder, dtype=None):
        raise NotImplementedError(
            "NEZHA: HF transformers no longer has this family; use save_weights_as_checkpoint"
        )
