"""Sentence embeddings with the real all-MiniLM-L6-v2 BERT.

Loads the HF checkpoint through `build_transformer_model` (no transformers,
no sentence-transformers), tokenizes with nlp4keras' WordPiece tokenizer (a padded batch),
mean-pools the last hidden states over real tokens and prints the cosine
similarity matrix. Paraphrases score high (about 0.75-0.9), unrelated
sentences near 0.

    python examples/sentence_similarity.py [model_folder]
"""

import sys
import time
from pathlib import Path

# keras comes before nlp4keras here (isort's order) and still gets an installed
# backend with nothing set: installing nlp4keras adds a start-up hook that
# applies nlp4keras' backend rule before any import (see README, "Backend").
import keras
import numpy as np

from nlp4keras.models import build_transformer_model
from nlp4keras.tokenizers import Tokenizer

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "The new movie is so great.",
    "A monkey is playing drums.",
    "The stock market fell sharply today.",
]


def embed(model, tokenizer, sentences, maxlen=128):
    token_ids, segment_ids = tokenizer(sentences, maxlen=maxlen)  # padded int32 arrays
    hidden = keras.ops.convert_to_numpy(model.predict_on_batch([token_ids, segment_ids]))
    mask = (token_ids != 0)[..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main():
    repo = Path(__file__).resolve().parents[1]
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else repo / ".assets" / "minilm"
    start = time.perf_counter()
    model = build_transformer_model(folder / "config.json", folder)
    tokenizer = Tokenizer(str(folder / "vocab.txt"), do_lower_case=True)
    vectors = embed(model, tokenizer, SENTENCES)
    similarity = vectors @ vectors.T
    print(
        f"all-MiniLM-L6-v2 on the {keras.backend.backend()} backend "
        f"({time.perf_counter() - start:.1f} s to load and embed)\n"
    )
    print("cosine similarity")
    for i, sentence in enumerate(SENTENCES):
        row = " ".join(f"{value:5.2f}" for value in similarity[i])
        print(f"  [{i}] {row}   {sentence}")


if __name__ == "__main__":
    main()
