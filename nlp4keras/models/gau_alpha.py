"""GAU-α (kexue.fm/archives/9052): RoFormerV2 whose block is one gated
attention unit (softmax_plus, rotary positions) with a residual and a
parameterless RMS norm."""

from nlp4keras.checkpoints.layout import CheckpointLayout, tensor
from nlp4keras.layers.gau import GatedAttentionUnit
from nlp4keras.models.bert import bert_embeddings_layout
from nlp4keras.models.roformer import RoFormerV2


def _gau_alpha_layout():
    scope = "GAU_alpha/encoder/layer_{i}/gau/"
    gau = []
    for name in ("i_dense/kernel", "o_dense/kernel", "q_scaleoffset/gamma", "k_scaleoffset/gamma"):
        gau += tensor(scope + name)
    return CheckpointLayout(
        layers={
            **bert_embeddings_layout(hf=False, positions=False, norms=False, bias=False),
            "Transformer-{i}-GatedAttentionUnit": gau,
        }
    )


class GAU_alpha(RoFormerV2):
    """GAU-α: attention_key_size (config, 128 in the release) is the size of
    q and k; intermediate_size the gated width."""

    attention_part = "GatedAttentionUnit"
    layout = _gau_alpha_layout()
    family = "gau_alpha"

    def attention(self, x, index):
        extras, arguments = self.attention_inputs(x)
        return self.apply(
            inputs=self.simplify([x] + extras),
            layer=GatedAttentionUnit,
            arguments=arguments,
            units=self.intermediate_size,
            key_size=self.attention_key_size,
            activation=self.hidden_act,
            use_bias=False,
            normalization="softmax_plus",
            attention_dropout=self.attention_dropout_rate,
            position_mode=self.position_mode,
            kernel_initializer=self.initializer,
            name=self.block_name(index, self.attention_part),
        )

    def apply_main_layers(self, inputs, index):
        return self.sublayer(
            inputs, lambda y: self.attention(y, index), self.block_name(index, self.attention_part)
        )

    def build_cache_model(self):
        raise NotImplementedError(
            "cached decoding of GAU_alpha: its softmax_plus scales each query's scores by "
            "log(number of keys in the text), so the states of a prefix change as the text "
            "grows; cached keys and values could not equal the model. Decode it uncached "
            "(AutoRegressiveDecoder)"
        )
