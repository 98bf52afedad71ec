"""MaximumEntropyMarkovModel against its formula computed independently in
numpy (bert4keras' way: the backward direction reverses each real sequence
and uses trans.T), full and low-rank, with lr_multiplier; training,
evaluation, decoding and a .keras round trip. Tolerance: 1e-5 relative (float32)."""

import keras
import numpy as np
import pytest
from keras import ops

from nlp4keras.layers import CRFDecoder, MaximumEntropyMarkovModel
from nlp4keras.snippets import ViterbiDecoder

RTOL = 1e-5
LENGTHS = [6, 1, 4, 2, 6, 3]


def direction_nll(emissions, labels, trans):
    """Summed NLL of one unpadded sequence read left to right: step 0 sees its
    emissions, step t > 0 the average of its emissions and trans[y_{t-1}]."""
    history = np.concatenate([emissions[:1], trans[labels[:-1]]])
    logits = (emissions + history) / 2
    top = logits.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return (log_z - logits[np.arange(len(labels)), labels]).sum()


def memm_reference(emissions, labels, trans, lengths):
    """bert4keras' loss (the batch token average of both directions) and the
    per-sequence shares whose mean equals it."""
    emissions, trans = emissions.astype("float64"), trans.astype("float64")
    forward, backward = [], []
    for row, n in enumerate(lengths):
        e, y = emissions[row, :n], labels[row, :n]
        forward.append(direction_nll(e, y, trans))
        backward.append(direction_nll(e[::-1], y[::-1], trans.T))
    tokens = sum(lengths)
    bert4keras_loss = sum(forward) / tokens / 2 + sum(backward) / tokens / 2
    shares = len(lengths) * (np.array(forward) + np.array(backward)) / (2 * tokens)
    return bert4keras_loss, shares


def random_problem(seed, lengths, steps, num_labels):
    rng = np.random.default_rng(seed)
    emissions = (2 * rng.normal(size=(len(lengths), steps, num_labels))).astype("float32")
    labels = rng.integers(0, num_labels, size=(len(lengths), steps)).astype("int32")
    mask = np.arange(steps)[None, :] < np.array(lengths)[:, None]
    return emissions, labels, mask, rng


@pytest.mark.parametrize("hidden_dim,lr_multiplier", [(None, 1), (None, 4), (2, 1), (3, 5)])
def test_loss_matches_numpy_formula(hidden_dim, lr_multiplier):
    emissions, labels, mask, rng = random_problem(0, LENGTHS, steps=6, num_labels=5)
    memm = MaximumEntropyMarkovModel(lr_multiplier=lr_multiplier, hidden_dim=hidden_dim)
    memm.build((None, None, 5))
    if hidden_dim is None:
        trans = rng.normal(size=(5, 5)).astype("float32")
        memm._trans.assign(trans / lr_multiplier)
    else:
        left = rng.normal(size=(5, hidden_dim)).astype("float32")
        right = rng.normal(size=(5, hidden_dim)).astype("float32")
        memm._l_trans.assign(left / lr_multiplier)
        memm._r_trans.assign(right / lr_multiplier)
        trans = left @ right.T
    np.testing.assert_allclose(ops.convert_to_numpy(memm.trans), trans, rtol=RTOL, atol=1e-5)

    y_pred = memm(emissions, mask=mask)
    loss = ops.convert_to_numpy(memm.sparse_loss(labels, y_pred))
    expected_mean, expected = memm_reference(emissions, labels, trans, LENGTHS)
    np.testing.assert_allclose(loss, expected, rtol=RTOL)
    np.testing.assert_allclose(loss.mean(), expected_mean, rtol=RTOL)
    dense = ops.convert_to_numpy(memm.dense_loss(np.eye(5)[labels], y_pred))
    np.testing.assert_allclose(dense, loss, rtol=RTOL)


def test_padding_labels_do_not_matter():
    emissions, labels, mask, rng = random_problem(1, LENGTHS, steps=6, num_labels=4)
    memm = MaximumEntropyMarkovModel()
    y_pred = memm(emissions, mask=mask)
    other = np.where(mask, labels, rng.integers(0, 4, size=labels.shape))
    assert (other != labels).any()
    np.testing.assert_array_equal(
        ops.convert_to_numpy(memm.sparse_loss(labels, y_pred)),
        ops.convert_to_numpy(memm.sparse_loss(other, y_pred)),
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="hidden_dim"):
        MaximumEntropyMarkovModel(hidden_dim=0)
    with pytest.raises(ValueError, match="num_labels"):
        MaximumEntropyMarkovModel()(np.zeros((2, 3), "float32"))


def test_fit_evaluate_decode_and_save(tmp_path):
    keras.utils.set_random_seed(1)
    lengths, vocab_size = [8, 3, 5, 1, 8, 6, 2, 4], 30
    rng = np.random.default_rng(2)
    ids = rng.integers(1, vocab_size, size=(len(lengths), 8)).astype("int32")
    ids[np.arange(8)[None, :] >= np.array(lengths)[:, None]] = 0
    labels = (ids % 3).astype("int32")

    inputs = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(vocab_size, 16, mask_zero=True)(inputs)
    memm = MaximumEntropyMarkovModel(lr_multiplier=2, hidden_dim=2, name="memm")
    scores = memm(keras.layers.Dense(3)(hidden))
    model = keras.Model(inputs, scores)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=memm.sparse_loss)

    predicted = model.predict(ids, verbose=0)
    expected, _ = memm_reference(predicted, labels, ops.convert_to_numpy(memm.trans), lengths)
    reported = model.evaluate(ids, labels, batch_size=8, verbose=0)
    np.testing.assert_allclose(reported, expected, rtol=RTOL)

    history = model.fit(ids, labels, batch_size=8, epochs=15, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]

    predicted = model.predict(ids, verbose=0)
    tagger = keras.Model(inputs, CRFDecoder(memm)(scores))
    paths = tagger.predict(ids, verbose=0)
    decoder = ViterbiDecoder(ops.convert_to_numpy(memm.trans))
    for row, n in enumerate(lengths):
        np.testing.assert_array_equal(paths[row, :n], decoder.decode(predicted[row, :n]))

    model.save(tmp_path / "memm.keras")
    loaded = keras.saving.load_model(tmp_path / "memm.keras", compile=False)
    assert loaded.get_layer("memm").get_config()["hidden_dim"] == 2
    assert loaded.get_layer("memm").lr_multiplier == 2
    np.testing.assert_array_equal(loaded.predict(ids, verbose=0), predicted)
