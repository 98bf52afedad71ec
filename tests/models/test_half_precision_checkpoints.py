"""bf16 / fp16 checkpoints load into a float32 model, value for value."""

import keras
import numpy as np
import pytest
import torch
from helpers import TINY_BERT

from nlp4keras.models import build_transformer_model


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("file_name", ["model.safetensors", "pytorch_model.bin"])
def test_half_precision_checkpoint(tmp_path, dtype, file_name):
    from transformers import BertConfig, BertModel

    hf_model = BertModel(BertConfig(**TINY_BERT)).to(dtype)
    if file_name == "model.safetensors":
        hf_model.save_pretrained(tmp_path)
    else:
        hf_model.config.save_pretrained(tmp_path)
        torch.save(hf_model.state_dict(), tmp_path / file_name)
    model = build_transformer_model(tmp_path / "config.json", tmp_path / file_name)
    loaded = model.get_layer("Transformer-1-FeedForward").weights[0]
    expected = hf_model.encoder.layer[1].intermediate.dense.weight.float().detach().numpy().T
    assert loaded.dtype == "float32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded), expected)
