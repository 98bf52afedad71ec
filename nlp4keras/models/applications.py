"""Applications: attention masks that turn an encoder into a language model.

`extend_with_language_model` (application='lm') adds a causal mask;
`extend_with_unified_language_model` (application='unilm') adds UniLM's
seq2seq mask from segment ids. Both force an MLM head, as in bert4keras.
"""

from nlp4keras.layers import LMMask, UniLMMask


class LM_Mask:
    """Mixin: causal attention built from the token ids."""

    def compute_attention_bias(self, inputs=None):
        if self.cache_graph is not None:
            return None  # the attention layers mask from their caches
        if self.attention_bias is None:
            self.attention_bias = self.apply(
                inputs=self.inputs[0], layer=LMMask, name="Attention-LM-Mask"
            )
        return self.attention_bias


class UniLM_Mask:
    """Mixin: UniLM seq2seq attention built from the segment ids."""

    def compute_attention_bias(self, inputs=None):
        if self.cache_graph is not None:
            return None  # the attention layers mask from their caches (prompt: bidirectional)
        if self.attention_bias is None:
            if getattr(self, "segment_vocab_size", 0) <= 0:
                raise ValueError(
                    "application='unilm' builds its mask from segment ids, so "
                    "segment_vocab_size must be > 0"
                )
            self.attention_bias = self.apply(
                inputs=self.inputs[1], layer=UniLMMask, name="Attention-UniLM-Mask"
            )
        return self.attention_bias


def _with_mask(mixin, base, suffix):
    def __init__(self, *args, **kwargs):
        kwargs["with_mlm"] = kwargs.get("with_mlm") or True
        base.__init__(self, *args, **kwargs)

    return type(base.__name__ + suffix, (mixin, base), {"__init__": __init__})


def extend_with_language_model(BaseModel):
    """A subclass of BaseModel with a causal mask and an MLM (LM) head."""
    return _with_mask(LM_Mask, BaseModel, "LanguageModel")


def extend_with_unified_language_model(BaseModel):
    """A subclass of BaseModel with UniLM's seq2seq mask and an MLM head."""
    return _with_mask(UniLM_Mask, BaseModel, "UnifiedLanguageModel")
