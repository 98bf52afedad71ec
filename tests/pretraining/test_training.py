"""Pretraining runs on the People's Daily sample with a tiny BERT (2 layers,
hidden 32, the real 21128-token vocab, batches of 8 x 32 tokens): the logged
loss and accuracy are those of the labelled tokens (checked against numpy),
MLM training lowers the loss, LM / UniLM train, and a run stopped by Ctrl-C
and resumed in a new model logs the same losses and ends with the same
weights as one run."""

import json
import os
import signal

import keras
import numpy as np
import pytest

from nlp4keras.pretraining import (
    IGNORED_LABEL,
    LmExamples,
    MaskedAccuracy,
    MlmExamples,
    PretrainingDataset,
    UnilmExamples,
    masked_crossentropy,
    pretrain,
    pretraining_model,
    read_log,
)
from nlp4keras.pretraining import train as train_command

MAXLEN, BATCH, LR = 32, 8, 1e-2
EXAMPLES = {"mlm": MlmExamples, "lm": LmExamples, "unilm": UnilmExamples}


def tiny_model(kind, vocab, seed=0, dropout_rate=0.0, policy=None, recompute=None,
               optimizer="adamw", **options):  # fmt: skip
    keras.utils.set_random_seed(seed)
    options = {"learning_rate": LR, "warmup_steps": 2, **options}
    return pretraining_model(
        kind, vocab_size=vocab.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, hidden_act="gelu", max_position=MAXLEN,
        dropout_rate=dropout_rate, optimizer=optimizer, optimizer_options=options,
        policy=policy, recompute=recompute,
    )  # fmt: skip


def dataset(kind, shards, vocab, seed=0):
    examples = EXAMPLES[kind](shards, vocab, maxlen=MAXLEN, seed=seed)
    return PretrainingDataset(examples, batch_size=BATCH, seed=seed, drop_remainder=True)


def numpy_masked_metrics(logits, labels):
    """Mean cross-entropy and accuracy over the tokens whose label is not 0."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    labelled = labels != IGNORED_LABEL
    picked = np.take_along_axis(log_probs, labels[..., None].astype(np.int64), -1)[..., 0]
    accuracy = (logits.argmax(-1) == labels)[labelled].mean()
    return -picked[labelled].mean(), accuracy


def logits(model, inputs):
    # predict_on_batch: compiled once on JAX (an eager call dispatches op by op)
    return np.asarray(model.predict_on_batch(inputs))


def test_masked_loss_and_accuracy_skip_unlabelled_tokens():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 7, 11)).astype("float32")
    labels = rng.integers(1, 11, size=(3, 7)).astype("int32")
    labels[rng.random((3, 7)) < 0.6] = IGNORED_LABEL
    labels[0, 0] = logits[0, 0].argmax() or 1  # at least one labelled token
    expected_loss, expected_accuracy = numpy_masked_metrics(logits, labels)
    loss = float(masked_crossentropy()(labels, logits))
    metric = MaskedAccuracy()
    metric.update_state(labels, logits)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert float(metric.result()) == pytest.approx(expected_accuracy, rel=1e-6)
    # what the model predicts where there is no label changes nothing
    noise = np.where((labels == IGNORED_LABEL)[..., None], 50 * rng.normal(size=logits.shape), 0)
    assert float(masked_crossentropy()(labels, logits + noise)) == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("kind", ["mlm", "lm", "unilm"])
def test_logged_step_is_the_labelled_token_loss_and_training_lowers_it(
    kind, sample_shards, vocab, tmp_path
):
    model, data = tiny_model(kind, vocab), dataset(kind, sample_shards, vocab)
    inputs, labels = data[0]  # the first step's batch (shuffled order of epoch 0)
    if kind == "lm":
        # packed LM blocks are full but the last of each shard: check the
        # compiled loss and metric on those, which have unlabelled tokens
        examples = data.examples
        short_inputs, short_labels = examples.batch(
            np.flatnonzero(examples.ends - examples.starts < MAXLEN)
        )
        compiled = model.test_on_batch(short_inputs, short_labels, return_dict=True)
        expected = numpy_masked_metrics(logits(model, short_inputs), short_labels)
        assert compiled["loss"] == pytest.approx(expected[0], rel=1e-5)
        assert compiled["accuracy"] == pytest.approx(expected[1], abs=1e-6)
    else:
        assert (labels == IGNORED_LABEL).any()  # the logged loss must skip these
    assert (labels != IGNORED_LABEL).any()
    expected_loss, expected_accuracy = numpy_masked_metrics(logits(model, inputs), labels)
    steps = 20 if kind == "mlm" else 6
    rows = []
    log = pretrain(model, data, tmp_path, steps=steps, save_every=steps, verbose=0,
                   callbacks=[lambda step, row: rows.append(row)])  # fmt: skip
    assert log["loss"][0] == pytest.approx(expected_loss, rel=1e-5)
    assert log["accuracy"][0] == pytest.approx(expected_accuracy, abs=1e-6)
    # one CSV row per step, holding what the loop reported
    assert list(log["step"]) == list(range(1, steps + 1))
    assert np.allclose(log["loss"], [row["loss"] for row in rows], rtol=1e-6)
    assert np.isfinite(log["loss"]).all()
    # warm-up: lr 0 on the first update, full lr from the third
    assert log["lr"][0] == 0 and log["lr"][2] == pytest.approx(LR)
    first, last = log["loss"][:3].mean(), log["loss"][-3:].mean()
    # ln(21128) = 9.96 at the start; learning token frequencies alone takes
    # MLM well below that within 20 steps
    assert last < first - (1.0 if kind == "mlm" else 0.1), (first, last)
    with open(tmp_path / "loss.png", "rb") as file:
        png = file.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert (tmp_path / "model.weights.h5").is_file()


def test_resume_after_ctrl_c_reproduces_the_uninterrupted_run(sample_shards, vocab, tmp_path):
    # dropout on (its seed states are checkpointed) and 2-batch gradient
    # accumulation; the stop at step 3 falls inside an accumulation group
    options = dict(dropout_rate=0.1, grad_accum_steps=2)
    steps = 6
    whole = pretrain(tiny_model("mlm", vocab, **options), dataset("mlm", sample_shards, vocab),
                     tmp_path / "whole", steps=steps, verbose=0, plot=False)  # fmt: skip
    whole_weights = [v.copy() for v in np.load(_checkpoint(tmp_path / "whole", steps)).values()]

    def ctrl_c(step, row):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    stopped = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt, match="stopped at step 3"):
        pretrain(tiny_model("mlm", vocab, **options), dataset("mlm", sample_shards, vocab),
                 stopped, steps=steps, save_every=2, verbose=0, callbacks=[ctrl_c])  # fmt: skip
    assert len(read_log(stopped)["step"]) == 3
    assert sorted(os.listdir(stopped / "checkpoints")) == ["step-000000002", "step-000000003"]
    # a new model, initialised differently, and a new dataset object
    resumed = pretrain(tiny_model("mlm", vocab, seed=1, **options),
                       dataset("mlm", sample_shards, vocab), stopped, steps=steps,
                       resume=True, verbose=0, plot=False)  # fmt: skip
    assert list(resumed["step"]) == list(range(1, steps + 1))
    np.testing.assert_allclose(resumed["loss"], whole["loss"], rtol=1e-5)
    np.testing.assert_allclose(resumed["lr"], whole["lr"], rtol=1e-6)
    resumed_weights = list(np.load(_checkpoint(stopped, steps)).values())
    for a, b in zip(resumed_weights, whole_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(whole["loss"][-1], whole["loss"][3])  # it did train


def test_mixed_float16_recompute_and_lamb_train_and_resume(sample_shards, vocab, tmp_path):
    options = dict(policy="mixed_float16", recompute=True, optimizer="lamb")
    data = dataset("unilm", sample_shards, vocab)
    model = tiny_model("unilm", vocab, **options)
    assert model.get_layer("Transformer-0-FeedForward").compute_dtype == "float16"
    assert model.outputs[0].dtype == "float32"  # the head and the loss stay float32
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert type(model.optimizer.inner_optimizer).__name__ == "PretrainingLAMB"
    log = pretrain(model, data, tmp_path, steps=2, verbose=0, plot=False)
    assert np.isfinite(log["loss"]).all()
    # the loss scale and LAMB's moments come back exactly in a new model
    # (steps=2 again: restored, nothing left to train)
    restored = tiny_model("unilm", vocab, seed=1, **options)
    pretrain(restored, data, tmp_path, steps=2, resume=True, verbose=0, plot=False)
    saved = [np.asarray(v) for v in model.optimizer.variables]
    assert len(saved) == len(restored.optimizer.variables) > 4
    for a, b in zip(saved, restored.optimizer.variables):
        np.testing.assert_array_equal(a, np.asarray(b))
    for a, b in zip(model.variables, restored.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_command_line_trains(sample_shards, vocab, tmp_path, capsys):
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(dict(
        vocab_size=vocab.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, hidden_act="gelu", max_position_embeddings=16, type_vocab_size=2,
    )))  # fmt: skip
    out = tmp_path / "run"
    train_command.main([
        "--config", str(config), "--vocab", vocab.path, "--shards",
        os.path.dirname(sample_shards[0].path), "--out", str(out), "--kind", "lm",
        "--steps", "2", "--batch-size", "4", "--maxlen", "16", "--save-every", "1",
        "--optimizer", "lamb", "--warmup", "1", "--quiet",
    ])  # fmt: skip
    assert capsys.readouterr().out.startswith("step 2: loss ")
    assert sorted(os.listdir(out / "checkpoints")) == ["step-000000001", "step-000000002"]
    log = read_log(out)
    assert list(log["step"]) == [1, 2] and np.allclose(log["lr"], [0, 1e-4], rtol=1e-6)


def _checkpoint(out_dir, step):
    return os.path.join(out_dir, "checkpoints", f"step-{step:09d}", "model.npz")


def test_bad_input(sample_shards, vocab, tmp_path):
    with pytest.raises(ValueError, match="`kind` must be one of 'mlm', 'lm', 'unilm'"):
        pretraining_model("mml", vocab_size=10)
    with pytest.raises(ValueError, match="`optimizer` must be one of 'adamw', 'lamb'"):
        pretraining_model("mlm", optimizer="sgd")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    data = dataset("lm", sample_shards, vocab)
    with pytest.raises(ValueError, match="compile the model first"):
        pretrain(model, data, tmp_path, steps=2)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="`save_every` must be an integer >= 1"):
        pretrain(model, data, tmp_path, steps=2, save_every=0)
    with pytest.raises(TypeError, match="`dataset` must be PretrainingDataset"):
        pretrain(model, [1, 2], tmp_path, steps=2)
    empty = tmp_path / "empty"
    with pytest.raises(FileNotFoundError, match=f"{empty} holds no checkpoint"):
        pretrain(model, data, empty, steps=2, resume=True)
