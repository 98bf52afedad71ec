"""Load benchmark: time from process start to a BERT-base model ready, nlp4keras
(JAX, torch) against HF transformers.

Usage (from the repo root):

    python benchmarks/load.py [--rounds 3] [--quick] [--impls hf,jax,torch,...]

The model is BERT-base shaped (12 layers, hidden 768, 12 heads, FFN 3072,
vocab 21128, 512 positions) with random weights, made once by transformers
(`BertModel(BertConfig(...)).save_pretrained`, safetensors) into
benchmarks/out/load_bert_base/ (about 410 MB; reused when present).

One worker subprocess per (round, impl); the order of the impls rotates and
reverses between rounds. Before each spawn the driver waits (bounded by
--max-wait) for other processes to go quiet, then takes a CLOCK_MONOTONIC
timestamp and starts the worker; the worker reads the same clock at its first
line and after each phase. "total" = spawn -> model ready and one forward on
a 1 x 16 input done. Phases:

- startup: spawn -> the worker script's first line (fork/exec, interpreter,
  site and the nlp4keras.pth start-up hook);
- imports: this script's standard-library imports and argument parsing,
  numpy, the backend (torch / jax), keras and nlp4keras.models, or torch and
  `transformers.BertModel`;
- build: the Keras model with its random initial values (split impls);
- load: checkpoint read + assign (split impls); for the one-call impls
  (hf, jax, torch) "build+load" is `from_pretrained` /
  `build_transformer_model(folder, folder)`;
- forward: the first predict_on_batch / HF call (JAX traces and compiles
  there); the second call's time is recorded too (not part of the total).

The split workers also time, with a wrapper, how long nlp4keras'
TruncatedNormal initializer spends drawing (the "draws" column, part of
build). The "-zeroinit" impls replace `nlp4keras.models.transformer.
TruncatedNormal` with an initializer that returns zeros (a measurement trick
in this script only), so build minus that build is the cost of the random
draws. After the rounds, one cProfile worker per backend breaks down the
build (skipped by --quick and --no-profile).

The page cache is warmed once before the rounds (the checkpoint file and
every stack's imports), so all workers read warm files. Prints markdown
tables and writes all samples to benchmarks/out/load.json.
"""

import time

T_WORKER_START = time.clock_gettime(time.CLOCK_MONOTONIC)

import os  # noqa: E402
import sys  # noqa: E402

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
BATCH, SEQ = 1, 16

# name: (KERAS_BACKEND, description)
IMPLS = {
    "hf": ("torch", "transformers BertModel.from_pretrained(folder) + one call"),
    "jax": ("jax", "build_transformer_model(folder, folder) + predict_on_batch"),
    "torch": ("torch", "build_transformer_model(folder, folder) + predict_on_batch"),
    "jax-split": ("jax", "as jax, build then load_weights_from_checkpoint, timed apart"),
    "torch-split": ("torch", "as torch, build then load_weights_from_checkpoint, timed apart"),
    "jax-zeroinit": ("jax", "as jax-split, TruncatedNormal patched to return zeros"),
    "torch-zeroinit": ("torch", "as torch-split, TruncatedNormal patched to return zeros"),
    "hf-random": ("torch", "transformers BertModel(config) (torch's random init) + one call"),
}
PHASES = ("startup", "imports", "build", "load", "forward")
SEED = 1234
QUIET_CORES = 0.25


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# --------------------------------------------------------------------- worker


def _inputs():
    import numpy as np

    rng = np.random.default_rng(SEED)
    ids = rng.integers(1, BERT_BASE["vocab_size"], size=(BATCH, SEQ)).astype("int32")
    segments = np.zeros_like(ids)
    segments[:, SEQ // 2 :] = 1
    return ids, segments


def _patch_draw_timer(store):
    """Wrap nlp4keras' TruncatedNormal.__call__ to add up its time."""
    from nlp4keras import initializers

    cls = initializers.TruncatedNormal
    original = cls.__call__

    def timed(self, shape, dtype=None):
        start = now()
        try:
            return original(self, shape, dtype)
        finally:
            store["draws"] = store.get("draws", 0.0) + now() - start
            store["draw_calls"] = store.get("draw_calls", 0) + 1

    cls.__call__ = timed


def _patch_zero_init():
    """Make the model's TruncatedNormal return zeros (measurement trick)."""
    import keras
    import numpy as np

    import nlp4keras.models.transformer as transformer

    class ZeroInit(keras.initializers.Initializer):
        def __init__(self, stddev=0.02, seed=None):
            self.stddev, self.seed = stddev, seed

        def __call__(self, shape, dtype=None):
            # Same host -> tensor conversion as TruncatedNormal, no draws.
            values = np.zeros(shape, dtype="float32")
            return keras.ops.convert_to_tensor(values, dtype=dtype or keras.config.floatx())

        def get_config(self):
            return {"stddev": self.stddev, "seed": self.seed}

    if not hasattr(transformer, "TruncatedNormal"):
        raise RuntimeError("nlp4keras.models.transformer no longer uses TruncatedNormal")
    transformer.TruncatedNormal = ZeroInit


def worker(args):
    main_start = T_WORKER_START  # the script's first line
    impl, folder = args.worker, args.model
    marks = {"spawn": args.spawn_clock, "main": main_start}
    extra = {}

    if impl.startswith("hf"):
        import numpy as np  # noqa: F401  (keras workers pay for it too)
        import torch

        marks["backend"] = now()
        from transformers import BertConfig, BertModel

        marks["imports"] = now()
        if impl == "hf":
            model = BertModel.from_pretrained(folder).eval()
        else:
            torch.manual_seed(SEED)
            model = BertModel(BertConfig.from_pretrained(folder)).eval()
        marks["build"] = marks["load"] = now()
        ids, segments = _inputs()
        tensors = dict(
            input_ids=torch.from_numpy(ids).long(),
            token_type_ids=torch.from_numpy(segments).long(),
            attention_mask=torch.ones(BATCH, SEQ, dtype=torch.long),
        )

        def run():
            with torch.inference_mode():
                return model(**tensors).last_hidden_state.numpy()

    else:
        import numpy as np  # noqa: F401

        backend = os.environ["KERAS_BACKEND"]
        __import__(backend)
        marks["backend"] = now()
        import keras  # noqa: F401

        marks["keras"] = now()
        extra["jax_imported_by_keras"] = "jax" in sys.modules
        from nlp4keras.models import build_transformer_model

        marks["imports"] = now()
        timers = {}
        if impl.endswith("-zeroinit"):
            _patch_zero_init()
        elif impl.endswith("-split"):
            _patch_draw_timer(timers)
        if impl in ("jax", "torch"):
            model = build_transformer_model(folder, folder, model="bert")
            marks["build"] = marks["load"] = now()
        else:
            transformer = build_transformer_model(folder, model="bert", return_keras_model=False)
            marks["build"] = now()
            transformer.load_weights_from_checkpoint(folder)
            marks["load"] = now()
            model = transformer.model
        extra.update(timers)
        ids, segments = _inputs()

        def run():
            return model.predict_on_batch([ids, segments])

    out = run()
    marks["forward"] = now()
    start = now()
    run()
    extra["second_forward_s"] = now() - start
    extra["output_abs_mean"] = float(abs(out).mean())

    spawn = marks["spawn"]
    phases = {
        "startup": main_start - spawn if spawn else None,
        "imports": marks["imports"] - main_start,
        "build": marks["build"] - marks["imports"],
        "load": marks["load"] - marks["build"],
        "forward": marks["forward"] - marks["load"],
    }
    fused = impl in ("hf", "jax", "torch", "hf-random")
    if fused:  # build and load in one call: report it as "build+load"
        phases["build+load"] = phases.pop("build") + phases.pop("load")
    result = {
        "impl": impl,
        "total_s": marks["forward"] - spawn if spawn else None,
        "ready_from_main_s": marks["forward"] - main_start,
        "phases_s": phases,
        "marks": {k: v - main_start for k, v in marks.items() if v is not None},
        "rss_ready_mb": current_rss_mb(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_s": time.process_time(),
        "torch_threads": torch_threads(),
        **extra,
    }
    print(MARKER + json.dumps(result), flush=True)


def profile_worker(args):
    """cProfile the build and the checkpoint load; aggregate by bucket."""
    import cProfile

    from nlp4keras.models import build_transformer_model

    profiler = cProfile.Profile()
    start = now()
    profiler.enable()
    transformer = build_transformer_model(args.model, model="bert", return_keras_model=False)
    profiler.disable()
    build_s = now() - start
    build = _profile_summary(profiler, build_s)

    profiler = cProfile.Profile()
    start = now()
    profiler.enable()
    transformer.load_weights_from_checkpoint(args.model)
    profiler.disable()
    load = _profile_summary(profiler, now() - start)

    ids, segments = _inputs()
    start = now()
    transformer.model.predict_on_batch([ids, segments])
    first = now() - start
    start = now()
    transformer.model.predict_on_batch([ids, segments])
    second = now() - start
    result = {
        "backend": os.environ["KERAS_BACKEND"],
        "build": build,
        "load": load,
        "first_forward_s": first,
        "second_forward_s": second,
    }
    print(MARKER + json.dumps(result), flush=True)


# Buckets of the build profile: (label, file suffix, function name); cumulative time.
BUCKETS = [
    ("TruncatedNormal draws (nlp4keras.initializers)", "nlp4keras/initializers.py", "__call__"),
    ("keras zeros/ones initializers", "constant_initializers.py", "__call__"),
    ("all variable creation (add_weight)", "layers/layer.py", "add_weight"),
    ("Layer.__call__ (symbolic, incl. build)", "layers/layer.py", "__call__"),
    ("layer builds (_maybe_build)", "layers/layer.py", "_maybe_build"),
    ("output specs (Layer.symbolic_call)", "layers/layer.py", "symbolic_call"),
    ("keras.Model(...) functional graph", "functional.py", "__init__"),
    ("safetensors read", "safetensors_io.py", "read"),
    ("assign_from_checkpoint", "loading.py", "assign_from_checkpoint"),
    ("variable.assign", "common/variables.py", "assign"),
]


def _profile_summary(profiler, wall_s):
    import pstats

    stats = pstats.Stats(profiler).stats
    buckets = {}
    for label, suffix, name in BUCKETS:
        total = 0.0
        for (filename, _, function), (_, _, _, cumtime, callers) in stats.items():
            if function != name or not filename.endswith(suffix):
                continue
            # Count only outermost calls (callers outside the same function).
            outer = sum(
                v[3] for k, v in callers.items() if not (k[0] == filename and k[2] == function)
            )
            total += outer if callers else cumtime
        if total:
            buckets[label] = total
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
    return {
        "wall_s": wall_s,
        "profiled_s": sum(v[2] for v in stats.values()),
        "buckets_s": buckets,
        "top_tottime": [
            {
                "function": f"{os.path.relpath(k[0], ROOT) if k[0].startswith(ROOT) else k[0]}"
                f":{k[1]}({k[2]})",
                "calls": v[1],
                "tottime_s": v[2],
                "cumtime_s": v[3],
            }
            for k, v in top
        ],
    }


# --------------------------------------------------------------------- driver


def make_model(folder):
    """Random BERT-base saved by transformers (safetensors), once."""
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


def warm_page_cache(folder, impls):
    """Read the checkpoint and import each stack once, untimed."""
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        while f.read(1 << 24):
            pass
    for backend in sorted({IMPLS[i][0] for i in impls if not i.startswith("hf")}):
        env = dict(os.environ, KERAS_BACKEND=backend)
        code = "import keras, nlp4keras.models"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    if any(i.startswith("hf") for i in impls):
        code = "from transformers import BertModel"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True)


def _spawn(command, env):
    """Run a worker; return (stdout, stderr, rc, wall_s, others' cores)."""
    busy_start = machine_busy_s()
    children_start = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = now()
    env = dict(env, LOAD_BENCH_SPAWN=repr(start))
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = now() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (children.ru_utime - children_start.ru_utime) + (
        children.ru_stime - children_start.ru_stime
    )
    others = None
    if busy_start is not None:
        others = max(machine_busy_s() - busy_start - child_cpu, 0.0) / wall
    return proc, wall, others, child_cpu


def run_worker(impl, args, profile=False):
    env = dict(os.environ, KERAS_BACKEND=IMPLS[impl][0], HF_HUB_OFFLINE="1")
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    command = [sys.executable, os.path.abspath(__file__), "--model", args.model]
    command += ["--profile-worker"] if profile else ["--worker", impl]
    proc, wall, others, child_cpu = _spawn(command, env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER) :])
            result.update(process_wall_s=wall, others_cores=others, process_cpu_s=child_cpu)
            return result
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
        totals = [r["total_s"] for r in runs]
        phase_names = [p for p in (*PHASES, "build+load") if p in runs[0]["phases_s"]]
        row = {
            "n": len(runs),
            "total_median_s": statistics.median(totals),
            "total_min_s": min(totals),
            "total_max_s": max(totals),
            "round_totals_s": totals,
            "phases_median_s": {
                p: statistics.median(r["phases_s"][p] for r in runs) for p in phase_names
            },
            "second_forward_median_s": statistics.median(r["second_forward_s"] for r in runs),
            "others_cores_median": statistics.median(
                [r["others_cores"] for r in runs if r["others_cores"] is not None] or [0.0]
            ),
            "cpu_per_wall": statistics.median(
                r["cpu_s"] / (r["ready_from_main_s"] + 1e-9) for r in runs
            ),
            "rss_ready_mb": statistics.median(r["rss_ready_mb"] or 0 for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        }
        if "draws" in runs[0]:
            row["draws_median_s"] = statistics.median(r["draws"] for r in runs)
        rows[impl] = row
    if "hf" in rows:
        hf = rows["hf"]
        for impl, row in rows.items():
            row["ratio"] = row["total_median_s"] / hf["total_median_s"]
            # Per round: against the HF worker of the same round.
            row["round_ratios"] = [
                r["total_s"] / h["total_s"]
                for r, h in zip(
                    [x for x in results if x["impl"] == impl],
                    [x for x in results if x["impl"] == "hf"],
                )
            ]
    return rows


def _fmt(value, spec="0.2f"):
    return "-" if value is None else format(value, spec)


def markdown(rows, profiles):
    lines = [
        "| impl | n | total s (median) | min-max s | per-round s | ratio vs HF "
        "| per-round ratios | others' cores | RSS ready MB | peak RSS MB |",
        "|---|---:|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for impl, r in rows.items():
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
        round_ratios = ", ".join(f"{x:.2f}" for x in r.get("round_ratios", [])) or "-"
        lines.append(
            f"| {impl} | {r['n']} | {r['total_median_s']:.2f} "
            f"| {r['total_min_s']:.2f}-{r['total_max_s']:.2f} "
            f"| {', '.join(f'{x:.2f}' for x in r['round_totals_s'])} | {ratio} | {round_ratios} "
            f"| {r['others_cores_median']:.2f} | {r['rss_ready_mb']:.0f} | {r['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "Phases (median s over rounds; build+load = one call for hf/jax/torch/hf-random; "
        "draws = time inside TruncatedNormal, part of build):",
        "",
        "| impl | startup | imports | build | load | build+load | draws "
        "| first forward | second forward | total |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for impl, r in rows.items():
        p = r["phases_median_s"]
        lines.append(
            f"| {impl} | {_fmt(p.get('startup'))} | {_fmt(p.get('imports'))} "
            f"| {_fmt(p.get('build'))} | {_fmt(p.get('load'))} | {_fmt(p.get('build+load'))} "
            f"| {_fmt(r.get('draws_median_s'))} | {_fmt(p.get('forward'))} "
            f"| {_fmt(r['second_forward_median_s'], '.3f')} | {r['total_median_s']:.2f} |"
        )
    for backend, prof in profiles.items():
        lines += [
            "",
            f"cProfile, {backend}: build {prof['build']['wall_s']:.2f} s "
            f"(load {prof['load']['wall_s']:.2f} s, first forward "
            f"{prof['first_forward_s']:.2f} s, second {prof['second_forward_s']:.3f} s; "
            "profiled, so slower than the timed runs); cumulative s, overlapping buckets:",
            "",
            "| phase | bucket | s | share of phase |",
            "|---|---|---:|---:|",
        ]
        for phase in ("build", "load"):
            wall = prof[phase]["wall_s"]
            for label, seconds in prof[phase]["buckets_s"].items():
                lines.append(f"| {phase} | {label} | {seconds:.2f} | {seconds / wall:.0%} |")
            if phase == "build":
                rest = wall - prof[phase]["buckets_s"].get("all variable creation (add_weight)", 0)
                lines.append(
                    f"| build | rest: everything but variable creation | {rest:.2f} "
                    f"| {rest / wall:.0%} |"
                )
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
    warm_page_cache(args.model, impls)

    results = []
    for index in range(args.rounds):
        for impl in order_for_round(impls, index):
            waited, busy = wait_for_quiet(args.max_wait)
            result = run_worker(impl, args)
            result.update(round=index + 1, quiet_wait_s=waited, busy_cores_before=busy)
            results.append(result)
            phases = "  ".join(f"{k} {v:.2f}" for k, v in result["phases_s"].items())
            print(
                f"round {index + 1} {impl:15s} total {result['total_s']:6.2f} s  {phases}  "
                f"waited {waited:.0f} s  others {result['others_cores'] or 0:.2f} cores",
                file=sys.stderr,
                flush=True,
            )

    profiles = {}
    if not args.quick and not args.no_profile:
        for backend in sorted({IMPLS[i][0] for i in impls if not i.startswith("hf")}):
            wait_for_quiet(args.max_wait)
            profiles[backend] = run_worker(backend, args, profile=True)
            print(f"profiled {backend}", file=sys.stderr, flush=True)

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
        "input": {"batch": BATCH, "seq_len": SEQ},
        "impls": {i: IMPLS[i][1] for i in impls},
        "results": results,
        "summary": rows,
        "profiles": profiles,
    }
    with open(os.path.join(OUT_DIR, "load.json"), "w") as f:
        json.dump(data, f, indent=1)
    print(
        f"done in {time.time() - started:.0f} s; raw data in "
        f"{os.path.relpath(os.path.join(OUT_DIR, 'load.json'), ROOT)}",
        file=sys.stderr,
    )
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round, no profile")
    parser.add_argument("--model", default=MODEL_DIR, help="HF BERT folder (made when missing)")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument(
        "--max-wait",
        type=float,
        default=10.0,
        help="seconds to wait for other processes to go quiet before each worker (0: no wait)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile workers")
    parser.add_argument("--worker", choices=list(IMPLS), help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model = os.path.abspath(args.model)
    if args.worker or args.profile_worker:
        spawn = os.environ.get("LOAD_BENCH_SPAWN")
        args.spawn_clock = float(spawn) if spawn else None
        if args.profile_worker:
            profile_worker(args)
        else:
            worker(args)
        return 0
    if args.quick:
        args.rounds = 1
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
