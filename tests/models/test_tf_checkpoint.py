"""Google-layout TF checkpoint (committed fixture written by TensorFlow) loads
without TensorFlow and matches transformers' forward of the same weights."""

from pathlib import Path

import numpy as np
import pytest
from helpers import run

from nlp4keras.models import build_transformer_model

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "bert_tf"
CONFIG = FIXTURE / "bert_config.json"
CHECKPOINT = FIXTURE / "bert_model.ckpt"


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(FIXTURE / "expected.npz"))


def build(checkpoint):
    return build_transformer_model(
        CONFIG, checkpoint, with_nsp=True, with_mlm="linear", return_keras_model=False
    )


def test_tf_checkpoint_matches_transformers(expected):
    model = build(str(CHECKPOINT))
    nsp, mlm = run(model.model, [expected["token_ids"], expected["segment_ids"]])
    valid = expected["token_ids"] != 0
    assert np.abs(nsp - expected["nsp_probs"]).max() <= 1e-5
    assert np.abs(mlm - expected["mlm_logits"])[valid].max() <= 1e-5
    # Adam slots and global_step are training state, not unused weights.
    report = model.load_report
    assert report.ok and report.unexpected == []
    assert len(report.loaded) == 46


def test_tf_checkpoint_equals_dict_of_the_same_weights(expected):
    inputs = [expected["token_ids"], expected["segment_ids"]]
    from_tf = run(build(str(CHECKPOINT)).model, inputs)
    from_dict = run(build(dict(np.load(FIXTURE / "weights.npz"))).model, inputs)
    for a, b in zip(from_tf, from_dict):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("path", [CHECKPOINT, str(CHECKPOINT) + ".index", FIXTURE])
def test_prefix_index_or_folder_all_work(path, expected):
    model = build_transformer_model(CONFIG, path, with_pool=True)
    pooled = run(model, [expected["token_ids"], expected["segment_ids"]])
    assert np.abs(pooled - expected["pooled"]).max() <= 1e-5


def test_save_weights_as_checkpoint_round_trip(tmp_path, expected):
    model = build(str(CHECKPOINT))
    prefix = tmp_path / "saved" / "bert_model.ckpt"
    prefix.parent.mkdir()
    model.save_weights_as_checkpoint(str(prefix))
    # Same Google names and layouts as the TensorFlow-written original.
    from nlp4keras.checkpoints.tf_bundle import TFCheckpointReader

    original = dict(np.load(FIXTURE / "weights.npz"))
    with TFCheckpointReader(str(prefix)) as saved:
        assert sorted(saved.keys()) == sorted(original)
        for name, value in original.items():
            np.testing.assert_array_equal(saved.read(name), value)
    reloaded = build(str(prefix))
    inputs = [expected["token_ids"], expected["segment_ids"]]
    for a, b in zip(run(model.model, inputs), run(reloaded.model, inputs)):
        np.testing.assert_array_equal(a, b)
