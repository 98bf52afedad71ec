"""Recompute (gradient checkpointing) benchmark: memory and time of a
BERT-base training step with and without `recompute=True`, on JAX and torch.

Usage (from the repo root):

    python benchmarks/recompute.py [--batch 8] [--seq 256] [--steps 3]
        [--budget-gb 4] [--backends jax torch] [--search-backends torch] [--quick]

The model is BERT-base shaped (12 layers, hidden 768, 12 heads, FFN 3072,
vocab 21128, dropout 0.1), randomly initialised; a step is
`train_on_batch` with Adam and an MSE loss on the sequence output.

Each configuration runs in a fresh worker subprocess (the Keras backend is
fixed per process). The worker builds and compiles the model, runs one
warm-up step (JAX compiles there), then resets the kernel's peak-RSS mark
(/proc/self/clear_refs) and times `--steps` steps. It reports:

- step memory: peak RSS during the timed steps minus the RSS just before
  them (activations, gradients and temporaries; weights and Adam state are
  already resident). glibc is told to mmap allocations over 64 KiB
  (MALLOC_MMAP_THRESHOLD_) so that freed activations leave the RSS instead of
  hiding in malloc's free lists;
- peak RSS: the absolute peak during the timed steps;
- step time: the median of the timed steps.

The budget search finds, per backend and mode, the largest batch whose peak
RSS stays under --budget-gb: peak RSS is linear in the batch, so it is fitted
on the measured batches (--batch and half of it), extrapolated, and the
prediction is then run and stepped down (by 10%, at most 3 runs) until it is
measured under budget.
Every worker also watches its own RSS and stops itself above --hard-limit-gb
(default 9.5), so a wrong guess cannot exhaust a shared machine.

Prints markdown tables (ratios are recompute / plain) and writes the raw
results to benchmarks/out/recompute.json.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, Python puts benchmarks/ first on sys.path, where the
# tokenize benchmark would shadow the standard library's tokenize module.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(HERE, "out")
MARKER = "@@RESULT@@ "
OVER_LIMIT_EXIT = 3

BERT_BASE = dict(
    vocab_size=21128,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    max_position=512,
    dropout_rate=0.1,
    attention_dropout_rate=0.1,
)
MODES = ("plain", "recompute")


# ------------------------------------------------------------------ worker
def _status_kib(field):
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def _watch_rss(limit_kib):
    """Stop this process (exit code 3) when its RSS passes the hard limit."""

    def watch():
        while True:
            if _status_kib("VmRSS") > limit_kib:
                print(f"RSS over the hard limit of {limit_kib // 1024} MiB", flush=True)
                os._exit(OVER_LIMIT_EXIT)
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()


def worker(config):
    _watch_rss(int(config["hard_limit_gb"] * 1024 * 1024))
    import gc

    import keras
    import numpy as np

    sys.path.insert(0, ROOT)
    from nlp4keras.models import build_transformer_model

    keras.utils.set_random_seed(0)
    layers = config["layers"]
    model = build_transformer_model(
        **{**BERT_BASE, "num_hidden_layers": layers}, recompute=config["mode"] == "recompute"
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    batch, seq = config["batch"], config["seq"]
    rng = np.random.default_rng(0)
    ids = rng.integers(1, BERT_BASE["vocab_size"], size=(batch, seq)).astype("int32")
    segments = np.zeros_like(ids)
    targets = rng.normal(size=(batch, seq, BERT_BASE["hidden_size"])).astype("float32")
    built_rss = _status_kib("VmRSS")

    start = time.perf_counter()
    model.train_on_batch([ids, segments], targets)
    first_step = time.perf_counter() - start
    gc.collect()
    before_steps = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS mark to the current RSS
    times, losses = [], []
    for _ in range(config["steps"]):
        start = time.perf_counter()
        loss = model.train_on_batch([ids, segments], targets)
        times.append(time.perf_counter() - start)
        losses.append(float(np.asarray(loss).ravel()[0]))
    peak = _status_kib("VmHWM")
    result = dict(
        config,
        backend=keras.backend.backend(),
        built_rss_mib=built_rss / 1024,
        rss_before_steps_mib=before_steps / 1024,
        peak_rss_mib=peak / 1024,
        step_memory_mib=(peak - before_steps) / 1024,
        first_step_s=first_step,
        step_s=statistics.median(times),
        step_times_s=times,
        losses=losses,
    )
    print(MARKER + json.dumps(result), flush=True)


# ------------------------------------------------------------------ driver
def run_worker(backend, mode, batch, args):
    config = dict(
        mode=mode,
        batch=batch,
        seq=args.seq,
        steps=args.steps,
        layers=args.layers,
        hard_limit_gb=args.hard_limit_gb,
    )
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        MALLOC_MMAP_THRESHOLD_="65536",
        KERAS_HOME=os.environ.get("KERAS_HOME", os.path.join(ROOT, ".keras_home")),
    )
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(config)]
    print(f"  {backend:5} {mode:9} batch {batch:4} ...", end=" ", flush=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode == OVER_LIMIT_EXIT:
        print("over the hard limit")
        return None
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode or not lines:
        raise RuntimeError(f"worker failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(lines[-1][len(MARKER) :])
    print(
        f"step {result['step_s']:.2f} s, step memory {result['step_memory_mib']:.0f} MiB, "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB"
    )
    return result


def largest_batch(backend, mode, measured, args):
    """Largest batch whose peak RSS is measured under the budget: fit peak RSS
    linearly in the batch, run the prediction, step down until it fits."""
    budget = args.budget_gb * 1024
    points = sorted({r["batch"]: r["peak_rss_mib"] for r in measured if r}.items())
    fits = [b for b, p in points if p <= budget]
    if len(points) < 2 or points[-1][1] <= points[0][1]:
        return dict(batch=max(fits, default=None), slope_mib=None, runs=[])
    (b1, p1), (b2, p2) = points[0], points[-1]
    slope = (p2 - p1) / (b2 - b1)
    batch = b1 + math.floor((budget - p1) / slope)
    runs = []
    while batch > max(fits, default=0) and len(runs) < 3:
        result = run_worker(backend, mode, batch, args)
        runs.append(result)
        if result is not None and result["peak_rss_mib"] <= budget:
            return dict(batch=batch, slope_mib=slope, runs=runs)
        batch = math.floor(batch * 0.9)
    return dict(batch=max(fits, default=None), slope_mib=slope, runs=runs)


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"


def print_tables(same_batch, search, args):
    print(f"\n### Same batch ({args.batch} x {args.seq} tokens, {args.layers} layers)\n")
    print("| backend | mode | step time (s) | step memory (MiB) | peak RSS (MiB) |")
    print("|---|---|---:|---:|---:|")
    for backend, results in same_batch.items():
        for mode in MODES:
            r = results[mode]
            print(
                f"| {backend} | {mode} | {r['step_s']:.2f} | {r['step_memory_mib']:.0f} | "
                f"{r['peak_rss_mib']:.0f} |"
            )
        plain, recomputed = results["plain"], results["recompute"]
        print(
            f"| {backend} | **recompute / plain** | "
            f"**{ratio(recomputed['step_s'], plain['step_s'])}** | "
            f"**{ratio(recomputed['step_memory_mib'], plain['step_memory_mib'])}** | "
            f"**{ratio(recomputed['peak_rss_mib'], plain['peak_rss_mib'])}** |"
        )
    if not search:
        return
    print(f"\n### Largest batch under a {args.budget_gb:g} GB peak-RSS budget (seq {args.seq})\n")
    print("| backend | plain | recompute | recompute / plain | peak RSS per sample (MiB) |")
    print("|---|---:|---:|---:|---|")
    for backend, results in search.items():
        plain, recomputed = results["plain"], results["recompute"]
        per_sample = " / ".join(
            "n/a" if results[m]["slope_mib"] is None else f"{results[m]['slope_mib']:.0f}"
            for m in MODES
        )
        print(
            f"| {backend} | {plain['batch']} | {recomputed['batch']} | "
            f"{ratio(recomputed['batch'] or 0, plain['batch'] or 0)} | {per_sample} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--backends", nargs="+", default=["jax", "torch"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--budget-gb", type=float, default=4.0)
    parser.add_argument(
        "--search-backends", nargs="*", help="backends for the budget search (default: all)"
    )
    parser.add_argument("--hard-limit-gb", type=float, default=9.5)
    parser.add_argument(
        "--quick", action="store_true", help="batch 4 x 128 tokens, 2 steps, no search"
    )
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if args.quick:
        args.batch, args.seq, args.steps, args.search_backends = 4, 128, 2, []
    if args.search_backends is None:
        args.search_backends = args.backends

    same_batch, search = {}, {}
    for backend in args.backends:
        print(f"{backend}: same batch")
        same_batch[backend] = {m: run_worker(backend, m, args.batch, args) for m in MODES}
    for backend in args.search_backends:
        print(f"{backend}: budget search ({args.budget_gb:g} GB)")
        search[backend] = {}
        for mode in MODES:
            half = run_worker(backend, mode, max(1, args.batch // 2), args)
            full = same_batch.get(backend, {}).get(mode)
            measured = [half, full or run_worker(backend, mode, args.batch, args)]
            search[backend][mode] = largest_batch(backend, mode, measured, args)
            search[backend][mode]["measured"] = measured
    print_tables(same_batch, search, args)

    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "recompute.json")
    with open(path, "w") as f:
        json.dump(
            dict(
                date=datetime.datetime.now().isoformat(timespec="seconds"),
                machine=dict(platform=platform.platform(), cpus=os.cpu_count()),
                arguments=vars(args),
                model=BERT_BASE,
                same_batch=same_batch,
                budget_search=search,
            ),
            f,
            indent=1,
        )
    print(f"\nwrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
