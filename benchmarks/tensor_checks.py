"""Cost of the value checks on model inputs (nlp4keras.tensor_checks): token and
segment ids checked against the vocabulary inside the compiled step (JAX: a
debug callback; TensorFlow: an Assert; torch: an eager check).

Usage (from the repo root, the backend chosen as usual):

    KERAS_BACKEND=jax python benchmarks/tensor_checks.py [--batch 16] [--seq 128] [--repeats 30]

Two identical MiniLM-shaped BERTs (6 layers, hidden 384, 12 heads, vocab 30522,
random weights): one traced with the checks on, one with them off
(`set_tensor_checks(False)` before its first call; a traced step keeps what it
was traced with). Timed, interleaved: `predict_on_batch` (forward) and
`train_on_batch` (Adam, MSE on the sequence output). Prints the medians and
the ratio checks-on / checks-off; lower is better, 1.00 means free.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, Python puts benchmarks/ first on sys.path, where the
# tokenize benchmark would shadow the standard library's tokenize module.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nlp4keras.models import build_transformer_model  # noqa: E402
from nlp4keras.tensor_checks import set_tensor_checks  # noqa: E402

CONFIG = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
    type_vocab_size=2,
    hidden_act="gelu",
)


def make_model(checks, inputs, target):
    set_tensor_checks(checks)
    keras.utils.set_random_seed(0)
    model = build_transformer_model(**CONFIG)
    model.compile(keras.optimizers.Adam(1e-5), "mse")
    model.predict_on_batch(inputs)  # traces with the current setting
    model.train_on_batch(inputs, target)
    return model


def median_seconds(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, CONFIG["vocab_size"], size=(args.batch, args.seq)).astype("int32")
    inputs = [ids, np.zeros_like(ids)]
    target = np.zeros((args.batch, args.seq, CONFIG["hidden_size"]), "float32")
    models = {"on": make_model(True, inputs, target), "off": make_model(False, inputs, target)}
    set_tensor_checks(True)
    results = {}
    for step in ("predict_on_batch", "train_on_batch"):
        samples = {"on": [], "off": []}
        for _ in range(3):  # interleaved rounds, so drift hits both alike
            for name, model in models.items():
                call = getattr(model, step)
                run = (
                    (lambda: call(inputs))
                    if step == "predict_on_batch"
                    else (lambda: call(inputs, target))
                )
                samples[name].append(median_seconds(run, args.repeats // 3 or 1))
        results[step] = {name: min(values) for name, values in samples.items()}
    backend = keras.backend.backend()
    print(f"backend {backend}, batch {args.batch}, seq {args.seq}")
    print("| step | checks on (ms) | checks off (ms) | on / off |")
    print("|---|---|---|---|")
    for step, times in results.items():
        ratio = times["on"] / times["off"]
        print(f"| {step} | {times['on'] * 1e3:.1f} | {times['off'] * 1e3:.1f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
