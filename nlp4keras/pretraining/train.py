"""Command line: pretrain a model on shards made by `nlp4keras.pretraining.shards`.

    python -m nlp4keras.pretraining.train --config bert_config.json --vocab vocab.txt \\
        --shards shards/ --out run/ --kind mlm --steps 100000 --batch-size 32 --maxlen 128

Ctrl-C saves a checkpoint and stops; the same command with --resume continues.
"""

import argparse

from nlp4keras.pretraining.dataset import PretrainingDataset
from nlp4keras.pretraining.examples import LmExamples, MlmExamples, UnilmExamples
from nlp4keras.pretraining.models import KINDS, OPTIMIZERS, pretraining_model
from nlp4keras.pretraining.shards import open_shards
from nlp4keras.pretraining.trainer import pretrain
from nlp4keras.pretraining.vocab import PretrainingVocab
from nlp4keras.training.precision import POLICIES

EXAMPLES = {"mlm": MlmExamples, "lm": LmExamples, "unilm": UnilmExamples}


def parser():
    p = argparse.ArgumentParser(
        prog="python -m nlp4keras.pretraining.train",
        description="Pretrain an MLM, LM or UniLM model on pretraining shards.",
        allow_abbrev=False,
    )
    p.add_argument("--config", required=True, help="bert_config.json / config.json")
    p.add_argument("--checkpoint", help="weights to start from (default: random)")
    p.add_argument("--model", default="bert", help="build_transformer_model's model=")
    p.add_argument("--vocab", required=True, help="the vocab.txt the shards were made with")
    p.add_argument("--cased", action="store_true", help="the vocab keeps case")
    p.add_argument("--shards", required=True, nargs="+", help="shard folders, or their parent")
    p.add_argument("--out", required=True, help="folder for checkpoints, log.csv, loss.png")
    p.add_argument("--kind", choices=list(KINDS), default="mlm")
    p.add_argument("--steps", type=int, required=True, help="batches to train on, in all")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--maxlen", type=int, default=512)
    p.add_argument("--seed", type=int, default=0, help="masking, splits and batch order")
    p.add_argument("--max-predictions", type=int, default=None,
                   help="mlm: the head only at this many masked positions per example "
                        "(>= floor(0.15 x (maxlen - 2)) + 1; default: every position)")  # fmt: skip
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), default="adamw")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=int, default=0, help="warm-up updates")
    p.add_argument("--decay-to", type=float, default=None,
                   help="lr fraction reached at the last update (default: no decay)")  # fmt: skip
    p.add_argument("--grad-accum", type=int, default=1, help="batches per update")
    p.add_argument("--policy", choices=POLICIES, default=None, help="mixed precision")
    p.add_argument("--recompute", action="store_true", help="gradient checkpointing")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    mlm_options = {}
    if args.max_predictions is not None:
        if args.kind != "mlm":
            p.error("--max-predictions applies to --kind mlm only")
        mlm_options["max_predictions"] = args.max_predictions
    vocab = PretrainingVocab(args.vocab, do_lower_case=not args.cased)
    shard_paths = args.shards[0] if len(args.shards) == 1 else args.shards
    examples = EXAMPLES[args.kind](open_shards(shard_paths, vocab.vocab_size), vocab,
                                   maxlen=args.maxlen, seed=args.seed, **mlm_options)  # fmt: skip
    dataset = PretrainingDataset(examples, batch_size=args.batch_size, seed=args.seed,
                                 drop_remainder=True)  # fmt: skip
    updates = args.steps // args.grad_accum
    options = dict(learning_rate=args.lr, weight_decay_rate=args.weight_decay,
                   warmup_steps=args.warmup, grad_accum_steps=args.grad_accum)  # fmt: skip
    if args.decay_to is not None:
        options.update(total_steps=updates, final_lr_fraction=args.decay_to)
    model = pretraining_model(args.kind, args.config, args.checkpoint, model=args.model,
                              optimizer=args.optimizer, optimizer_options=options,
                              policy=args.policy, recompute=args.recompute or None,
                              vocab_size=vocab.vocab_size, **mlm_options)  # fmt: skip
    log = pretrain(model, dataset, args.out, args.steps, save_every=args.save_every,
                   resume=args.resume, verbose=0 if args.quiet else 1)  # fmt: skip
    print(f"step {int(log['step'][-1])}: loss {log['loss'][-1]:.4f}, "
          f"accuracy {log['accuracy'][-1]:.4f}; {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
