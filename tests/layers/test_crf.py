"""ConditionalRandomField, viterbi_decode and CRFDecoder against independent numpy
computations: brute force over every label path for the log-partition, the
loss and the best path; numpy ViterbiDecoder on random padded batches; the
real jieba (lac_small) transition matrix; gradients at T=512; lr_multiplier;
accuracy over real tokens; training, evaluation and .keras round trips.
Tolerances: 1e-5 relative in float32 unless a test says otherwise."""

import itertools
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from nlp4keras.layers import ConditionalRandomField, CRFDecoder, viterbi_decode
from nlp4keras.layers.crf_ops import crf_log_partition, crf_path_score
from nlp4keras.snippets import ViterbiDecoder

JIEBA = Path(__file__).resolve().parents[2] / ".assets" / "jieba"
RTOL = 1e-5


# ----------------------------------------------------------------------------
# numpy references


def all_paths(num_labels, length):
    """Every label path of a length, [num_labels ** length, length]."""
    return np.array(list(itertools.product(range(num_labels), repeat=length)))


def path_scores(emissions, trans, paths):
    """Scores of many paths through one unpadded sequence, in float64."""
    emissions = np.asarray(emissions, "float64")
    steps = np.arange(paths.shape[1])
    point = emissions[steps, paths].sum(axis=1)
    return point + np.asarray(trans, "float64")[paths[:, :-1], paths[:, 1:]].sum(axis=1)


def logsumexp(x):
    top = x.max()
    return top + np.log(np.exp(x - top).sum())


def random_problem(seed, lengths, steps, num_labels, scale=2.0):
    rng = np.random.default_rng(seed)
    emissions = (scale * rng.normal(size=(len(lengths), steps, num_labels))).astype("float32")
    trans = rng.normal(size=(num_labels, num_labels)).astype("float32")
    labels = rng.integers(0, num_labels, size=(len(lengths), steps)).astype("int32")
    mask = np.arange(steps)[None, :] < np.array(lengths)[:, None]
    return emissions, trans, labels, mask


def crf_layer(trans, lr_multiplier=1):
    """A built CRF whose effective transition matrix is `trans`."""
    crf = ConditionalRandomField(lr_multiplier=lr_multiplier)
    crf.build((None, None, trans.shape[0]))
    crf._trans.assign(np.asarray(trans, "float32") / lr_multiplier)
    return crf


def value_and_gradients(fn, *arrays):
    """fn(*arrays) (a scalar written in keras.ops) and its gradients wrt every array."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        value_and_grad = jax.value_and_grad(fn, argnums=tuple(range(len(arrays))))
        value, grads = jax.jit(value_and_grad)(*arrays)
        return float(value), [np.asarray(g) for g in grads]
    if backend == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        value = fn(*tensors)
        value.backward()
        return float(value.detach()), [t.grad.numpy() for t in tensors]
    import tensorflow as tf

    tensors = [tf.Variable(a) for a in arrays]
    with tf.GradientTape() as tape:
        value = fn(*tensors)
    return float(value), [g.numpy() for g in tape.gradient(value, tensors)]


def numpy_forward(emissions, trans, length):
    """log Z of one sequence by the forward algorithm in float64 (not brute force)."""
    emissions = np.asarray(emissions, "float64")
    alpha = emissions[0]
    for t in range(1, length):
        scores = alpha[:, None] + trans
        top = scores.max(axis=0)
        alpha = top + np.log(np.exp(scores - top).sum(axis=0)) + emissions[t]
    return logsumexp(alpha)


# ----------------------------------------------------------------------------
# log-partition, losses, accuracy


LENGTHS = [5, 1, 3, 4, 2]


def test_log_partition_and_path_score_match_brute_force():
    emissions, trans, labels, mask = random_problem(0, LENGTHS, steps=5, num_labels=3)
    log_z = ops.convert_to_numpy(crf_log_partition(emissions, trans, mask))
    scores = ops.convert_to_numpy(crf_path_score(emissions, trans, labels, mask))
    for row, length in enumerate(LENGTHS):
        every = path_scores(emissions[row, :length], trans, all_paths(3, length))
        np.testing.assert_allclose(log_z[row], logsumexp(every), rtol=RTOL)
        own = path_scores(emissions[row, :length], trans, labels[None, row, :length])[0]
        np.testing.assert_allclose(scores[row], own, rtol=RTOL, atol=1e-5)


@pytest.mark.parametrize("label_shape", ["flat", "trailing_one"])
def test_sparse_loss_is_brute_force_nll(label_shape):
    emissions, trans, labels, mask = random_problem(1, LENGTHS, steps=5, num_labels=4)
    crf = crf_layer(trans)
    y_pred = crf(emissions, mask=mask)
    y_true = labels if label_shape == "flat" else labels[..., None]
    loss = ops.convert_to_numpy(crf.sparse_loss(y_true, y_pred))
    assert loss.shape == (len(LENGTHS),)
    for row, length in enumerate(LENGTHS):
        every = path_scores(emissions[row, :length], trans, all_paths(4, length))
        own = path_scores(emissions[row, :length], trans, labels[None, row, :length])[0]
        np.testing.assert_allclose(loss[row], logsumexp(every) - own, rtol=RTOL, atol=1e-5)


def test_dense_loss_equals_sparse_loss_on_one_hot():
    emissions, trans, labels, mask = random_problem(2, LENGTHS, steps=5, num_labels=4)
    crf = crf_layer(trans)
    y_pred = crf(emissions, mask=mask)
    sparse = ops.convert_to_numpy(crf.sparse_loss(labels, y_pred))
    dense = ops.convert_to_numpy(crf.dense_loss(np.eye(4, dtype="float32")[labels], y_pred))
    np.testing.assert_allclose(dense, sparse, rtol=RTOL, atol=1e-5)


def test_call_marks_padding_with_finite_scores():
    emissions, trans, _, mask = random_problem(3, LENGTHS, steps=5, num_labels=3)
    out = ops.convert_to_numpy(crf_layer(trans)(emissions, mask=mask))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[mask], emissions[mask])
    assert (out[~mask] < -1e6).all()


def test_accuracy_counts_real_tokens_only():
    emissions, trans, labels, mask = random_problem(4, LENGTHS, steps=5, num_labels=4)
    crf = crf_layer(trans)
    y_pred = crf(emissions, mask=mask)
    guess = emissions.argmax(-1)
    # Padding rows argmax to label 0: give them label 0 so counting them would show.
    labels = np.where(mask, labels, 0)
    expected = (guess == labels)[mask].mean()
    assert expected != (guess == labels).mean()
    sparse = float(ops.convert_to_numpy(crf.sparse_accuracy(labels, y_pred)))
    dense = float(ops.convert_to_numpy(crf.dense_accuracy(np.eye(4)[labels], y_pred)))
    np.testing.assert_allclose([sparse, dense], [expected, expected], rtol=1e-6)


def test_long_sequences_give_finite_loss_gradients_and_paths():
    lengths, steps, num_labels = [512, 300], 512, 5
    emissions, trans, labels, mask = random_problem(5, lengths, steps, num_labels)
    crf = crf_layer(trans)
    y_pred = ops.convert_to_numpy(crf(emissions, mask=mask))

    def total_loss(scores, stored_trans):
        with keras.StatelessScope(state_mapping=[(crf._trans, stored_trans)]):
            return ops.sum(crf.sparse_loss(labels, scores))

    loss, (d_scores, d_trans) = value_and_gradients(total_loss, y_pred, trans)
    expected = sum(
        numpy_forward(emissions[row], trans, n)
        - path_scores(emissions[row, :n], trans, labels[None, row, :n])[0]
        for row, n in enumerate(lengths)
    )
    np.testing.assert_allclose(loss, expected, rtol=RTOL)
    assert np.isfinite(d_scores).all() and np.isfinite(d_trans).all()
    # d loss / d emissions = label marginals - one-hot labels on real tokens
    # (the marginals sum to 1, measured within 2e-7), and 0 on padding.
    marginals = d_scores + np.eye(num_labels)[labels]
    np.testing.assert_allclose(marginals.sum(-1)[mask], 1.0, atol=1e-5)
    assert (marginals[mask] > -1e-6).all()
    np.testing.assert_allclose(d_scores[~mask], 0.0, atol=0)
    # Expected minus observed transition counts: both total the real transitions.
    np.testing.assert_allclose(d_trans.sum(), 0.0, atol=1e-3)
    assert np.abs(d_trans).max() > 1.0

    # Viterbi in float32 on device still finds numpy's float64 best path.
    paths = ops.convert_to_numpy(viterbi_decode(emissions, trans, mask))
    for row, n in enumerate(lengths):
        np.testing.assert_array_equal(
            paths[row, :n], ViterbiDecoder(trans).decode(emissions[row, :n])
        )


def test_lr_multiplier_reparameterises_trans():
    multiplier = 7.0
    emissions, trans, labels, mask = random_problem(6, LENGTHS, steps=5, num_labels=4)
    fresh = ConditionalRandomField(lr_multiplier=multiplier)
    fresh.build((None, None, 4))
    stored = ops.convert_to_numpy(fresh._trans)
    # Stored at glorot-uniform scale / multiplier; the effective matrix at the usual scale.
    assert np.abs(stored).max() <= np.sqrt(6 / 8) / multiplier
    np.testing.assert_allclose(ops.convert_to_numpy(fresh.trans), multiplier * stored, rtol=1e-6)

    crf = crf_layer(trans, lr_multiplier=multiplier)
    y_pred = ops.convert_to_numpy(crf(emissions, mask=mask))

    def loss_of_stored(value):
        with keras.StatelessScope(state_mapping=[(crf._trans, value)]):
            return ops.sum(crf.sparse_loss(labels, y_pred))

    def loss_of_trans(value):
        scores = crf_path_score(y_pred, value, np.where(mask, labels, 0), mask)
        return ops.sum(crf_log_partition(y_pred, value, mask) - scores)

    _, (d_stored,) = value_and_gradients(loss_of_stored, trans / multiplier)
    _, (d_trans,) = value_and_gradients(loss_of_trans, trans)
    assert np.abs(d_trans).max() > 1e-3
    np.testing.assert_allclose(d_stored, multiplier * d_trans, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------
# Viterbi


def brute_force_best(emissions, trans, starts=None, ends=None):
    paths = all_paths(trans.shape[0], len(emissions))
    keep = np.ones(len(paths), bool)
    if starts is not None:
        keep &= np.isin(paths[:, 0], starts)
    if ends is not None:
        keep &= np.isin(paths[:, -1], ends)
    scores = np.where(keep, path_scores(emissions, trans, paths), -np.inf)
    return paths[np.argmax(scores)]


@pytest.mark.parametrize("starts,ends", [(None, None), ([1, 3], None), ([2], [0, 3])])
def test_viterbi_decode_is_brute_force_argmax(starts, ends):
    emissions, trans, _, mask = random_problem(7, LENGTHS, steps=5, num_labels=4)
    paths = ops.convert_to_numpy(viterbi_decode(emissions, trans, mask, starts, ends))
    assert paths.dtype == np.int32
    for row, length in enumerate(LENGTHS):
        best = brute_force_best(emissions[row, :length], trans, starts, ends)
        np.testing.assert_array_equal(paths[row, :length], best)
        assert (paths[row, length:] == 0).all()


def test_decoder_layer_agrees_with_numpy_decoder():
    lengths = [12, 1, 7, 3, 12, 9, 2, 5]
    emissions, trans, _, mask = random_problem(8, lengths, steps=12, num_labels=6)
    starts, ends = [0, 2, 4], [1, 5]
    crf = crf_layer(trans)
    scores = crf(emissions, mask=mask)
    paths = ops.convert_to_numpy(CRFDecoder(crf, starts=starts, ends=ends)(scores))
    decoder = ViterbiDecoder(ops.convert_to_numpy(crf.trans), starts=starts, ends=ends)
    for row, length in enumerate(lengths):
        assert (paths[row, length:] == 0).all()
        if length == 1:  # no label is both a start and an end: no path is allowed
            assert 0 <= paths[row, 0] < 6
            continue
        np.testing.assert_array_equal(paths[row, :length], decoder.decode(emissions[row, :length]))


def read_paddle_tensor(path):
    """A Paddle LoDTensor file: uint32 version, uint64 LoD level (0 here),
    uint32 tensor version, int32 size of a TensorDesc protobuf, the protobuf
    (field 1 = data type, 5 meaning FP32; field 2 repeated = dims, varints),
    then the raw little-endian data."""
    raw = path.read_bytes()
    version, lod_level, tensor_version, desc_size = (
        int.from_bytes(raw[0:4], "little"),
        int.from_bytes(raw[4:12], "little"),
        int.from_bytes(raw[12:16], "little"),
        int.from_bytes(raw[16:20], "little"),
    )
    assert (version, lod_level, tensor_version) == (0, 0, 0)
    desc = raw[20 : 20 + desc_size]
    assert desc[0:2] == b"\x08\x05", "expected an FP32 tensor"
    dims = []
    for i in range(2, len(desc), 2):  # dims < 128 here: one-byte varints
        assert desc[i] == 0x10 and desc[i + 1] < 0x80
        dims.append(desc[i + 1])
    data = np.frombuffer(raw[20 + desc_size :], dtype="<f4")
    return data.reshape(dims)


@pytest.fixture(scope="module")
def jieba_crf():
    """lac_small's CRF: 59 x 57 float32 = start row, end row, then trans[from, to]."""
    if not (JIEBA / "crfw").is_file() or not (JIEBA / "tag.dic").is_file():
        pytest.fail(f"jieba CRF weights missing at {JIEBA}: run `make assets`")
    weights = read_paddle_tensor(JIEBA / "crfw")
    tags = [line.split()[1] for line in (JIEBA / "tag.dic").read_text("utf-8").splitlines()]
    assert weights.shape == (len(tags) + 2, len(tags)) == (59, 57)
    return weights[0], weights[1], weights[2:], tags


def test_jieba_matrix_layout(jieba_crf):
    start, _, trans, tags = jieba_crf
    begins = [i for i, t in enumerate(tags) if t.endswith("-B")]
    insides = [tags.index(tags[i][:-1] + "I") for i in begins]
    # A chunk cannot start with an inside tag ...
    assert start[insides].max() < start[begins].min() - 10
    # ... and X-B is followed by X-I, not by another type's inside tag (row = from).
    same = np.array([trans[b, i] for b, i in zip(begins, insides)])
    other = np.array([trans[b, i] for b in begins for i in insides if i != b + 1])
    assert same.min() > other.max() + 10


def test_decode_with_real_jieba_transitions(jieba_crf):
    start, end, trans, tags = jieba_crf
    lengths = [3, 1, 2, 3, 20, 33, 40, 7]
    emissions, _, _, mask = random_problem(9, lengths, steps=40, num_labels=57, scale=3.0)
    # Paddle's start/end rows are additive: fold them into the first/last emissions.
    for row, length in enumerate(lengths):
        emissions[row, 0] += start
        emissions[row, length - 1] += end
    paths = ops.convert_to_numpy(viterbi_decode(emissions, trans, mask))
    decoder = ViterbiDecoder(trans)
    for row, length in enumerate(lengths):
        path = paths[row, :length]
        np.testing.assert_array_equal(path, decoder.decode(emissions[row, :length]))
        if length <= 3:
            np.testing.assert_array_equal(path, brute_force_best(emissions[row, :length], trans))
        # Every decoded chunk is well formed: X-I only after X-B or X-I.
        named = [tags[i] for i in path]
        assert not named[0].endswith("-I")
        for before, now in zip(named, named[1:]):
            if now.endswith("-I"):
                assert before[:-2] == now[:-2], (before, now)


# ----------------------------------------------------------------------------
# Keras integration


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="num_labels"):
        ConditionalRandomField()(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="transition matrix has 3"):
        viterbi_decode(np.zeros((1, 2, 4), "float32"), np.zeros((3, 3), "float32"))
    with pytest.raises(ValueError, match="square"):
        viterbi_decode(np.zeros((1, 2, 3), "float32"), np.zeros((3, 4), "float32"))
    with pytest.raises(ValueError, match="starts"):
        viterbi_decode(np.zeros((1, 2, 3), "float32"), np.zeros((3, 3), "float32"), starts=[3])
    crf = crf_layer(np.zeros((3, 3), "float32"))
    with pytest.raises(ValueError, match="y_pred"):
        crf.sparse_loss(np.zeros((1, 2)), np.zeros((1, 2, 4), "float32"))
    with pytest.raises(ValueError, match="lr_multiplier"):
        ConditionalRandomField(lr_multiplier=0)


def tagging_model(num_labels, vocab_size=30, lr_multiplier=1):
    ids = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(vocab_size, 16, mask_zero=True)(ids)
    emissions = keras.layers.Dense(num_labels)(hidden)
    crf = ConditionalRandomField(lr_multiplier=lr_multiplier, name="crf")
    return keras.Model(ids, crf(emissions)), crf


def padded_ids(seed, lengths, steps, vocab_size=30):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab_size, size=(len(lengths), steps)).astype("int32")
    ids[np.arange(steps)[None, :] >= np.array(lengths)[:, None]] = 0
    return ids


def test_fit_evaluate_decode_and_save(tmp_path):
    keras.utils.set_random_seed(0)
    lengths = [9, 4, 6, 1, 9, 3, 7, 2]
    ids = padded_ids(10, lengths, steps=9)
    labels = (ids % 4).astype("int32")  # learnable from the token alone
    model, crf = tagging_model(num_labels=4, lr_multiplier=10)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=crf.sparse_loss)

    # Keras must report the mean of the per-sequence NLLs, not a mask-weighted mean.
    scores, trans = model.predict(ids, verbose=0), ops.convert_to_numpy(crf.trans)
    direct = np.mean(
        [
            numpy_forward(scores[row], trans, n)
            - path_scores(scores[row, :n], trans, labels[None, row, :n])[0]
            for row, n in enumerate(lengths)
        ]
    )
    reported = model.evaluate(ids, labels, batch_size=8, verbose=0)
    np.testing.assert_allclose(reported, direct, rtol=RTOL)

    history = model.fit(ids, labels, batch_size=8, epochs=15, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]

    scores = model.predict(ids, verbose=0)
    tagger = keras.Model(model.inputs, CRFDecoder(crf, starts=[0, 1])(model.outputs[0]))
    paths = tagger.predict(ids, verbose=0)
    decoder = ViterbiDecoder(ops.convert_to_numpy(crf.trans), starts=[0, 1])
    for row, length in enumerate(lengths):
        np.testing.assert_array_equal(paths[row, :length], decoder.decode(scores[row, :length]))
        assert (paths[row, length:] == 0).all()

    # Losses bound to a layer cannot be serialised by Keras: load with
    # compile=False, then compile again with the loaded layer's losses.
    model.save(tmp_path / "model.keras")
    tagger.save(tmp_path / "tagger.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_array_equal(loaded.predict(ids, verbose=0), scores)
    loaded_crf = loaded.get_layer("crf")
    assert loaded_crf.lr_multiplier == 10
    loaded.compile(loss=loaded_crf.sparse_loss, metrics=[loaded_crf.sparse_accuracy])
    reloaded_loss = loaded.evaluate(ids, labels, batch_size=8, verbose=0)[0]
    np.testing.assert_allclose(reloaded_loss, model.evaluate(ids, labels, verbose=0), rtol=RTOL)

    loaded_tagger = keras.saving.load_model(tmp_path / "tagger.keras", compile=False)
    decoder_layer = loaded_tagger.layers[-1]
    assert decoder_layer.crf is loaded_tagger.get_layer("crf")  # shared, not copied
    assert decoder_layer.starts == [0, 1] and decoder_layer.ends is None
    np.testing.assert_array_equal(loaded_tagger.predict(ids, verbose=0), paths)
