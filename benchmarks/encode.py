"""Encoder forward-pass benchmark: nlp4keras (JAX, torch) against HF transformers.

Usage (from the repo root):

    python benchmarks/encode.py [--rounds 3] [--quick] [--model .assets/minilm]
        [--family bert,albert,electra,roformer]

Families: bert is all-MiniLM-L6-v2 (--model, real weights); albert, electra
and roformer are random-weight models of the same shape (6 layers, hidden
384, 12 heads, FFN 1536, vocab 30522; embedding size 128 for ALBERT and
ELECTRA, 384 for RoFormer), made once with transformers (fixed seed) and
cached in benchmarks/out/models/<family>/. nlp4keras loads each folder with
build_transformer_model(folder, folder, model=<family>); HF loads it with
AutoModel.from_pretrained (sdpa attention, eager for RoFormer, which has no
sdpa path in transformers).

The driver runs one worker subprocess per (round, family, case,
implementation), since the Keras backend is fixed per process. The order of the implementations
changes from round to round, so slow drifts of a noisy machine hit all of them.
Each worker builds the model, times the first call (JAX compiles there)
separately, warms up, waits (bounded by --max-wait) for other processes to go
quiet, then times N calls with time.perf_counter and prints its samples as
JSON. Alongside each call it records how much CPU other processes used
meanwhile (from /proc/stat), so calls made on a busy machine can be told
apart: the "quiet" columns use only calls during which others used < 0.25
cores. The driver pools the samples over rounds, prints markdown tables and
writes the raw data to benchmarks/out/encode.json. In round 1 the workers also
save their outputs (the sequence output), which the driver checks against HF's
on non-pad tokens, per family and case.
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
    quantile,
    torch_threads,
    versions,
    wait_for_quiet,
)

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
    "hf": ("torch", "transformers AutoModel, sdpa (RoFormer: eager), eval, inference_mode"),
    "jax": ("jax", "nlp4keras on JAX, model.predict_on_batch (jitted)"),
    "torch": ("torch", "nlp4keras on torch, model.predict_on_batch (no_grad)"),
    "torch-call": ("torch", "nlp4keras on torch, model(x, training=False) under inference_mode"),
}

# (warmup calls, timed calls) per case; --quick uses the second table.
REPS = {"b32xs128": (3, 10), "b1xs32": (10, 150), "b32xs128-pad": (3, 10)}
QUICK_REPS = {"b32xs128": (3, 5), "b1xs32": (10, 40), "b32xs128-pad": (3, 5)}

SEED = 1234

# The MiniLM-like shape shared by the random-weight families.
SHAPE = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
    type_vocab_size=2,
)
# name: transformers config class, model class and config arguments (None:
# the --model folder), HF attention implementation, description.
FAMILIES = {
    "bert": dict(
        hf_config=None,
        hf_model=None,
        config={},
        hf_attn="sdpa",
        about="all-MiniLM-L6-v2 (--model), real weights",
    ),
    "albert": dict(
        hf_config="AlbertConfig",
        hf_model="AlbertModel",
        config=dict(SHAPE, embedding_size=128),
        hf_attn="sdpa",
        about="ALBERT, random weights, embedding 128, one shared layer group, gelu_new",
    ),
    "electra": dict(
        hf_config="ElectraConfig",
        hf_model="ElectraModel",
        config=dict(SHAPE, embedding_size=128),
        hf_attn="sdpa",
        about="ELECTRA discriminator, random weights, embedding 128 (+ projection)",
    ),
    "roformer": dict(
        hf_config="RoFormerConfig",
        hf_model="RoFormerModel",
        config=dict(SHAPE, embedding_size=384),
        hf_attn="eager",  # transformers' RoFormer has no sdpa attention
        about="RoFormer, random weights, rotary positions, embedding = hidden",
    ),
}
# A timed call counts as "quiet" when other processes used less than this
# many cores meanwhile.
QUIET_CORES = 0.25
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


def load_runner(impl, family, folder, threads, ids, segments, mask):
    """Build the model; return a zero-argument callable giving a numpy output
    (the sequence output)."""
    if impl == "jax":
        import nlp4keras  # noqa: F401  (keeps the library's backend choice logic)
        from nlp4keras.models import build_transformer_model

        model = build_transformer_model(folder, folder, model=family)
        return lambda: model.predict_on_batch([ids, segments])

    import torch

    torch.set_num_threads(threads)
    if impl == "hf":
        from transformers import AutoModel

        attn = FAMILIES[family]["hf_attn"]
        model = AutoModel.from_pretrained(folder, attn_implementation=attn).eval()
        assert model.config._attn_implementation == attn, model.config._attn_implementation
        tensors = dict(
            input_ids=torch.from_numpy(ids).long(),
            token_type_ids=torch.from_numpy(segments).long(),
            attention_mask=torch.from_numpy(mask).long(),
        )

        def run():
            with torch.inference_mode():
                return model(**tensors).last_hidden_state.numpy()

        return run

    import keras

    import nlp4keras  # noqa: F401
    from nlp4keras.models import build_transformer_model

    model = build_transformer_model(folder, folder, model=family)
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
    run = load_runner(args.worker, args.family, args.model, args.threads, ids, segments, mask)
    load_s = time.perf_counter() - start
    rss_loaded_mb = current_rss_mb()

    start = time.perf_counter()
    out = run()
    first_call_s = time.perf_counter() - start
    warmup_times = []
    for _ in range(args.warmup):
        start = time.perf_counter()
        run()
        warmup_times.append(time.perf_counter() - start)

    # Let a burst of other work on the machine pass (bounded), then re-warm.
    waited_s, busy_before = wait_for_quiet(args.max_wait)
    run()

    # Timed calls, in blocks of >= ~0.3 s; per block, the CPU that other
    # processes used meanwhile (machine busy time minus ours, in cores) tells
    # whether those calls ran on a quiet machine.
    estimate = statistics.median(warmup_times) if warmup_times else first_call_s
    block = max(1, round(0.3 / max(estimate, 1e-6)))
    times, cpu_times, others = [], [], []
    while len(times) < args.reps:
        count = min(block, args.reps - len(times))
        busy_start, own_start, wall_start = (
            machine_busy_s(),
            time.process_time(),
            time.perf_counter(),
        )
        for _ in range(count):
            cpu_start = time.process_time()
            start = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        wall = time.perf_counter() - wall_start
        if busy_start is None:
            others += [None] * count
        else:
            other_s = machine_busy_s() - busy_start - (time.process_time() - own_start)
            others += [max(other_s, 0.0) / wall] * count

    if args.dump:
        np.save(args.dump, np.asarray(out, dtype="float32"))
    result = {
        "family": args.family,
        "impl": args.worker,
        "case": args.case,
        "load_s": load_s,
        "first_call_s": first_call_s,
        "warmup": args.warmup,
        "times_s": times,
        # Process CPU time per call (all threads): cpu/wall well under the
        # thread count means the threads were descheduled (a busy machine).
        "cpu_times_s": cpu_times,
        "others_cores": others,
        "quiet_wait_s": waited_s,
        "busy_cores_before": busy_before,
        "rss_after_load_mb": rss_loaded_mb,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loadavg_start": load_avg,
        "loadavg_end": os.getloadavg(),
        "torch_threads": torch_threads(),
    }
    print(MARKER + json.dumps(result), flush=True)


# --------------------------------------------------------------------- driver


def family_folder(family, args):
    """The HF folder of a family: --model for bert, else the cached random
    model, made (fixed seed) when missing or of another shape."""
    spec = FAMILIES[family]
    if spec["hf_config"] is None:
        return args.model
    folder = os.path.join(OUT_DIR, "models", family)
    try:
        with open(os.path.join(folder, "config.json")) as f:
            saved = json.load(f)
        if all(saved.get(k) == v for k, v in spec["config"].items()) and os.path.exists(
            os.path.join(folder, "model.safetensors")
        ):
            return folder
    except (OSError, ValueError):
        pass
    print(f"making the random {family} model in {folder}", file=sys.stderr, flush=True)
    # In a subprocess, so the driver stays free of torch / transformers.
    code = (
        "import sys, torch, transformers as t\n"
        "torch.manual_seed(int(sys.argv[1]))\n"
        f"config = t.{spec['hf_config']}(**{spec['config']!r})\n"
        f"t.{spec['hf_model']}(config).eval().save_pretrained(sys.argv[2])\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-c", code, str(SEED), folder], cwd=ROOT, env=env, check=True)
    return folder


def run_worker(impl, family, folder, case, warmup, reps, args, dump=None):
    env = dict(os.environ, KERAS_BACKEND=IMPLS[impl][0], HF_HUB_OFFLINE="1")
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        impl,
        "--family",
        family,
        "--case",
        case,
        "--warmup",
        str(warmup),
        "--reps",
        str(reps),
        "--model",
        folder,
        "--threads",
        str(args.threads),
        "--max-wait",
        str(args.max_wait),
    ]
    if dump:
        command += ["--dump", dump]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    raise RuntimeError(
        f"worker {family}/{impl}/{case} failed (rc={proc.returncode}):\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def parity(impls, dumps, mask):
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


def summarize(results, impls, cases):
    """Pool samples over rounds: median, spread, per-round medians, ratios to HF."""
    summary = {}
    for case in cases:
        rows = {}
        for impl in impls:
            runs = [r for r in results if r["impl"] == impl and r["case"] == case]
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
                "p25_ms": 1e3 * quantile(pooled, 0.25),
                "p75_ms": 1e3 * quantile(pooled, 0.75),
                "min_ms": 1e3 * min(pooled),
                "p10_ms": 1e3 * quantile(pooled, 0.10),
                "cpu_per_wall": (sum(c for r in runs for c in r["cpu_times_s"]) / sum(pooled)),
                "round_medians_ms": [1e3 * statistics.median(r["times_s"]) for r in runs],
                "others_cores_median": statistics.median(
                    [o for r in runs for o in r["others_cores"] if o is not None] or [0.0]
                ),
                "quiet_n": len(quiet),
                "quiet_median_ms": 1e3 * statistics.median(quiet) if quiet else None,
                "first_call_s": [r["first_call_s"] for r in runs],
                "load_s": [r["load_s"] for r in runs],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "rss_after_load_mb": max(r["rss_after_load_mb"] or 0 for r in runs),
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
        summary[case] = rows
    return summary


def _fmt(value, spec, suffix=""):
    return "-" if value is None else format(value, spec) + suffix


def headline(summary):
    """Median ms and ratio to HF, one row per (family, case)."""
    rows = [r for by_case in summary.values() for r in by_case.values()]
    impls = list(dict.fromkeys(impl for r in rows for impl in r))
    others = [i for i in impls if i != "hf"]
    lines = [
        "| family | case | " + " | ".join(["HF ms", *(f"{i} ms, ratio" for i in others)]) + " |",
        "|---|---|" + "---:|" * len(impls),
    ]
    for family, by_case in summary.items():
        for case, rows in by_case.items():
            cells = [_fmt(rows.get("hf", {}).get("median_ms"), ".1f")]
            for impl in others:
                r = rows.get(impl)
                if r is None:
                    cells.append("-")
                elif "ratio" in r:
                    cells.append(f"{r['median_ms']:.1f}, **{r['ratio']:.2f}x**")
                else:
                    cells.append(f"{r['median_ms']:.1f}")
            lines.append(f"| {family} | {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(summary, parity_diffs):
    """Four tables: headline, timings, per-worker costs, parity."""
    lines = [
        headline(summary),
        "",
        "| family | case | impl | n | median ms | p10 ms | p25-p75 ms | per-round medians ms "
        "| ratio vs HF | per-round ratios | quiet n | quiet median ms | quiet ratio "
        "| others' cores | cpu/wall |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for family, by_case in summary.items():
        for case, rows in by_case.items():
            for impl, r in rows.items():
                ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
                round_ratios = (
                    ", ".join(f"{x:.2f}" for x in r["round_ratios"]) if "round_ratios" in r else "-"
                )
                lines.append(
                    f"| {family} | {case} | {impl} | {r['n']} | {r['median_ms']:.1f} "
                    f"| {r['p10_ms']:.1f} | {r['p25_ms']:.1f}-{r['p75_ms']:.1f} "
                    f"| {', '.join(f'{x:.1f}' for x in r['round_medians_ms'])} | {ratio} "
                    f"| {round_ratios} | {r['quiet_n']} | {_fmt(r['quiet_median_ms'], '.1f')} "
                    f"| {_fmt(r.get('quiet_ratio'), '.2f', 'x')} "
                    f"| {r['others_cores_median']:.2f} | {r['cpu_per_wall']:.2f} |"
                )
    lines += [
        "",
        "| family | case | impl | first call s (median) | load s (median) "
        "| RSS after load MB | peak RSS MB |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for family, by_case in summary.items():
        for case, rows in by_case.items():
            for impl, r in rows.items():
                lines.append(
                    f"| {family} | {case} | {impl} | {statistics.median(r['first_call_s']):.2f} "
                    f"| {statistics.median(r['load_s']):.2f} | {r['rss_after_load_mb']:.0f} "
                    f"| {r['peak_rss_mb']:.0f} |"
                )
    if parity_diffs:
        lines += [
            "",
            "| family | case | impl | max abs diff vs HF (non-pad tokens) | ok (<= 1e-4) |",
            "|---|---|---|---:|---|",
        ]
        for family, by_case in parity_diffs.items():
            for case, diffs in by_case.items():
                for impl, diff in diffs.items():
                    ok = "yes" if diff <= TOLERANCE else "NO"
                    lines.append(f"| {family} | {case} | {impl} | {diff:.2e} | {ok} |")
    return "\n".join(lines)


def driver(args):
    impls = args.impls.split(",")
    cases = args.cases.split(",")
    families = args.family.split(",")
    unknown = (
        [x for x in impls if x not in IMPLS]
        + [x for x in cases if x not in CASES]
        + [x for x in families if x not in FAMILIES]
    )
    if unknown:
        raise SystemExit(f"unknown impl/case/family: {unknown}")
    reps_table = QUICK_REPS if args.quick else REPS
    os.makedirs(os.path.join(OUT_DIR, "outputs"), exist_ok=True)
    folders = {family: family_folder(family, args) for family in families}
    vocab_sizes = {}
    for family, folder in folders.items():
        with open(os.path.join(folder, "config.json")) as f:
            vocab_sizes[family] = json.load(f)["vocab_size"]

    started = time.time()
    git_before = git_state()
    results = []
    parity_diffs = {family: {} for family in families}
    for index in range(args.rounds):
        order = order_for_round(impls, index)
        for family in families:
            for case in cases:
                warmup, reps = reps_table[case]
                dumps = {}
                for impl in order:
                    dump = None
                    if index == 0 and not args.no_parity:
                        dump = os.path.join(OUT_DIR, "outputs", f"{family}_{impl}_{case}.npy")
                        dumps[impl] = dump
                    result = run_worker(
                        impl, family, folders[family], case, warmup, reps, args, dump=dump
                    )
                    result["round"] = index + 1
                    results.append(result)
                    print(
                        f"round {index + 1} {family:8s} {case:13s} {impl:10s} "
                        f"median {1e3 * statistics.median(result['times_s']):8.1f} ms  "
                        f"first {result['first_call_s']:.2f} s  "
                        f"rss {result['peak_rss_mb']:.0f} MB  "
                        f"waited {result['quiet_wait_s']:.0f} s  others "
                        f"{statistics.median([o or 0.0 for o in result['others_cores']]):.2f} "
                        "cores",
                        file=sys.stderr,
                        flush=True,
                    )
                if dumps and "hf" in dumps:
                    mask = make_inputs(case, vocab_sizes[family])[2]
                    diffs = parity(impls, dumps, mask)
                    parity_diffs[family][case] = diffs
                    for impl, diff in diffs.items():
                        print(
                            f"parity {family} {case} {impl}: max abs diff {diff:.2e}",
                            file=sys.stderr,
                        )
    parity_diffs = {f: d for f, d in parity_diffs.items() if d}

    summary = {
        family: summarize([r for r in results if r["family"] == family], impls, cases)
        for family in families
    }
    table = markdown(summary, parity_diffs)
    print(table)
    data = {
        "date": datetime.date.today().isoformat(),
        "elapsed_s": time.time() - started,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "versions": versions(),
        # The library may change under a long run: the state at start and end.
        "git": {"start": git_before, "end": git_state()},
        "torch_threads": args.threads,
        "args": vars(args),
        "families": {
            f: {
                "folder": folders[f],
                "about": FAMILIES[f]["about"],
                "hf_attn": FAMILIES[f]["hf_attn"],
                "config": FAMILIES[f]["config"],
            }
            for f in families
        },
        "cases": {c: dict(zip(("batch", "seq_len", "padded"), CASES[c])) for c in cases},
        "impls": {i: IMPLS[i][1] for i in impls},
        "reps": {c: reps_table[c] for c in cases},
        "results": results,
        "summary": summary,
        "parity_max_abs_diff": parity_diffs,
    }
    with open(os.path.join(OUT_DIR, "encode.json"), "w") as f:
        json.dump(data, f, indent=1)
    bad = [
        (family, case, impl)
        for family, by_case in parity_diffs.items()
        for case, diffs in by_case.items()
        for impl, diff in diffs.items()
        if diff > TOLERANCE
    ]
    if bad:
        print(f"PARITY FAILED: {bad}", file=sys.stderr)
        return 1
    print(
        f"done in {time.time() - started:.0f} s; raw data in "
        f"{os.path.relpath(os.path.join(OUT_DIR, 'encode.json'), ROOT)}",
        file=sys.stderr,
    )
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer reps, for a smoke test")
    parser.add_argument(
        "--model",
        default=os.path.join(ROOT, ".assets", "minilm"),
        help="HF BERT folder (config.json, model.safetensors) for the bert family",
    )
    parser.add_argument(
        "--family",
        default=",".join(FAMILIES),
        help="comma-separated model families (driver) or the one family (worker): "
        + ", ".join(FAMILIES),
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="torch.set_num_threads for HF and Keras-torch",
    )
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument(
        "--max-wait",
        type=float,
        default=10.0,
        help="seconds a worker may wait for other processes to go quiet before timing (0: no wait)",
    )
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
