"""torch DistributedDataParallel on CPU (gloo over localhost): the tiny
`pretraining_model("mlm", ...)` (LAMB) trained by two processes through
`ddp_model` / `ddp_train_step`, each on half of every fixed batch, gives
the same per-step losses and final weights as Keras' own `train_on_batch`
on the whole batches in one process. The three processes (torch_ddp_run.py)
start together. Torch lane only."""

import os
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from lanes import only_on
from subprocess_jobs import free_port, run_together

only_on("torch", "DistributedDataParallel runs on torch")

import torch  # noqa: E402

from nlp4keras.pretraining.torch_ddp import ddp_model, ddp_train_step  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TIMEOUT = 180  # seconds for all the processes together
LOSS_RTOL = 1e-5  # gradients averaged in another order: float32 rounding only
WEIGHT_ATOL = 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: npz} of 'one' (whole batches) and 'rank0' / 'rank1' (DDP)."""
    folder = tmp_path_factory.mktemp("torch_ddp")
    env = dict(
        os.environ,
        KERAS_BACKEND="torch",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    port = str(free_port())
    jobs = {"one": []}
    for rank in range(2):
        jobs[f"rank{rank}"] = ["--port", port, "--rank", str(rank), "--world-size", "2"]
    script = [sys.executable, str(HERE / "torch_ddp_run.py")]
    commands = {name: [*script, str(folder / f"{name}.npz"), *args] for name, args in jobs.items()}
    run_together(commands, env, REPO, TIMEOUT, "torch_ddp_run.py")
    return {name: dict(np.load(folder / f"{name}.npz")) for name in jobs}


def _weights(run):
    return [run[f"w{i}"] for i in range(len([key for key in run if key.startswith("w")]))]


def test_training_moves_the_weights(runs):
    # Equal final weights mean something only if training changed them.
    moved = [runs["one"][key] for key in runs["one"] if key.startswith("moved")]
    assert len(moved) > 40  # every weight of the tiny BERT MLM
    assert max(moved) > 100 * WEIGHT_ATOL
    assert np.ptp(runs["one"]["losses"]) > 100 * LOSS_RTOL


@pytest.mark.parametrize("rank", [0, 1])
def test_ddp_matches_one_process(runs, rank):
    run, whole = runs[f"rank{rank}"], runs["one"]
    np.testing.assert_allclose(run["losses"], whole["losses"], rtol=LOSS_RTOL, atol=0)
    for split, reference in zip(_weights(run), _weights(whole), strict=True):
        np.testing.assert_allclose(split, reference, rtol=0, atol=WEIGHT_ATOL)


def test_the_replicas_stay_equal(runs):
    np.testing.assert_array_equal(runs["rank0"]["losses"], runs["rank1"]["losses"])
    for first, second in zip(_weights(runs["rank0"]), _weights(runs["rank1"]), strict=True):
        np.testing.assert_array_equal(first, second)


# Bad input, in this process (no process group).


def _compiled_dense():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_an_uninitialised_process_group_is_named():
    assert not torch.distributed.is_initialized()
    with pytest.raises(RuntimeError, match=r"ddp_model: torch.distributed is not initialised"):
        ddp_model(_compiled_dense())
    with pytest.raises(RuntimeError, match=r"ddp_train_step: .*init_process_group"):
        ddp_train_step(None, np.zeros((1, 3)), np.zeros((1, 2)))


def test_bad_models_are_refused(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    with pytest.raises(TypeError, match="ddp_model: `model` must be"):
        ddp_model(torch.nn.Linear(3, 2))
    inputs = keras.Input((3,))
    uncompiled = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="ddp_model: compile the model first"):
        ddp_model(uncompiled)
    with pytest.raises(TypeError, match="ddp_train_step: `replicated` must be a "
                       "DistributedDataParallel model"):  # fmt: skip
        ddp_train_step(_compiled_dense(), np.zeros((1, 3)), np.zeros((1, 2)))


def test_other_backends_are_refused(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match="ddp_model: DistributedDataParallel needs Keras on "
                       "torch; this process runs 'jax'"):  # fmt: skip
        ddp_model(_compiled_dense())
