"""Fill [MASK]s with our small Chinese BERT (models/zh-bert-tiny), loaded by path.

    python examples/fill_mask_chinese.py "科学[MASK][MASK]是第一生产力"

Prints the top 3 tokens of each [MASK] (all [MASK]s predicted at once).
"""

import os
import sys

import numpy as np

from nlp4keras.models import build_transformer_model
from nlp4keras.tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "zh-bert-tiny")
SENTENCES = (
    "科学[MASK][MASK]是第一生产力",
    "中国共产党[MASK][MASK]委员会",
    "今天是一九九八年[MASK]月一日",
    "北京是中国的[MASK]都",
)


def load(folder=MODEL):
    """(model giving MLM probabilities, tokenizer) from the model folder."""
    model = build_transformer_model(os.path.join(folder, "bert_config.json"),
                                    os.path.join(folder, "model.safetensors"),
                                    with_mlm=True)  # fmt: skip
    return model, Tokenizer(os.path.join(folder, "vocab.txt"), do_lower_case=True)


def encode(tokenizer, text):
    """Token ids of `text` with each literal "[MASK]" as the mask token."""
    ids = [tokenizer.token_to_id("[CLS]")]
    for i, piece in enumerate(text.split("[MASK]")):
        if i:
            ids.append(tokenizer.token_to_id("[MASK]"))
        ids += tokenizer.encode(piece)[0][1:-1]
    return ids + [tokenizer.token_to_id("[SEP]")]


def fill_mask(model, tokenizer, text, top_k=3):
    """[(position, [(token, probability)] * top_k)] for each [MASK] of `text`."""
    ids = np.array([encode(tokenizer, text)])
    probs = np.asarray(model.predict_on_batch([ids, np.zeros_like(ids)]))[0]
    result = []
    for position in np.flatnonzero(ids[0] == tokenizer.token_to_id("[MASK]")):
        best = np.argsort(-probs[position])[:top_k]
        result.append((int(position), [(tokenizer.id_to_token(int(i)), float(probs[position, i]))
                                       for i in best]))  # fmt: skip
    return result


def main(sentences):
    model, tokenizer = load()
    for text in sentences:
        print(text)
        for position, candidates in fill_mask(model, tokenizer, text):
            shown = "  ".join(f"{token} {p:.3f}" for token, p in candidates)
            print(f"  [MASK] at {position}: {shown}")


if __name__ == "__main__":
    main(sys.argv[1:] or SENTENCES)
