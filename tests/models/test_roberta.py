"""model='roberta' on an HF RoBERTa checkpoint: padding id 1 and position ids
starting after it, against transformers.RobertaForMaskedLM."""

import numpy as np
import torch
from helpers import randomize_, run

from nlp4keras.models import build_transformer_model


def test_roberta_mlm_matches_transformers(tmp_path):
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=40,
        max_position_embeddings=34,
        type_vocab_size=1,
        pad_token_id=1,
        layer_norm_eps=1e-5,
    )
    hf_model = randomize_(RobertaForMaskedLM(config).eval(), seed=3)
    hf_model.save_pretrained(tmp_path)

    # Padded with the pad id 1 on the right, on the left and in the middle;
    # id 0 (<s>) must NOT be treated as padding. transformers counts
    # positions over real tokens only, whatever the padding side.
    ids = np.array(
        [
            [0, 7, 19, 33, 2, 1, 1, 1],
            [0, 11, 5, 0, 45, 52, 9, 2],
            [1, 1, 1, 0, 7, 19, 33, 2],
            [0, 7, 1, 1, 19, 33, 2, 1],
        ],
        dtype="int32",
    )
    segments = np.zeros_like(ids)
    with torch.no_grad():
        expected = hf_model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(ids != 1, dtype=torch.long),
        ).logits.numpy()

    model = build_transformer_model(
        tmp_path / "config.json",
        tmp_path,
        model="roberta",
        with_mlm="linear",
        return_keras_model=False,
    )
    assert model.load_report.ok
    logits = run(model.model, [ids, segments])
    assert np.abs(logits - expected)[ids != 1].max() <= 1e-5
    # 32 usable positions: the table has 34 rows and starts at pad id + 1.
    assert model.model.get_layer("Embedding-Position").max_positions == 32
