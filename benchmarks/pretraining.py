"""Pretraining-step benchmark: MLM training throughput (tokens/s) of
nlp4keras on JAX and on torch against an HF `BertForMaskedLM` loop.

Usage (from the repo root):

    python benchmarks/pretraining.py [--steps 10] [--impls jax torch hf jax-mp20 torch-mp20]

Model: a small BERT (4 layers, hidden 256, 4 heads, FFN 1024, vocab 21128,
dropout 0.1), randomly initialised on each side, with its MLM head (transform
+ LayerNorm + decoder tied to the token embeddings) over every position;
batch 16 x 128 random token ids, 15 % of the positions labelled (at most 20
a row), the loss the mean cross-entropy over the labelled ones; AdamW (lr
1e-4, weight decay 0.01), float32.

- hf: `transformers.BertForMaskedLM` (sdpa attention, train mode), labels
  -100 where unlabelled, `torch.optim.AdamW`; a step is forward, backward,
  `optimizer.step()`, `optimizer.zero_grad()`;
- jax / torch: `nlp4keras.pretraining.pretraining_model("mlm", ...)` (logits
  head, `masked_crossentropy`, `MaskedAccuracy`, the AdamW wrapper); a step
  is `model.train_on_batch`, as `pretrain` runs it;
- jax-mp20 / torch-mp20: the same with `max_predictions=20`: the head and
  the loss only at the labelled positions, gathered (the same loss).

One subprocess per impl, one after another; each times its first step apart
(JAX compiles there), runs 2 more, then times --steps steps. Prints the
median step, tokens/s (batch x seq / step) and the ratio to hf, with the
load average before and after: run it on a quiet machine.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.dirname(HERE)
sys.path.append(HERE)  # last: the standard library keeps precedence
from bench_common import machine_busy_s, torch_threads  # noqa: E402

CONFIG = dict(vocab_size=21128, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
              intermediate_size=1024, max_position=512, dropout=0.1)  # fmt: skip
BATCH, SEQ, LABELLED, LR, WEIGHT_DECAY, SEED = 16, 128, 0.15, 1e-4, 0.01, 1234
MAX_PREDICTIONS = 20  # labels per row at most (BERT's max_predictions_per_seq at 128)
MARKER = "@@RESULT@@ "
# impl: KERAS_BACKEND
IMPLS = {"jax": "jax", "torch": "torch", "hf": "torch", "jax-mp20": "jax", "torch-mp20": "torch"}


def make_batch():
    rng = np.random.default_rng(SEED)
    ids = rng.integers(1, CONFIG["vocab_size"], size=(BATCH, SEQ)).astype("int32")
    labelled = rng.random((BATCH, SEQ)) < LABELLED
    labelled &= np.cumsum(labelled, axis=1) <= MAX_PREDICTIONS  # the first 20 of a row
    labels = np.where(labelled, ids, 0).astype("int32")
    return ids, np.zeros_like(ids), labels


def gathered(labels):
    """(masked_positions, labels) of MAX_PREDICTIONS slots per row, as
    `MlmExamples(..., max_predictions=20)` gives them."""
    positions = np.zeros((BATCH, MAX_PREDICTIONS), "int32")
    slot_labels = np.zeros_like(positions)
    for row, row_labels in enumerate(labels):
        where = np.flatnonzero(row_labels)
        positions[row, : len(where)] = where
        slot_labels[row, : len(where)] = row_labels[where]
    return positions, slot_labels


def hf_step():
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(SEED)
    config = BertConfig(
        vocab_size=CONFIG["vocab_size"], hidden_size=CONFIG["hidden_size"],
        num_hidden_layers=CONFIG["num_hidden_layers"],
        num_attention_heads=CONFIG["num_attention_heads"],
        intermediate_size=CONFIG["intermediate_size"],
        max_position_embeddings=CONFIG["max_position"], hidden_dropout_prob=CONFIG["dropout"],
        attention_probs_dropout_prob=CONFIG["dropout"],
    )  # fmt: skip
    model = BertForMaskedLM._from_config(config, attn_implementation="sdpa").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    ids, segments, labels = (torch.from_numpy(a).long() for a in make_batch())
    labels = torch.where(labels == 0, -100, labels)

    def step():
        loss = model(input_ids=ids, token_type_ids=segments, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return step


def nlp4keras_step(max_predictions=None):
    import random

    from nlp4keras.pretraining import pretraining_model

    random.seed(SEED)
    np.random.seed(SEED)
    model = pretraining_model(
        "mlm", vocab_size=CONFIG["vocab_size"], hidden_size=CONFIG["hidden_size"],
        num_hidden_layers=CONFIG["num_hidden_layers"],
        num_attention_heads=CONFIG["num_attention_heads"],
        intermediate_size=CONFIG["intermediate_size"], hidden_act="gelu",
        max_position=CONFIG["max_position"], dropout_rate=CONFIG["dropout"],
        optimizer_options=dict(learning_rate=LR, weight_decay_rate=WEIGHT_DECAY),
        max_predictions=max_predictions,
    )  # fmt: skip
    ids, segments, labels = make_batch()
    inputs = [ids, segments]
    if max_predictions is not None:
        positions, labels = gathered(labels)
        inputs.append(positions)

    def step():
        return float(model.train_on_batch(inputs, labels, return_dict=True)["loss"])

    return step


def worker(impl, steps):
    if impl == "hf":
        step = hf_step()
    else:
        step = nlp4keras_step(MAX_PREDICTIONS if impl.endswith("-mp20") else None)
    start = time.perf_counter()
    losses = [step()]
    first = time.perf_counter() - start
    losses += [step() for _ in range(2)]
    times, others = [], []
    for _ in range(steps):
        busy, cpu = machine_busy_s(), time.process_time()
        start = time.perf_counter()
        losses.append(step())
        wall = time.perf_counter() - start
        times.append(wall)
        if busy is not None:  # cores other processes used meanwhile
            others.append(max(machine_busy_s() - busy - (time.process_time() - cpu), 0) / wall)
    result = {"impl": impl, "first_step_s": first, "times_s": times, "losses": losses,
              "others_cores": statistics.median(others) if others else None,
              "torch_threads": torch_threads()}  # fmt: skip
    print(MARKER + json.dumps(result), flush=True)


def run_worker(impl, steps):
    env = dict(os.environ, KERAS_BACKEND=IMPLS[impl], HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    command = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--steps", str(steps)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    raise RuntimeError(f"worker {impl} failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--impls", nargs="+", choices=list(IMPLS), default=list(IMPLS))
    parser.add_argument("--worker", choices=list(IMPLS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps)

    load_before = os.getloadavg()
    results = {impl: run_worker(impl, args.steps) for impl in args.impls}
    load_after = os.getloadavg()
    tokens = BATCH * SEQ
    print(f"MLM train step, batch {BATCH} x {SEQ}, {json.dumps(CONFIG)}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    print("| impl | first step s | median step ms | tokens/s | vs hf | others' cores | losses |")
    print("|---|---:|---:|---:|---:|---:|---|")
    hf = results.get("hf")
    for impl, r in results.items():
        median = statistics.median(r["times_s"])
        ratio = "-"
        if hf is not None:
            ratio = f"{statistics.median(hf['times_s']) / median:.2f}x"
        others = "-" if r["others_cores"] is None else f"{r['others_cores']:.2f}"
        losses = f"{r['losses'][0]:.3f} -> {r['losses'][-1]:.3f}"
        print(f"| {impl} | {r['first_step_s']:.1f} | {1e3 * median:.0f} | {tokens / median:,.0f} "
              f"| {ratio} | {others} | {losses} |")  # fmt: skip
    print("vs hf: nlp4keras tokens/s / hf tokens/s (above 1: faster than HF)")


if __name__ == "__main__":
    main()
