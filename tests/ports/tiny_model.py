"""A tiny Google-format checkpoint folder for the examples: config, TF checkpoint, vocab.

The model is random (a seeded numpy draw, the same on every backend), with bert-base-chinese's
real 21128-token vocab, so that every example's tokenizer, keep_tokens and checkpoint loading run
as they would on the real `chinese_L-12_H-768_A-12`.
"""

import json
import shutil
from pathlib import Path

import numpy as np

# Google's bert_config.json keys, with tiny sizes.
TINY_CONFIG = {
    "attention_probs_dropout_prob": 0.1,
    "directionality": "bidi",
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "max_position_embeddings": 512,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "pooler_fc_size": 32,
    "pooler_num_attention_heads": 2,
    "pooler_num_fc_layers": 3,
    "pooler_size_per_head": 16,
    "pooler_type": "first_token_transform",
    "type_vocab_size": 2,
    "vocab_size": 21128,
}


def write_tiny_model(folder, vocab, family="bert", config_name="bert_config.json",
                     checkpoint_name="bert_model.ckpt", seed=0):  # fmt: skip
    """Write `config_name`, the checkpoint `checkpoint_name`.* and vocab.txt into `folder`
    (created); returns the folder. Every head is in the checkpoint (pooler, NSP, MLM), as in
    Google's. `family` is a `model=` name of build_transformer_model: the families nlp4keras
    lacks raise its "unknown model" error."""
    import keras

    from nlp4keras.models import build_transformer_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    transformer = build_transformer_model(
        model=family,
        vocab_size=TINY_CONFIG["vocab_size"],
        hidden_size=TINY_CONFIG["hidden_size"],
        num_hidden_layers=TINY_CONFIG["num_hidden_layers"],
        num_attention_heads=TINY_CONFIG["num_attention_heads"],
        intermediate_size=TINY_CONFIG["intermediate_size"],
        hidden_act=TINY_CONFIG["hidden_act"],
        max_position_embeddings=TINY_CONFIG["max_position_embeddings"],
        type_vocab_size=TINY_CONFIG["type_vocab_size"],
        with_pool=True,
        with_nsp=True,
        with_mlm=True,
        return_keras_model=False,
    )
    # Matrices drawn with numpy (same weights on every backend); biases and norms kept.
    rng = np.random.default_rng(seed)
    for variable in transformer.model.weights:
        if len(variable.shape) >= 2:
            value = rng.normal(0.0, TINY_CONFIG["initializer_range"], size=variable.shape)
            variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype)))
    transformer.save_weights_as_checkpoint(str(folder / checkpoint_name))
    config = dict(TINY_CONFIG)
    (folder / config_name).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(vocab, folder / "vocab.txt")
    return folder
