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
                     checkpoint_name="bert_model.ckpt", sizes=(), seed=0):  # fmt: skip
    """Write `config_name`, the checkpoint `checkpoint_name`.* and vocab.txt into `folder`
    (created); returns the folder. Every head is in the checkpoint (pooler, NSP, MLM), as in
    Google's. `family` is a `model=` name of build_transformer_model: the families nlp4keras
    lacks raise its "unknown model" error. sizes: (key, value) pairs replacing TINY_CONFIG's,
    e.g. the vocab size of an example's own SentencePiece model. A decoder family (gpt2,
    gpt2_ml) has no segments and no pooler, NSP or MLM heads: its tied LM head is all it has;
    a T5 family (mt5.1.1) writes its encoder, decoder and LM head under mesh-TF names."""
    import keras

    from nlp4keras.models import MODELS, T5_Base, build_transformer_model
    from nlp4keras.models.decoder import LanguageModel

    config = dict(TINY_CONFIG, **dict(sizes))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    transformer = build_transformer_model(
        model=family,
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        hidden_act=config["hidden_act"],
        max_position_embeddings=config["max_position_embeddings"],
        return_keras_model=False,
        **_encoder_parts(family, MODELS, (LanguageModel, T5_Base)),
    )
    # Matrices drawn with numpy (same weights on every backend); biases and norms kept.
    rng = np.random.default_rng(seed)
    for variable in transformer.model.weights:
        if len(variable.shape) >= 2:
            value = rng.normal(0.0, config["initializer_range"], size=variable.shape)
            variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype)))
    transformer.save_weights_as_checkpoint(str(folder / checkpoint_name))
    (folder / config_name).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(vocab, folder / "vocab.txt")
    return folder


def _encoder_parts(family, models, headless):
    """The segment table and heads an encoder family's checkpoint holds (none for a decoder
    or T5: classes in `headless`)."""
    model_class = models.get(family)
    if isinstance(model_class, type) and issubclass(model_class, headless):
        return {}
    return dict(
        type_vocab_size=TINY_CONFIG["type_vocab_size"], with_pool=True, with_nsp=True, with_mlm=True
    )
