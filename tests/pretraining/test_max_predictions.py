"""MLM with the head at `max_predictions` gathered positions only (Google
BERT's max_predictions_per_seq): the examples mask as without it and give
the labelled positions; the model's loss, accuracy and one SGD step's
updated weights equal the full-position model's on the same batch and
weights (float32 tolerance: rtol 1e-5 on the loss, atol 1e-6 + rtol 1e-5 on
logits and weights, observed ~1e-7); weights load across both heads and
into `build_transformer_model(with_mlm=True)`; the command line trains it
under mixed_float16 with recompute."""

import json
import os

import keras
import numpy as np
import pytest

from nlp4keras.models import build_transformer_model
from nlp4keras.pretraining import (
    IGNORED_LABEL,
    MlmExamples,
    PretrainingDataset,
    pretrain,
    pretraining_model,
    read_log,
)
from nlp4keras.pretraining import train as train_command

MAXLEN, BATCH = 32, 8
MOST = 5  # floor(0.15 * (32 - 2)) + 1
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
            hidden_act="gelu", max_position=MAXLEN, dropout_rate=0.0)  # fmt: skip


def tiny_model(vocab, max_predictions=None, **options):
    keras.utils.set_random_seed(0)
    return pretraining_model("mlm", vocab_size=vocab.vocab_size, max_predictions=max_predictions,
                             optimizer=keras.optimizers.SGD(learning_rate=1.0),
                             **TINY, **options)  # fmt: skip


def both_batches(shards, vocab, indices=range(BATCH)):
    """The same examples as full-length labels and as gathered slots."""
    full = MlmExamples(shards, vocab, maxlen=MAXLEN, seed=5)
    gathered = MlmExamples(shards, vocab, maxlen=MAXLEN, seed=5, max_predictions=MOST)
    return full.batch(indices, epoch=1), gathered.batch(indices, epoch=1)


def test_examples_mask_alike_and_give_the_labelled_positions(sample_shards, vocab):
    full = MlmExamples(sample_shards, vocab, maxlen=MAXLEN, seed=3)
    gathered = MlmExamples(sample_shards, vocab, maxlen=MAXLEN, seed=3, max_predictions=MOST + 2)
    assert full.max_predictions is None and gathered.most_masked() == MOST
    counts = []
    for index in range(0, len(full), 5):
        for epoch in (0, 1):
            token_ids, segment_ids, labels = full.example(index, epoch)
            *same, positions, slot_labels = gathered.example(index, epoch)
            np.testing.assert_array_equal(same[0], token_ids)
            np.testing.assert_array_equal(same[1], segment_ids)
            assert positions.shape == slot_labels.shape == (MOST + 2,)
            assert positions.dtype == slot_labels.dtype == np.int32
            n = int((labels != IGNORED_LABEL).sum())
            counts.append(n)
            # the labelled tokens in order, then empty slots (position 0, label 0)
            np.testing.assert_array_equal(positions[:n], np.flatnonzero(labels))
            np.testing.assert_array_equal(slot_labels[:n], labels[positions[:n]])
            assert (slot_labels[:n] != IGNORED_LABEL).all()
            assert not positions[n:].any() and not slot_labels[n:].any()
    assert max(counts) == MOST  # the bound is reached, never passed
    inputs, labels = gathered.batch([4, 1, 7])
    assert [a.shape for a in inputs] == [(3, MAXLEN), (3, MAXLEN), (3, MOST + 2)]
    assert labels.shape == (3, MOST + 2)


def test_too_few_slots_are_refused(sample_shards, vocab):
    with pytest.raises(ValueError, match=r"`max_predictions` \(4\) is below the 5 tokens"):
        MlmExamples(sample_shards, vocab, maxlen=MAXLEN, max_predictions=MOST - 1)
    # rate 1: every maskable token (maxlen - 2) at most
    assert MlmExamples(sample_shards, vocab, maxlen=8, rate=1.0, max_predictions=6)
    # the guard behind the rule, should an example ever have more
    examples = MlmExamples(sample_shards, vocab, maxlen=MAXLEN, max_predictions=MOST)
    examples.max_predictions = 1
    with pytest.raises(ValueError, match=r"example 3 has \d+ masked tokens, more than max_pre"):
        examples.example(3)


def test_gathered_head_equals_the_full_head(sample_shards, vocab, tmp_path):
    (inputs, labels), (gathered_inputs, slot_labels) = both_batches(sample_shards, vocab)
    np.testing.assert_array_equal(gathered_inputs[0], inputs[0])
    positions = gathered_inputs[2]
    full, gathered = tiny_model(vocab), tiny_model(vocab, max_predictions=MOST)
    # the same variables, in the same order (trainer checkpoints hold them by index)
    assert [v.path for v in gathered.variables] == [v.path for v in full.variables]
    assert model_inputs(gathered) == ["Input-Token", "Input-Segment", "Input-Masked-Positions"]
    full.save_weights(tmp_path / "full.weights.h5")
    gathered.load_weights(tmp_path / "full.weights.h5")
    full_logits = np.asarray(full.predict_on_batch(inputs))
    gathered_logits = np.asarray(gathered.predict_on_batch(gathered_inputs))
    assert gathered_logits.shape == (BATCH, MOST, vocab.vocab_size)
    expected = np.take_along_axis(full_logits, positions[..., None].astype(np.int64), 1)
    np.testing.assert_allclose(gathered_logits, expected, rtol=1e-5, atol=1e-6)
    # one SGD step (lr 1: the update is the gradient)
    full_logs = full.train_on_batch(inputs, labels, return_dict=True)
    gathered_logs = gathered.train_on_batch(gathered_inputs, slot_labels, return_dict=True)
    assert gathered_logs["loss"] == pytest.approx(full_logs["loss"], rel=1e-5)
    assert gathered_logs["accuracy"] == pytest.approx(full_logs["accuracy"], abs=1e-6)
    for a, b in zip(full.variables, gathered.variables):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6,
                                   err_msg=a.path)  # fmt: skip
    # gathered-trained weights load into the full heads, and into an encoder's
    gathered.save_weights(tmp_path / "gathered.weights.h5")
    full.load_weights(tmp_path / "gathered.weights.h5")
    for a, b in zip(full.variables, gathered.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    keras.utils.set_random_seed(1)
    encoder = build_transformer_model(vocab_size=vocab.vocab_size, with_mlm=True, **TINY)
    encoder.load_weights(tmp_path / "gathered.weights.h5")
    probabilities = np.asarray(encoder.predict_on_batch(inputs))
    probabilities = np.take_along_axis(probabilities, positions[..., None].astype(np.int64), 1)
    gathered_logits = np.asarray(gathered.predict_on_batch(gathered_inputs))
    softmax = keras.ops.convert_to_numpy(keras.ops.softmax(gathered_logits))
    np.testing.assert_allclose(probabilities, softmax, rtol=1e-4, atol=1e-7)


def model_inputs(model):
    return [tensor.name for tensor in model.inputs]


def test_command_line_and_pretrain_pass_it_through(sample_shards, vocab, tmp_path):
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(dict(
        vocab_size=vocab.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, hidden_act="gelu", max_position_embeddings=16, type_vocab_size=2,
    )))  # fmt: skip
    command = ["--config", str(config), "--vocab", vocab.path, "--shards",
               os.path.dirname(sample_shards[0].path), "--out", str(tmp_path / "run"),
               "--steps", "2", "--batch-size", "4", "--maxlen", "16", "--quiet"]  # fmt: skip
    # with mixed precision (loss scaling) and recompute too
    train_command.main(command + ["--max-predictions", "4", "--policy", "mixed_float16",
                                  "--recompute"])  # fmt: skip
    log = read_log(tmp_path / "run")
    assert list(log["step"]) == [1, 2]
    # a fresh model's loss: about ln(vocab) (near-uniform logits)
    assert log["loss"][0] == pytest.approx(np.log(vocab.vocab_size), abs=0.2)
    with pytest.raises(SystemExit):
        train_command.main(command + ["--kind", "lm", "--max-predictions", "4"])
    # examples and model must agree
    data = PretrainingDataset(MlmExamples(sample_shards, vocab, maxlen=16), batch_size=4)
    model = pretraining_model("mlm", str(config), max_predictions=4)
    with pytest.raises(ValueError, match="examples have max_predictions=None, the model 4"):
        pretrain(model, data, tmp_path / "other", steps=1)


def test_bad_arguments(sample_shards, vocab):
    with pytest.raises(ValueError, match="`max_predictions` must be an integer >= 1"):
        MlmExamples(sample_shards, vocab, maxlen=MAXLEN, max_predictions=0)
    with pytest.raises(TypeError, match="`max_predictions`"):
        MlmExamples(sample_shards, vocab, maxlen=MAXLEN, max_predictions="20")
    with pytest.raises(ValueError, match="`max_predictions` applies to kind='mlm' only"):
        pretraining_model("lm", vocab_size=10, max_predictions=4)
    with pytest.raises(ValueError, match="`max_predictions` must be an integer >= 1"):
        pretraining_model("mlm", vocab_size=10, max_predictions=0)
    with pytest.raises(ValueError, match="no pooler / NSP"):
        pretraining_model("mlm", vocab_size=10, max_predictions=4, with_pool=True)
    with pytest.raises(ValueError, match="`model` must be one of"):
        pretraining_model("mlm", model="bret", vocab_size=10, max_predictions=4)
