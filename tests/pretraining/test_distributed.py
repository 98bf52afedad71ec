"""keras.distribution on JAX with CPU devices emulated by XLA: a tiny BERT
MLM trained for a few fixed batches on 1 device, DataParallel on 2 and 4,
ModelParallel on a 2x2 mesh (data 2, model 2), and DataParallel over two processes
joined on localhost (each fed its own rows of PretrainingDataset's batches),
gives the same losses and final weights. Each setup
runs in a subprocess (distributed_run.py): the device count is fixed when
JAX starts. The subprocesses always run JAX, so the module runs in the JAX
lane only."""

import json
import os
import runpy
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from subprocess_jobs import free_port, run_together

if keras.backend.backend() != "jax":
    pytest.skip(
        f"keras.distribution runs on JAX; this lane's backend is {keras.backend.backend()}",
        allow_module_level=True,
    )

from nlp4keras.models import build_transformer_model  # noqa: E402
from nlp4keras.pretraining import PretrainingDataset  # noqa: E402
from nlp4keras.pretraining.distributed import (  # noqa: E402
    check_sharding,
    data_parallel,
    initialize_multi_process,
    layout_map,
    model_parallel,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNNER = HERE / "distributed_run.py"
TIMEOUT = 240  # seconds for all the subprocesses together
LOSS_RTOL = 1e-5  # sharded sums add in another order: float32 rounding only
WEIGHT_ATOL = 1e-5
SPLIT_RUNS = ["data:2", "data:4", "model:2x2"]


def _environment(devices):
    flags = os.environ.get("XLA_FLAGS", "")
    return dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count={devices}".strip(),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: npz} of every setup, started together: 'one' (1 device),
    'split' (4 devices, SPLIT_RUNS) and 'process0' / 'process1' (2 devices
    each, one job of 4 devices)."""
    folder = tmp_path_factory.mktemp("distributed")
    coordinator = f"localhost:{free_port()}"
    joined = ["--coordinator", coordinator, "--num-processes", "2", "--process-id"]
    jobs = {"one": (1, ["single"]), "split": (4, SPLIT_RUNS)}
    for i in range(2):
        jobs[f"process{i}"] = (2, ["data:4", *joined, str(i)])
    commands = {
        name: [sys.executable, str(RUNNER), str(folder / f"{name}.npz"), *arguments]
        for name, (_, arguments) in jobs.items()
    }
    environment = lambda name: _environment(jobs[name][0])  # noqa: E731
    run_together(commands, environment, REPO, TIMEOUT, "distributed_run.py")
    return {name: dict(np.load(folder / f"{name}.npz")) for name in jobs}


def _assert_same_training(result, run, reference, ref_run="single"):
    np.testing.assert_allclose(
        result[f"{run}.losses"], reference[f"{ref_run}.losses"], rtol=LOSS_RTOL, atol=0
    )
    weights = sorted(key for key in reference if key.startswith(f"{ref_run}.w"))
    assert len(weights) > 40  # every weight of the tiny BERT MLM
    for key in weights:
        np.testing.assert_allclose(
            result[key.replace(ref_run, run, 1)], reference[key], rtol=0, atol=WEIGHT_ATOL
        )


def test_training_moves_the_weights(runs):
    # Equal final weights mean something only if training changed them.
    assert runs["one"]["single.moved"] > 100 * WEIGHT_ATOL
    assert np.ptp(runs["one"]["single.losses"]) > 100 * LOSS_RTOL


@pytest.mark.parametrize("run", SPLIT_RUNS)
def test_split_training_matches_one_device(runs, run):
    _assert_same_training(runs["split"], run, runs["one"])


def _shard_shapes(runs, run):
    return json.loads(str(runs["split"][f"{run}.shards"]))


def test_model_parallel_shards_the_kernels(runs):
    shapes = _shard_shapes(runs, "model:2x2")
    hidden, inner, parts = 32, 64, 2
    assert shapes["Embedding-Token/embeddings"] == [200, hidden // parts]
    for layer in range(2):
        attention = f"Transformer-{layer}-MultiHeadSelfAttention/"
        feed_forward = f"Transformer-{layer}-FeedForward/"
        for name in "qkv":
            assert shapes[attention + f"{name}_kernel"] == [hidden, hidden // parts]
            assert shapes[attention + f"{name}_bias"] == [hidden // parts]
        assert shapes[attention + "o_kernel"] == [hidden // parts, hidden]
        assert shapes[feed_forward + "i0_kernel"] == [hidden, inner // parts]
        assert shapes[feed_forward + "i0_bias"] == [inner // parts]
        assert shapes[feed_forward + "o_kernel"] == [inner // parts, hidden]
        assert shapes[feed_forward + "o_bias"] == [hidden]  # added after the all-reduce
    assert shapes["Embedding-Position/embeddings"] == [512, hidden]
    assert shapes["MLM-Norm/gamma"] == [hidden]


def test_data_parallel_replicates_every_weight(runs):
    full = _shard_shapes(runs, "data:4")
    assert all(len(shape) for shape in full.values())
    one_device = {key: runs["one"][key].shape for key in runs["one"] if key.startswith("single.w")}
    assert sorted(tuple(s) for s in full.values()) == sorted(one_device.values())


def test_two_processes_match_one_process(runs):
    # Each process trains on its own rows of the dataset's batches (the
    # default split under the distribution), one process on whole batches.
    first, second = runs["process0"], runs["process1"]
    assert first["data:4.share"].tolist() == [0, 2] and second["data:4.share"].tolist() == [1, 2]
    assert runs["one"]["single.share"].tolist() == runs["split"]["data:4.share"].tolist() == [0, 1]
    np.testing.assert_array_equal(first["data:4.inputs"], runs["one"]["single.inputs"])
    np.testing.assert_array_equal(first["data:4.losses"], second["data:4.losses"])
    _assert_same_training(first, "data:4", runs["split"], ref_run="data:4")
    _assert_same_training(second, "data:4", runs["one"])


# Bad input, in this process (one device: the meshes below are only named).

FAKE_DEVICES = [f"cpu:{i}" for i in range(3)]
FOUR_DEVICES = [f"cpu:{i}" for i in range(4)]
_EXAMPLES = runpy.run_path(str(RUNNER))["FixedExamples"]()  # the runner's 40 examples


def _tiny(hidden, heads):
    return build_transformer_model(
        vocab_size=20, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=heads,
        intermediate_size=2 * hidden, hidden_act="gelu",
    )  # fmt: skip


def test_model_axis_must_divide_the_devices():
    with pytest.raises(ValueError, match=r"model_axis_size` \(2\) must divide .* devices \(3\)"):
        model_parallel(FAKE_DEVICES, model_axis_size=2)


def test_sharded_dimensions_and_heads_must_divide():
    three_way = model_parallel(FAKE_DEVICES, model_axis_size=3)
    with pytest.raises(ValueError, match="splits a dimension of 32 over the 3 devices"):
        check_sharding(_tiny(hidden=32, heads=4), three_way)
    with pytest.raises(ValueError, match="has 4 heads, not a multiple of the 3 devices"):
        check_sharding(_tiny(hidden=48, heads=4), three_way)
    assert "Transformer-0-FeedForward/o_kernel" in check_sharding(_tiny(48, heads=6), three_way)


def test_a_layout_matching_no_weight_is_refused():
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(3, name="dense")(inputs))
    with pytest.raises(ValueError, match="shards no weight of model"):
        check_sharding(plain, model_parallel(FAKE_DEVICES, model_axis_size=3))


def test_bad_arguments_are_named():
    mesh = keras.distribution.DeviceMesh((1, 3), ("batch", "model"), FAKE_DEVICES)
    with pytest.raises(ValueError, match="`model_axis` must be one of 'batch', 'model'"):
        layout_map(mesh, model_axis="tensor")
    with pytest.raises(TypeError, match="`devices` must be a non-empty list"):
        data_parallel("cpu:0")
    with pytest.raises(ValueError, match="`coordinator` must be 'host:port', got 'localhost'"):
        initialize_multi_process("localhost", 2, 0)
    with pytest.raises(ValueError, match=r"`process_id` must be an integer >= 0 and < 2, got 2"):
        initialize_multi_process("localhost:1234", 2, 2)


def _processes(monkeypatch, distribution, count, index):
    """`distribution` as this process (`index`) of a job of `count` sees it."""
    monkeypatch.setattr(distribution, "_num_processes", count)
    monkeypatch.setattr(distribution, "_process_id", index)
    return distribution


@pytest.mark.parametrize(
    "make, processes, process, share",
    [
        (lambda: data_parallel(FAKE_DEVICES[:2]), 2, 1, (1, 2)),  # a replica per process
        (lambda: model_parallel(FAKE_DEVICES[:2], 2), 2, 1, (0, 1)),  # one replica, 2 processes
        (lambda: model_parallel(FOUR_DEVICES, 2), 4, 3, (1, 2)),  # 2 replicas over 4 processes
        (lambda: data_parallel(FAKE_DEVICES[:2]), 1, 0, (0, 1)),
    ],
)
def test_dataset_takes_this_process_share_of_each_batch(monkeypatch, make, processes, process,
                                                        share):  # fmt: skip
    distribution = _processes(monkeypatch, make(), processes, process)
    with distribution.scope():
        dataset = PretrainingDataset(_EXAMPLES, batch_size=4)
        assert (dataset.process_index, dataset.process_count) == share
        if share[1] > 1:
            with pytest.raises(ValueError, match=r"`batch_size` \(3\) must be a multiple of "
                               r"`process_count` \(2\) \(from keras.distribution\)"):  # fmt: skip
                PretrainingDataset(_EXAMPLES, batch_size=3, drop_remainder=True)
    assert PretrainingDataset(_EXAMPLES, batch_size=4).process_count == 1  # no distribution


def test_other_backends_are_refused_with_what_to_use(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(RuntimeError, match="runs Keras on 'torch'.*torch.distributed"):
        data_parallel()
