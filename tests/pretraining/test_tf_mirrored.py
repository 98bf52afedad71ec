"""tf.distribute.MirroredStrategy on TensorFlow with two logical CPU devices:
the tiny `pretraining_model("mlm", ...)` (LAMB: weight decay, layer
adaptation, lr schedule) built and compiled inside the strategy's scope and
trained on fixed batches by `train_on_batch` and by `fit` gives the same
per-step losses and final weights as on one device. The runs happen in one
subprocess (tf_mirrored_run.py): the logical devices must be set before
TensorFlow starts. TF lane only."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from lanes import only_on
from subprocess_jobs import run_together

only_on("tensorflow", "tf.distribute runs on TensorFlow")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TIMEOUT = 240  # seconds
LOSS_RTOL = 1e-5  # the replicas' sums add in another order: float32 rounding only
WEIGHT_ATOL = 1e-5
MIRRORED_RUNS = ["mirrored", "mirrored_fit"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("tf_mirrored") / "runs.npz"
    env = dict(
        os.environ,
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    command = [sys.executable, str(HERE / "tf_mirrored_run.py"), str(out)]
    run_together({"runs": command}, env, REPO, TIMEOUT, "tf_mirrored_run.py")
    return dict(np.load(out))


def _weights(runs, run):
    return [runs[f"{run}.w{i}"] for i in range(len([k for k in runs if k.startswith("one.w")]))]


def test_the_strategy_has_two_replicas(runs):
    assert runs["one.replicas"] == 1
    for run in MIRRORED_RUNS:
        assert runs[f"{run}.replicas"] == 2


def test_training_moves_the_weights(runs):
    # Equal final weights mean something only if training changed them.
    moved = [runs[key] for key in runs if key.startswith("one.moved")]
    assert len(moved) > 40  # every weight of the tiny BERT MLM
    assert max(moved) > 100 * WEIGHT_ATOL
    assert np.ptp(runs["one.losses"]) > 100 * LOSS_RTOL


@pytest.mark.parametrize("run", MIRRORED_RUNS)
def test_mirrored_training_matches_one_device(runs, run):
    np.testing.assert_allclose(runs[f"{run}.losses"], runs["one.losses"], rtol=LOSS_RTOL, atol=0)
    for split, whole in zip(_weights(runs, run), _weights(runs, "one"), strict=True):
        np.testing.assert_allclose(split, whole, rtol=0, atol=WEIGHT_ATOL)
