"""application='lm' / 'unilm': what each position may see, and numerics
against transformers BERT run with the same mask (a 4-D boolean mask)."""

import numpy as np
import pytest
import torch
from helpers import TINY_BERT, hf_inputs, run

from nlp4keras.models import build_transformer_model

SEQ = 8


def tiny(application, **kwargs):
    config = dict(TINY_BERT)
    return build_transformer_model(
        application=application,
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        **{**config, **kwargs},
    )


def changed_positions(model, inputs, position, new_token):
    """Positions whose output changes when the token at `position` changes."""
    ids = inputs[0].copy()
    before = run(model, [ids] + inputs[1:])
    ids[:, position] = new_token
    after = run(model, [ids] + inputs[1:])
    diff = np.abs(after - before).max(axis=-1)[0]
    return set(np.flatnonzero(diff > 1e-6).tolist())


def test_lm_position_sees_only_the_past():
    model = tiny("lm", with_mlm="linear")
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 99, (1, SEQ)).astype("int32")
    segments = np.zeros_like(ids)
    for position in range(SEQ):
        new = (ids[0, position] % 98) + 1
        # A change at `position` reaches exactly the positions at or after it.
        assert changed_positions(model, [ids, segments], position, new) == set(range(position, SEQ))


def test_unilm_source_is_bidirectional_target_is_causal():
    model = tiny("unilm", with_mlm="linear")
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 99, (1, SEQ)).astype("int32")
    segments = np.array([[0, 0, 0, 1, 1, 1, 1, 1]], dtype="int32")
    source, target = range(0, 3), range(3, SEQ)
    for position in source:
        # Every source token is seen by every position (source and target).
        assert changed_positions(model, [ids, segments], position, 5) == set(range(SEQ))
    for position in target:
        # A target token is seen only by itself and later target positions.
        assert changed_positions(model, [ids, segments], position, 5) == set(range(position, SEQ))


def reference_mask(kind, ids, segments):
    """[B, 1, S, S] boolean mask computed directly from the definitions.

    unilm (bert4keras' rule): number the spans of the segment ids, each 1
    starting a new one; token i sees token j iff j's span number is not
    greater than i's. For [0 0 0 1 1] this is UniLM's seq2seq mask (the source
    sees itself, each target token the source and the targets before it)."""
    batch, length = ids.shape
    mask = np.zeros((batch, 1, length, length), dtype=bool)
    for b in range(batch):
        span = [sum(segments[b, : k + 1]) for k in range(length)]
        for i in range(length):
            for j in range(length):
                allowed = j <= i if kind == "lm" else span[j] <= span[i]
                mask[b, 0, i, j] = allowed and ids[b, j] != 0
    return mask


@pytest.mark.parametrize("application", ["lm", "unilm"])
def test_logits_match_transformers_with_the_same_mask(tiny_pretraining, application):
    hf_model, folders = tiny_pretraining
    folder = folders["safetensors"]
    ids = np.array(
        [[5, 17, 23, 42, 8, 9, 0, 0], [7, 3, 11, 19, 31, 2, 64, 70], [4, 8, 15, 16, 23, 42, 9, 0]],
        dtype="int32",
    )
    # The third row alternates segments (bert4keras' multi-turn use).
    segments = np.array(
        [[0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 1, 1], [0, 1, 0, 1, 1, 0, 1, 0]],
        dtype="int32",
    )
    model = build_transformer_model(
        folder / "config.json", folder, application=application, with_mlm="linear"
    )
    logits = run(model, [ids, segments])
    mask = torch.tensor(reference_mask(application, ids, segments))
    with torch.no_grad():
        expected = hf_model(**hf_inputs(ids, segments, mask)).prediction_logits.numpy()
    valid = ids != 0
    assert np.abs(logits - expected)[valid].max() <= 1e-5


def test_lm_and_unilm_force_the_mlm_head():
    for application in ("lm", "unilm"):
        model = tiny(application)
        assert model.get_layer("MLM-Activation") is not None
        assert model.output.shape[-1] == TINY_BERT["vocab_size"]
    assert tiny("lm").get_layer("Attention-LM-Mask") is not None
    assert tiny("unilm").get_layer("Attention-UniLM-Mask") is not None


def test_unilm_without_segments_is_an_error():
    with pytest.raises(ValueError, match="segment_vocab_size"):
        tiny("unilm", segment_vocab_size=0)
