"""Encoder forward-pass benchmark: nlp4keras (JAX, torch) against HF transformers.

Usage (from the repo root):

    python benchmarks/encode.py [--rounds 3] [--quick] [--model .assets/minilm]

The driver runs one worker subprocess per (round, case, implementation), since
the Keras backend is fixed per process. The order of the implementations
changes from round to round, so slow drifts of a noisy machine hit all of them.
Each worker builds the model, times the first call (JAX compiles there)
separately, warms up, times N calls with time.perf_counter and prints its
samples as JSON. The driver pools the samples over rounds, prints a markdown
table and writes the raw data to benchmarks/out/encode.json. In round 1 the
workers also save their outputs, which the driver checks against HF's on the
non-pad tokens.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(HERE, "out")
MARKER = "@@RESULT@@ "

# name: (batch, seq_len, padded)
CASES = {
    "b32xs128": (32, 128, False),
    "b1xs32": (1, 32, False),
    "b32xs128-pad": (32, 128, True),
}

# name: (KERAS_BACKEND, description)
IMPLS = {
    "hf": ("torch", "transformers BertModel, sdpa, eval, inference_mode"),
    "jax": ("jax", "nlp4keras on JAX, model.predict_on_batch (jitted)"),
    "torch": ("torch", "nlp4keras on torch, model.predict_on_batch (no_grad)"),
    "torch-call": ("torch", "nlp4keras on torch, model(x, training=False) under inference_mode"),
}

# (warmup calls, timed calls) per case; --quick uses the second table.
REPS = {"b32xs128": (3, 15), "b1xs32": (10, 150), "b32xs128-pad": (3, 15)}
QUICK_REPS = {"b32xs128": (3, 5), "b1xs32": (10, 40), "b32xs128-pad": (3, 5)}

SEED = 1234
TOLERANCE = 1e-4


def make_inputs(case, vocab_size):
    """Same token ids / segments / attention mask in every worker (fixed seed)."""
    batch, seq_len, padded = CASES[case]
    rng = np.random.default_rng(SEED)
    ids = rng.integers(1, vocab_size, size=(batch, seq_len)).astype("int32")
    if padded:
        lengths = rng.integers(32, seq_len + 1, size=batch)
    else:
        lengths = np.full(batch, seq_len)
    positions = np.arange(seq_len)[None, :]
    mask = (positions < lengths[:, None]).astype("int32")
    ids = ids * mask  # pad id is 0
    # Sentence-pair layout: segment 1 on the second half of each sequence.
    segments = ((positions >= (lengths[:, None] // 2)) & (mask > 0)).astype("int32")
    return ids, segments, mask


# --------------------------------------------------------------------- worker


def load_runner(impl, folder, threads, ids, segments, mask):
    """Build the model; return a zero-argument callable giving a numpy output."""
    if impl == "jax":
        import nlp4keras  # noqa: F401  (keeps the library's backend choice logic)
        from nlp4keras.models import build_transformer_model

        model = build_transformer_model(os.path.join(folder, "config.json"), folder)
        return lambda: model.predict_on_batch([ids, segments])

    import torch

    torch.set_num_threads(threads)
    if impl == "hf":
        from transformers import BertModel

        model = BertModel.from_pretrained(folder, attn_implementation="sdpa").eval()
        tensors = dict(input_ids=torch.from_numpy(ids).long(),
                       token_type_ids=torch.from_numpy(segments).long(),
                       attention_mask=torch.from_numpy(mask).long())

        def run():
            with torch.inference_mode():
                return model(**tensors).last_hidden_state.numpy()
        return run

    import keras

    import nlp4keras  # noqa: F401
    from nlp4keras.models import build_transformer_model

    model = build_transformer_model(os.path.join(folder, "config.json"), folder)
    if impl == "torch":
        return lambda: model.predict_on_batch([ids, segments])
    # torch-call: plain __call__ on tensors prepared once, outside the timing.
    inputs = [keras.ops.convert_to_tensor(ids), keras.ops.convert_to_tensor(segments)]

    def run():
        with torch.inference_mode():
            return model(inputs, training=False).cpu().numpy()
    return run


def worker(args):
    with open(os.path.join(args.model, "config.json")) as f:
        vocab_size = json.load(f)["vocab_size"]
    ids, segments, mask = make_inputs(args.case, vocab_size)
    load_avg = os.getloadavg()

    start = time.perf_counter()
    run = load_runner(args.worker, args.model, args.threads, ids, segments, mask)
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    out = run()
    first_call_s = time.perf_counter() - start
    for _ in range(args.warmup):
        run()
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)

    if args.dump:
        np.save(args.dump, np.asarray(out, dtype="float32"))
    result = {
        "impl": args.worker,
        "case": args.case,
        "load_s": load_s,
        "first_call_s": first_call_s,
        "warmup": args.warmup,
        "times_s": times,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loadavg_start": load_avg,
        "loadavg_end": os.getloadavg(),
        "torch_threads": _torch_threads(),
    }
    print(MARKER + json.dumps(result), flush=True)


def _torch_threads():
    if "torch" not in sys.modules:
        return None
    return sys.modules["torch"].get_num_threads()


# --------------------------------------------------------------------- driver


def run_worker(impl, case, warmup, reps, args, dump=None):
    env = dict(os.environ, KERAS_BACKEND=IMPLS[impl][0], HF_HUB_OFFLINE="1")
    env.setdefault("KERAS_HOME", os.path.join(ROOT, ".keras_home"))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--case", case,
               "--warmup", str(warmup), "--reps", str(reps), "--model", args.model,
               "--threads", str(args.threads)]
    if dump:
        command += ["--dump", dump]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    raise RuntimeError(f"worker {impl}/{case} failed (rc={proc.returncode}):\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def order_for_round(impls, index):
    """Rotate, and reverse every other round, so each impl moves around."""
    shift = index // 2 % len(impls)
    rotated = impls[shift:] + impls[:shift]
    return rotated[::-1] if index % 2 else rotated


def parity(case, impls, dumps, mask):
    """Max |ours - HF| over non-pad tokens, per impl."""
    reference = np.load(dumps["hf"])
    keep = mask.astype(bool)
    diffs = {}
    for impl in impls:
        if impl == "hf":
            continue
        diff = np.abs(np.load(dumps[impl]) - reference)[keep]
        diffs[impl] = float(diff.max())
    return diffs


def quantile(values, q):
    return float(np.quantile(np.asarray(values), q))


def summarize(results, impls, cases):
    """Pool samples over rounds: median, spread, per-round medians, ratios to HF."""
    summary = {}
    for case in cases:
        rows = {}
        for impl in impls:
            runs = [r for r in results if r["impl"] == impl and r["case"] == case]
            pooled = [t for r in runs for t in r["times_s"]]
            rows[impl] = {
                "n": len(pooled),
                "median_ms": 1e3 * statistics.median(pooled),
                "p25_ms": 1e3 * quantile(pooled, 0.25),
                "p75_ms": 1e3 * quantile(pooled, 0.75),
                "min_ms": 1e3 * min(pooled),
                "round_medians_ms": [1e3 * statistics.median(r["times_s"]) for r in runs],
                "first_call_s": [r["first_call_s"] for r in runs],
                "load_s": [r["load_s"] for r in runs],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            }
        if "hf" in rows:
            hf = rows["hf"]
            for impl, row in rows.items():
                row["ratio"] = row["median_ms"] / hf["median_ms"]
                row["round_ratios"] = [a / b for a, b in zip(row["round_medians_ms"],
                                                             hf["round_medians_ms"])]
        summary[case] = rows
    return summary


def markdown(summary, parity_diffs):
    lines = [
        "| case | impl | n | median ms | p25-p75 ms | per-round medians ms | ratio vs HF "
        "| per-round ratios | first call s | load s | peak RSS MB |",
        "|---|---|---:|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for case, rows in summary.items():
        for impl, r in rows.items():
            ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
            round_ratios = (", ".join(f"{x:.2f}" for x in r["round_ratios"])
                            if "round_ratios" in r else "-")
            lines.append(
                f"| {case} | {impl} | {r['n']} | {r['median_ms']:.1f} "
                f"| {r['p25_ms']:.1f}-{r['p75_ms']:.1f} "
                f"| {', '.join(f'{x:.1f}' for x in r['round_medians_ms'])} | {ratio} "
                f"| {round_ratios} | {statistics.median(r['first_call_s']):.2f} "
                f"| {statistics.median(r['load_s']):.2f} | {r['peak_rss_mb']:.0f} |")
    if parity_diffs:
        lines += ["", "| case | impl | max abs diff vs HF (non-pad tokens) | ok (<= 1e-4) |",
                  "|---|---|---:|---|"]
        for case, diffs in parity_diffs.items():
            for impl, diff in diffs.items():
                lines.append(f"| {case} | {impl} | {diff:.2e} | "
                             f"{'yes' if diff <= TOLERANCE else 'NO'} |")
    return "\n".join(lines)


def versions():
    info = {"python": platform.python_version()}
    for package in ("keras", "jax", "jaxlib", "torch", "transformers", "numpy"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    return info


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def driver(args):
    impls = args.impls.split(",")
    cases = args.cases.split(",")
    unknown = [x for x in impls if x not in IMPLS] + [x for x in cases if x not in CASES]
    if unknown:
        raise SystemExit(f"unknown impl/case: {unknown}")
    reps_table = QUICK_REPS if args.quick else REPS
    os.makedirs(os.path.join(OUT_DIR, "outputs"), exist_ok=True)
    with open(os.path.join(args.model, "config.json")) as f:
        vocab_size = json.load(f)["vocab_size"]

    started = time.time()
    results, parity_diffs = [], {}
    for index in range(args.rounds):
        order = order_for_round(impls, index)
        for case in cases:
            warmup, reps = reps_table[case]
            dumps = {}
            for impl in order:
                dump = None
                if index == 0 and not args.no_parity:
                    dump = os.path.join(OUT_DIR, "outputs", f"{impl}_{case}.npy")
                    dumps[impl] = dump
                result = run_worker(impl, case, warmup, reps, args, dump=dump)
                result["round"] = index + 1
                results.append(result)
                print(f"round {index + 1} {case:13s} {impl:10s} "
                      f"median {1e3 * statistics.median(result['times_s']):8.1f} ms  "
                      f"first {result['first_call_s']:.2f} s  "
                      f"rss {result['peak_rss_mb']:.0f} MB  "
                      f"load {result['loadavg_start'][0]:.2f}", file=sys.stderr, flush=True)
            if dumps and "hf" in dumps:
                mask = make_inputs(case, vocab_size)[2]
                parity_diffs[case] = parity(case, impls, dumps, mask)
                for impl, diff in parity_diffs[case].items():
                    print(f"parity {case} {impl}: max abs diff {diff:.2e}", file=sys.stderr)

    summary = summarize(results, impls, cases)
    table = markdown(summary, parity_diffs)
    print(table)
    data = {
        "date": datetime.date.today().isoformat(),
        "elapsed_s": time.time() - started,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "versions": versions(),
        "torch_threads": args.threads,
        "args": vars(args),
        "cases": {c: dict(zip(("batch", "seq_len", "padded"), CASES[c])) for c in cases},
        "impls": {i: IMPLS[i][1] for i in impls},
        "reps": {c: reps_table[c] for c in cases},
        "results": results,
        "summary": summary,
        "parity_max_abs_diff": parity_diffs,
    }
    with open(os.path.join(OUT_DIR, "encode.json"), "w") as f:
        json.dump(data, f, indent=1)
    bad = [(c, i) for c, d in parity_diffs.items() for i, x in d.items() if x > TOLERANCE]
    if bad:
        print(f"PARITY FAILED: {bad}", file=sys.stderr)
        return 1
    print(f"done in {time.time() - started:.0f} s; raw data in "
          f"{os.path.relpath(os.path.join(OUT_DIR, 'encode.json'), ROOT)}", file=sys.stderr)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer reps, for a smoke test")
    parser.add_argument("--model", default=os.path.join(ROOT, ".assets", "minilm"),
                        help="HF BERT folder (config.json, model.safetensors)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch.set_num_threads for HF and Keras-torch")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--no-parity", action="store_true")
    # Worker mode (used by the driver).
    parser.add_argument("--worker", choices=list(IMPLS), help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model = os.path.abspath(args.model)
    if args.worker:
        worker(args)
        return 0
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
