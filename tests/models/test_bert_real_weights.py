"""The real all-MiniLM-L6-v2 BERT against transformers.BertModel (same folder)."""

import keras
import numpy as np
import pytest
from helpers import hf_inputs, padded_batch, run

from nlp4keras.models import build_transformer_model

TOLERANCE = 1e-5  # max |diff| on non-padding tokens, fp32


@pytest.fixture(scope="module")
def reference(minilm_dir):
    import torch
    from transformers import BertModel

    model = BertModel.from_pretrained(minilm_dir, attn_implementation="sdpa").eval()

    def forward(ids, segments):
        with torch.no_grad():
            out = model(**hf_inputs(ids, segments))
        return out.last_hidden_state.numpy(), out.pooler_output.numpy()

    return forward


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return build_transformer_model(
        minilm_dir / "config.json", minilm_dir, with_pool=True, return_keras_model=False
    )


def test_loads_every_tensor(minilm):
    report = minilm.load_report
    assert report.ok and not report.unexpected
    assert len(report.loaded) == 103  # 101 encoder tensors + the pooler's 2


@pytest.mark.parametrize("lengths, seq_len", [([128, 100, 37, 5], 128), ([9, 3], 9)])
def test_hidden_states_match_transformers(minilm, reference, lengths, seq_len):
    ids, segments = padded_batch(30522, lengths, seq_len, seed=seq_len, cls_id=101, sep_id=102)
    encoder = minilm.model
    sequence_model = keras.Model(
        encoder.inputs, encoder.get_layer("Transformer-5-FeedForward-Norm").output
    )
    hidden = run(sequence_model, [ids, segments])
    pooled = run(encoder, [ids, segments])
    expected_hidden, expected_pooled = reference(ids, segments)
    valid = ids != 0
    assert np.abs(hidden - expected_hidden)[valid].max() <= TOLERANCE
    assert np.abs(pooled - expected_pooled).max() <= TOLERANCE
    # The padded rows really are padded (so the mask is exercised), and
    # attending to padding would have been visible at this tolerance.
    assert (~valid).any()
    unmasked = run(sequence_model, [np.where(valid, ids, 1), segments])
    assert np.abs(unmasked - expected_hidden)[valid].max() > 100 * TOLERANCE


def test_padding_does_not_change_valid_tokens(minilm):
    ids, segments = padded_batch(30522, [20], 20, seed=3, cls_id=101, sep_id=102)
    wider_ids = np.pad(ids, ((0, 0), (0, 12)))
    wider_segments = np.pad(segments, ((0, 0), (0, 12)))
    short = run(minilm.model, [ids, segments])
    wide = run(minilm.model, [wider_ids, wider_segments])
    np.testing.assert_allclose(short, wide, atol=TOLERANCE)
