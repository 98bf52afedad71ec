"""Trains a tiny BERT MLM on fixed batches under keras.distribution setups and
saves each run's per-step losses, final weights and weight shard shapes to
an .npz. test_distributed.py runs it in subprocesses, since the host device
count (XLA_FLAGS) must be set before JAX starts:

    XLA_FLAGS=--xla_force_host_platform_device_count=4 KERAS_BACKEND=jax \\
        python distributed_run.py out.npz single data:2 data:4 model:2x2

A run is `single` (no distribution), `data:N` (DataParallel on the first N
devices) or `model:RxM` (ModelParallel, R replicas of M devices). With
--coordinator, --num-processes and --process-id the process first joins a
multi-process job; PretrainingDataset then yields its own rows of each batch.
"""

import argparse
import json
import time

import numpy as np

STEPS, BATCH, LENGTH, VOCAB, MASK_ID = 5, 8, 16, 200, 1


def tiny_bert():
    from nlp4keras.models import build_transformer_model

    return build_transformer_model(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, hidden_act="gelu", with_mlm=True,
    )  # fmt: skip


def initial_weights(model):
    """The same start in every run, whatever the device layout."""
    rng = np.random.default_rng(1)
    return [
        rng.normal(0, 0.05, w.shape) + (1.0 if w.path.endswith("gamma") else 0.0)
        for w in model.weights
    ]


class FixedExamples:
    """STEPS * BATCH masked-LM examples drawn once (0 in labels: no loss), in
    the interface of MlmExamples: `len()` and `batch(indices, epoch)`."""

    def __init__(self):
        rng = np.random.default_rng(0)
        tokens = rng.integers(2, VOCAB, (STEPS * BATCH, LENGTH))
        masked = rng.random(tokens.shape) < 0.25
        self.inputs = np.where(masked, MASK_ID, tokens).astype("int32")
        self.labels = np.where(masked, tokens, 0).astype("int32")

    def __len__(self):
        return len(self.inputs)

    def batch(self, indices, epoch=0):
        x = self.inputs[indices]
        return [x, np.zeros_like(x)], self.labels[indices]


def batches():
    """The STEPS shuffled batches of epoch 0; under a multi-process
    distribution this process' rows of each (PretrainingDataset's default)."""
    from nlp4keras.pretraining import PretrainingDataset

    dataset = PretrainingDataset(FixedExamples(), batch_size=BATCH, seed=3)
    share = np.array([dataset.process_index, dataset.process_count])
    return [dataset[i] for i in range(len(dataset))], share


def distribution(run):
    import keras

    from nlp4keras.pretraining.distributed import data_parallel, model_parallel

    devices = keras.distribution.list_devices()
    if run == "single":
        return None
    kind, _, size = run.partition(":")
    if kind == "data":
        return data_parallel(devices[: int(size)])
    replicas, model_size = (int(n) for n in size.split("x"))
    return model_parallel(devices[: replicas * model_size], model_axis_size=model_size)


def train(run):
    import keras
    from jax.experimental import multihost_utils

    from nlp4keras.pretraining.distributed import check_sharding

    keras.backend.clear_session()
    keras.distribution.set_distribution(distribution(run))
    model = tiny_bert()
    if run.startswith("model"):
        check_sharding(model)
    start = initial_weights(model)
    for weight, value in zip(model.weights, start):
        weight.assign(value)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0),
    )
    data, share = batches()  # after set_distribution: its split
    losses = [float(model.train_on_batch(x, y)) for x, y in data]
    result = {"losses": np.array(losses), "share": share}
    # the token ids of every process, in process order: the global batches
    result["inputs"] = np.stack(
        [multihost_utils.process_allgather(x[0], tiled=True) for x, _ in data]
    )
    for index, weight in enumerate(model.weights):  # replicated or sharded: whole values
        whole = multihost_utils.process_allgather(weight.value, tiled=True)
        result[f"w{index}"] = np.asarray(whole)
    result["moved"] = np.array(max(abs(result[f"w{i}"] - w).max() for i, w in enumerate(start)))
    shard_shapes = {w.path: w.value.addressable_shards[0].data.shape for w in model.weights}
    result["shards"] = np.array(json.dumps(shard_shapes))
    keras.distribution.set_distribution(None)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--coordinator")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    args = parser.parse_args()
    if args.coordinator:
        from nlp4keras.pretraining.distributed import initialize_multi_process

        initialize_multi_process(args.coordinator, args.num_processes, args.process_id)
    arrays = {}
    for run in args.runs:
        start = time.perf_counter()
        result = train(run)
        result["seconds"] = np.array(time.perf_counter() - start)
        arrays.update({f"{run}.{key}": value for key, value in result.items()})
    np.savez(args.out, **arrays)


if __name__ == "__main__":
    main()
