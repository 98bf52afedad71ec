"""Training-step benchmark: a BERT-base classifier step, nlp4keras (JAX, torch)
against HF transformers + a plain torch loop.

Usage (from the repo root):

    python benchmarks/train_step.py [--rounds 3] [--steps 4] [--quick]

Model: BERT-base shape (12 layers, hidden 768, 12 heads, FFN 3072, vocab
21128, dropout 0.1), the random checkpoint of benchmarks/load.py
(benchmarks/out/load_bert_base/, made when missing) loaded on both sides, the
pooler (Dense 768 + tanh on the first token) and a Dense(2) head on it; sparse
categorical cross-entropy on logits; AdamW (lr 1e-4, weight decay 0.01);
batch 8 x 128 random token ids, segment ids 0, no padding, float32.

- hf: `BertModel.from_pretrained` (sdpa attention) in train mode + `nn.Linear`
  head, `torch.optim.AdamW` (torch's default implementation on CPU); a step
  is forward, loss, backward, `optimizer.step()`, `optimizer.zero_grad()`;
- jax / torch: `build_transformer_model(folder, folder, with_pool=True)`, a
  `keras.layers.Dense(2)` on the pooled output, `model.compile(optimizer=
  keras.optimizers.AdamW(...), loss=SparseCategoricalCrossentropy(
  from_logits=True))` (jit_compile="auto": XLA on JAX, eager on torch); a
  step is `model.train_on_batch`.

One worker subprocess per (round, impl), the order rotated/reversed between
rounds. Each worker loads the model, times the first step separately (JAX
traces and compiles there; every side allocates its optimizer state there),
runs --warmup more steps, waits (bounded by --max-wait) for other processes
to go quiet, then times --steps steps with time.perf_counter, recording for
each how much CPU other processes used meanwhile (from /proc/stat). Memory:
ru_maxrss of the worker (peak RSS, whole life) and the RSS after the model is
loaded (before the first step); "train peak - loaded" is the extra memory of
training (optimizer state, gradients, activations). After the rounds, one
profile worker per impl profiles a step (torch.profiler for hf and torch;
for jax, the first-step compile against the steady step); --quick and
--no-profile skip them. Prints markdown tables and writes all samples to
benchmarks/out/train_step.json.
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
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.dirname(HERE)

sys.path.append(HERE)  # last: the standard library keeps precedence
from bench_common import (  # noqa: E402
    cpu_name,
    current_rss_mb,
    git_state,
    machine_busy_s,
    order_for_round,
    torch_threads,
    versions,
    wait_for_quiet,
)

OUT_DIR = os.path.join(HERE, "out")
MODEL_DIR = os.path.join(OUT_DIR, "load_bert_base")
MARKER = "@@RESULT@@ "

BERT_BASE = dict(
    vocab_size=21128,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=512,
)
BATCH, SEQ, CLASSES = 8, 128, 2
LR, WEIGHT_DECAY = 1e-4, 0.01
SEED = 1234
QUIET_CORES = 0.25

# name: (KERAS_BACKEND, description)
IMPLS = {
    "hf": ("torch", "transformers BertModel + nn.Linear, torch.optim.AdamW loop"),
    "jax": ("jax", "nlp4keras on JAX, model.train_on_batch (XLA-compiled step)"),
    "torch": ("torch", "nlp4keras on torch, model.train_on_batch (eager)"),
}


def make_batch():
    rng = np.random.default_rng(SEED)
    ids = rng.integers(1, BERT_BASE["vocab_size"], size=(BATCH, SEQ)).astype("int32")
    segments = np.zeros_like(ids)
    labels = rng.integers(0, CLASSES, size=(BATCH,)).astype("int32")
    return ids, segments, labels


# --------------------------------------------------------------------- worker


def load_step(impl, folder):
    """Build model + head + optimizer; return a zero-argument step -> loss."""
    ids, segments, labels = make_batch()
    if impl == "hf":
        import torch
        from transformers import BertModel

        torch.manual_seed(SEED)
        bert = BertModel.from_pretrained(folder, attn_implementation="sdpa").train()
        head = torch.nn.Linear(BERT_BASE["hidden_size"], CLASSES)
        parameters = list(bert.parameters()) + list(head.parameters())
        optimizer = torch.optim.AdamW(parameters, lr=LR, weight_decay=WEIGHT_DECAY)
        inputs = dict(
            input_ids=torch.from_numpy(ids).long(),
            token_type_ids=torch.from_numpy(segments).long(),
        )
        targets = torch.from_numpy(labels).long()

        def step():
            logits = head(bert(**inputs).pooler_output)
            loss = torch.nn.functional.cross_entropy(logits, targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.item()

        return step, {"n_params": sum(p.numel() for p in parameters)}

    import keras

    import nlp4keras  # noqa: F401
    from nlp4keras.models import build_transformer_model

    # Not keras.utils.set_random_seed: it imports TensorFlow when installed
    # (seconds and hundreds of MB that would count in load and memory here).
    random.seed(SEED)
    np.random.seed(SEED)
    bert = build_transformer_model(folder, folder, model="bert", with_pool=True)
    # The pooled output: the rank-2 output (robust to whether the sequence
    # output is returned too).
    pooled = [x for x in bert.outputs if len(x.shape) == 2][0]
    logits = keras.layers.Dense(CLASSES, name="head")(pooled)
    model = keras.Model(bert.inputs, logits)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=LR, weight_decay=WEIGHT_DECAY),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    def step():
        loss = model.train_on_batch([ids, segments], labels)
        return float(np.asarray(loss).ravel()[0])

    return step, {"n_params": int(model.count_params()), "model": model}


def worker(args):
    load_avg = os.getloadavg()
    start = time.perf_counter()
    step, info = load_step(args.worker, args.model)
    load_s = time.perf_counter() - start
    rss_loaded = current_rss_mb()

    start = time.perf_counter()
    losses = [step()]
    first_step_s = time.perf_counter() - start
    rss_after_first = current_rss_mb()
    warmup_times = []
    for _ in range(args.warmup):
        start = time.perf_counter()
        losses.append(step())
        warmup_times.append(time.perf_counter() - start)

    waited_s, busy_before = wait_for_quiet(args.max_wait)
    times, cpu_times, others = [], [], []
    for _ in range(args.steps):
        busy_start, cpu_start = machine_busy_s(), time.process_time()
        start = time.perf_counter()
        losses.append(step())
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        times.append(wall)
        cpu_times.append(cpu)
        if busy_start is None:
            others.append(None)
        else:
            others.append(max(machine_busy_s() - busy_start - cpu, 0.0) / wall)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "impl": args.worker,
        "n_params": info["n_params"],
        "load_s": load_s,
        "first_step_s": first_step_s,
        "warmup_times_s": warmup_times,
        "times_s": times,
        "cpu_times_s": cpu_times,
        "others_cores": others,
        "losses": losses,
        "quiet_wait_s": waited_s,
        "busy_cores_before": busy_before,
        "rss_loaded_mb": rss_loaded,
        "rss_after_first_step_mb": rss_after_first,
        "rss_end_mb": current_rss_mb(),
        "peak_rss_mb": peak,
        "loadavg_start": load_avg,
        "loadavg_end": os.getloadavg(),
        "torch_threads": torch_threads(),
    }
    print(MARKER + json.dumps(result), flush=True)


def profile_worker(args):
    """Where a step's time goes: torch.profiler (hf, torch) or compile vs step (jax)."""
    impl = args.worker
    step, info = load_step(impl, args.model)
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    step()
    result = {"impl": impl, "first_step_s": first}
    if impl == "jax":
        # Lowering + XLA compile of the train step, timed apart from the run,
        # through the jitted function Keras made in the first step.
        model = info["model"]
        times = []
        for _ in range(2):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        result["step_s"] = min(times)
        result["compile_estimate_s"] = first - min(times)
        fn = getattr(model, "train_function", None)
        result["train_function"] = type(fn).__name__ if fn is not None else None
    else:
        import torch
        from torch.profiler import ProfilerActivity, profile

        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        result["profiled_step_s"] = time.perf_counter() - start
        start = time.perf_counter()
        step()
        result["step_s"] = time.perf_counter() - start
        events = prof.key_averages()
        # Self CPU time of every op (aten:: and autograd nodes): the kernel
        # side; the rest of the wall time is Python/dispatch above them.
        total_self_us = sum(e.self_cpu_time_total for e in events)
        aten_self_us = sum(e.self_cpu_time_total for e in events if e.key.startswith("aten::"))
        result["ops_self_s"] = total_self_us / 1e6
        result["aten_self_s"] = aten_self_us / 1e6
        result["op_calls"] = sum(e.count for e in events if e.key.startswith("aten::"))
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
        result["top_ops"] = [
            {"op": e.key, "calls": e.count, "self_s": e.self_cpu_time_total / 1e6} for e in top
        ]
        result["torch_threads"] = torch.get_num_threads()
    print(MARKER + json.dumps(result), flush=True)


# --------------------------------------------------------------------- driver


def make_model(folder):
    """Random BERT-base saved by transformers (safetensors), once (as load.py)."""
    if os.path.exists(os.path.join(folder, "model.safetensors")):
        return
    print(f"creating {os.path.relpath(folder, ROOT)} (random BERT-base)", file=sys.stderr)
    code = (
        "import sys, torch\n"
        "from transformers import BertConfig, BertModel\n"
        f"torch.manual_seed({SEED})\n"
        f"model = BertModel(BertConfig(**{BERT_BASE!r}))\n"
        "model.save_pretrained(sys.argv[1], safe_serialization=True)\n"
    )
    subprocess.run([sys.executable, "-c", code, folder], check=True, cwd=ROOT)


def run_worker(impl, args, profile=False):
    env = dict(os.environ, KERAS_BACKEND=IMPLS[impl][0], HF_HUB_OFFLINE="1")
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        impl,
        "--model",
        args.model,
        "--warmup",
        str(args.warmup),
        "--steps",
        str(args.steps),
        "--max-wait",
        str(args.max_wait),
    ]
    if profile:
        command.append("--profile")
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    raise RuntimeError(
        f"worker {impl} failed (rc={proc.returncode}):\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def summarize(results, impls):
    rows = {}
    for impl in impls:
        runs = [r for r in results if r["impl"] == impl]
        if not runs:
            continue
        pooled = [t for r in runs for t in r["times_s"]]
        quiet = [
            t
            for r in runs
            for t, o in zip(r["times_s"], r["others_cores"])
            if o is not None and o < QUIET_CORES
        ]
        rows[impl] = {
            "n": len(pooled),
            "median_ms": 1e3 * statistics.median(pooled),
            "min_ms": 1e3 * min(pooled),
            "p25_ms": 1e3 * float(np.quantile(pooled, 0.25)),
            "p75_ms": 1e3 * float(np.quantile(pooled, 0.75)),
            "round_medians_ms": [1e3 * statistics.median(r["times_s"]) for r in runs],
            "quiet_n": len(quiet),
            "quiet_median_ms": 1e3 * statistics.median(quiet) if quiet else None,
            "others_cores_median": statistics.median(
                [o for r in runs for o in r["others_cores"] if o is not None] or [0.0]
            ),
            "cpu_per_wall": sum(c for r in runs for c in r["cpu_times_s"]) / sum(pooled),
            "first_step_s": statistics.median(r["first_step_s"] for r in runs),
            "load_s": statistics.median(r["load_s"] for r in runs),
            "rss_loaded_mb": statistics.median(r["rss_loaded_mb"] for r in runs),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "train_extra_mb": statistics.median(
                r["peak_rss_mb"] - r["rss_loaded_mb"] for r in runs
            ),
            "n_params": runs[0]["n_params"],
            "first_losses": [r["losses"][0] for r in runs],
        }
    if "hf" in rows:
        hf = rows["hf"]
        for row in rows.values():
            row["ratio"] = row["median_ms"] / hf["median_ms"]
            row["round_ratios"] = [
                a / b for a, b in zip(row["round_medians_ms"], hf["round_medians_ms"])
            ]
            if row["quiet_n"] >= 3 and hf["quiet_n"] >= 3:
                row["quiet_ratio"] = row["quiet_median_ms"] / hf["quiet_median_ms"]
            row["peak_ratio"] = row["peak_rss_mb"] / hf["peak_rss_mb"]
            row["train_extra_ratio"] = row["train_extra_mb"] / hf["train_extra_mb"]
    return rows


def _fmt(value, spec, suffix=""):
    return "-" if value is None else format(value, spec) + suffix


def markdown(rows, profiles):
    lines = [
        "| impl | n | median ms/step | p25-p75 ms | min ms | per-round medians ms "
        "| ratio vs HF | per-round ratios | quiet n | quiet median ms | quiet ratio "
        "| others' cores | cpu/wall |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for impl, r in rows.items():
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
        round_ratios = ", ".join(f"{x:.2f}" for x in r.get("round_ratios", [])) or "-"
        lines.append(
            f"| {impl} | {r['n']} | {r['median_ms']:.0f} | {r['p25_ms']:.0f}-{r['p75_ms']:.0f} "
            f"| {r['min_ms']:.0f} | {', '.join(f'{x:.0f}' for x in r['round_medians_ms'])} "
            f"| {ratio} | {round_ratios} | {r['quiet_n']} "
            f"| {_fmt(r['quiet_median_ms'], '.0f')} | {_fmt(r.get('quiet_ratio'), '.2f', 'x')} "
            f"| {r['others_cores_median']:.2f} | {r['cpu_per_wall']:.2f} |"
        )
    lines += [
        "",
        "| impl | params | load s | first step s | RSS loaded MB | peak RSS MB | peak / HF "
        "| peak - loaded MB | (peak - loaded) / HF | first-step losses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for impl, r in rows.items():
        lines.append(
            f"| {impl} | {r['n_params'] / 1e6:.1f} M | {r['load_s']:.1f} | {r['first_step_s']:.1f} "
            f"| {r['rss_loaded_mb']:.0f} | {r['peak_rss_mb']:.0f} "
            f"| {_fmt(r.get('peak_ratio'), '.2f', 'x')} | {r['train_extra_mb']:.0f} "
            f"| {_fmt(r.get('train_extra_ratio'), '.2f', 'x')} "
            f"| {', '.join(f'{x:.3f}' for x in r['first_losses'])} |"
        )
    for impl, p in profiles.items():
        if impl == "jax":
            lines += [
                "",
                f"Profile, jax: first step {p['first_step_s']:.1f} s, steady step "
                f"{p['step_s']:.2f} s, so trace + XLA compile ~{p['compile_estimate_s']:.1f} s.",
            ]
            continue
        lines += [
            "",
            f"Profile, {impl} (torch.profiler, one step, {p['torch_threads']} threads): "
            f"step {p['step_s']:.2f} s unprofiled, {p['profiled_step_s']:.2f} s profiled; "
            f"self time of all ops {p['ops_self_s']:.2f} s (aten:: {p['aten_self_s']:.2f} s, "
            f"{p['op_calls']} aten calls). Top ops by self time:",
            "",
            "| op | calls | self s |",
            "|---|---:|---:|",
        ]
        for op in p["top_ops"][:8]:
            lines.append(f"| {op['op']} | {op['calls']} | {op['self_s']:.3f} |")
    return "\n".join(lines)


def driver(args):
    impls = args.impls.split(",")
    unknown = [x for x in impls if x not in IMPLS]
    if unknown:
        raise SystemExit(f"unknown impl: {unknown}")
    os.makedirs(OUT_DIR, exist_ok=True)
    make_model(args.model)
    started = time.time()
    git_before = git_state()
    results = []
    for index in range(args.rounds):
        for impl in order_for_round(impls, index):
            result = run_worker(impl, args)
            result["round"] = index + 1
            results.append(result)
            print(
                f"round {index + 1} {impl:6s} median "
                f"{1e3 * statistics.median(result['times_s']):7.0f} ms/step  "
                f"first {result['first_step_s']:.1f} s  load {result['load_s']:.1f} s  "
                f"rss loaded {result['rss_loaded_mb']:.0f} peak {result['peak_rss_mb']:.0f} MB  "
                f"waited {result['quiet_wait_s']:.0f} s  others "
                f"{statistics.median([o or 0.0 for o in result['others_cores']]):.2f} cores",
                file=sys.stderr,
                flush=True,
            )
    profiles = {}
    if not args.quick and not args.no_profile:
        for impl in impls:
            wait_for_quiet(args.max_wait)
            profiles[impl] = run_worker(impl, args, profile=True)
            print(f"profiled {impl}", file=sys.stderr, flush=True)

    rows = summarize(results, impls)
    print(markdown(rows, profiles))
    data = {
        "date": datetime.date.today().isoformat(),
        "elapsed_s": time.time() - started,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "versions": versions(),
        "git": {"start": git_before, "end": git_state()},
        "args": vars(args),
        "model": dict(BERT_BASE, folder=os.path.relpath(args.model, ROOT)),
        "batch": {"batch": BATCH, "seq_len": SEQ, "classes": CLASSES},
        "optimizer": {"name": "AdamW", "lr": LR, "weight_decay": WEIGHT_DECAY},
        "impls": {i: IMPLS[i][1] for i in impls},
        "results": results,
        "summary": rows,
        "profiles": profiles,
    }
    with open(os.path.join(OUT_DIR, "train_step.json"), "w") as f:
        json.dump(data, f, indent=1)
    print(
        f"done in {time.time() - started:.0f} s; raw data in "
        f"{os.path.relpath(os.path.join(OUT_DIR, 'train_step.json'), ROOT)}",
        file=sys.stderr,
    )
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round, 3 steps, no profile")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per worker")
    parser.add_argument("--warmup", type=int, default=1, help="steps after the first, untimed")
    parser.add_argument("--model", default=MODEL_DIR, help="HF BERT folder (made when missing)")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument(
        "--max-wait",
        type=float,
        default=10.0,
        help="seconds a worker may wait for other processes to go quiet before timing",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the profile workers")
    parser.add_argument("--worker", choices=list(IMPLS), help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model = os.path.abspath(args.model)
    if args.worker:
        if args.profile:
            profile_worker(args)
        else:
            worker(args)
        return 0
    if args.quick:
        args.rounds, args.steps = 1, 3
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
