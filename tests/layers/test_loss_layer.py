"""The bert4keras `Loss` layer idiom on Keras 3: compile(optimizer) + fit(x)
with the loss added inside the model.

The two porting idioms are checked end to end on tiny BERTs: a UniLM seq2seq
cross-entropy over the target segment and an MLM loss over masked tokens.
Loss values are compared with numpy on the same predictions (rtol 1e-5);
passed-through outputs with atol 1e-6.
"""

import keras
import numpy as np
import pytest
from helpers import TINY_BERT, padded_batch, run
from keras import ops

from nlp4keras.layers import Loss
from nlp4keras.models import build_transformer_model

# A user's own subclasses register under their own package, as users would.
register = keras.saving.register_keras_serializable(package="nlp4keras_tests")
VOCAB = TINY_BERT["vocab_size"]


@register
class Seq2SeqCrossEntropy(Loss):
    """Inputs [token_ids, segment_ids, probs]: the probabilities at step t
    predict token t + 1, counted only where token t + 1 is in segment 1."""

    def compute_loss(self, inputs, mask=None):
        token_ids, segment_ids, probs = inputs
        targets = token_ids[:, 1:]
        weights = ops.cast(segment_ids[:, 1:], probs.dtype)
        token_loss = keras.losses.sparse_categorical_crossentropy(targets, probs[:, :-1])
        return ops.sum(token_loss * weights) / ops.sum(weights)


@register
class MaskedTokenCrossEntropy(Loss):
    """Inputs [original_ids, is_masked, probs]: cross-entropy averaged over
    the masked positions only."""

    def compute_loss(self, inputs, mask=None):
        original_ids, is_masked, probs = inputs
        weights = ops.cast(is_masked, probs.dtype)
        token_loss = keras.losses.sparse_categorical_crossentropy(original_ids, probs)
        return ops.sum(token_loss * weights) / ops.sum(weights)


@register
class MeanSquare(Loss):
    """Inputs [target, prediction]: mean squared difference."""

    def compute_loss(self, inputs, mask=None):
        target, prediction = inputs
        return ops.mean(ops.square(target - prediction))


def numpy_token_loss(probs, targets, weights):
    """Weighted mean of -log p(target) (float64)."""
    probs = probs.astype("float64")
    picked = np.take_along_axis(probs, targets[..., None].astype("int64"), axis=-1)[..., 0]
    return float((-np.log(picked) * weights).sum() / weights.sum())


def numpy_seq2seq_loss(probs, ids, segments):
    return numpy_token_loss(probs[:, :-1], ids[:, 1:], segments[:, 1:].astype("float64"))


def tiny_bert(**kwargs):
    """A one-layer TINY_BERT with its MLM head (one layer keeps JAX compiles short)."""
    keras.utils.set_random_seed(0)
    config = {**TINY_BERT, "num_hidden_layers": 1}
    return build_transformer_model(
        **config, dropout_rate=0.0, attention_dropout_rate=0.0, with_mlm=True, **kwargs
    )


def seq2seq_model():
    """bert4keras' seq2seq recipe: the UniLM model's outputs go through the loss layer."""
    bert = tiny_bert(application="unilm")
    probs = Seq2SeqCrossEntropy(output_axis=2, name="seq2seq_loss")(bert.inputs + bert.outputs)
    return bert, keras.Model(bert.inputs, probs)


def test_seq2seq_loss_matches_numpy_trains_and_passes_probs_through():
    bert, model = seq2seq_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    ids, segments = padded_batch(VOCAB, [12, 10, 8, 7], 12, seed=1, cls_id=2, sep_id=3)
    x = [ids, segments]

    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs, bert.predict(x, verbose=0), atol=1e-6)
    expected = numpy_seq2seq_loss(probs, ids, segments)
    assert np.isclose(model.evaluate(x, verbose=0), expected, rtol=1e-5)

    # One batch per epoch: the first epoch reports the loss before any update.
    losses = model.fit(x, epochs=6, batch_size=len(ids), verbose=0).history["loss"]
    assert np.isclose(losses[0], expected, rtol=1e-5)
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0]

    # After training the reported loss still follows the model's predictions.
    probs = model.predict(x, verbose=0)
    assert np.isclose(
        model.evaluate(x, verbose=0), numpy_seq2seq_loss(probs, ids, segments), rtol=1e-5
    )


@register
class Bert4kerasSeq2SeqLoss(Loss):
    """bert4keras' seq2seq examples, verbatim: `loss * y_mask` with the segment ids
    uncast (its inputs were float32)."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_mask, y_pred = inputs
        y_true, y_mask, y_pred = y_true[:, 1:], y_mask[:, 1:], y_pred[:, :-1]
        loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        return ops.sum(loss * y_mask) / ops.sum(y_mask)


def test_integer_inputs_reach_compute_loss_as_floats_as_in_bert4keras():
    """TensorFlow does not promote int32 * float32: the layer hands floats, on every backend
    (in fit's compiled step too), and passes the inputs through unchanged."""
    bert = tiny_bert(application="unilm")
    outputs = Bert4kerasSeq2SeqLoss(output_axis=[1, 2])(bert.inputs + bert.outputs)
    model = keras.Model(bert.inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    ids, segments = padded_batch(VOCAB, [12, 9], 12, seed=5, cls_id=2, sep_id=3)
    passed_segments, probs = model.predict([ids, segments], verbose=0)
    assert keras.backend.standardize_dtype(model.outputs[0].dtype) == "int32"
    np.testing.assert_array_equal(passed_segments, segments)
    expected = numpy_seq2seq_loss(probs, ids, segments)
    loss = model.fit([ids, segments], epochs=1, batch_size=2, verbose=0).history["loss"][0]
    assert np.isclose(loss, expected, rtol=1e-5)


def test_padding_and_source_segment_do_not_count_in_seq2seq_loss():
    """Called directly on fixed probabilities: only steps predicting a
    target-segment token count, so changing the others leaves the loss as is."""
    ids, segments = padded_batch(VOCAB, [9, 6], 9, seed=2)
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(VOCAB), size=ids.shape).astype("float32")
    layer = Seq2SeqCrossEntropy(output_axis=2)
    layer([ids, segments, probs])
    expected = numpy_seq2seq_loss(probs, ids, segments)
    assert np.isclose(float(ops.convert_to_numpy(layer.losses[0])), expected, rtol=1e-5)
    # Probabilities that predict a step outside the target segment do not matter.
    outside = segments[:, 1:] == 0
    changed = probs.copy()
    changed[:, :-1][outside] = rng.dirichlet(np.ones(VOCAB), size=outside.sum())
    layer([ids, segments, changed])
    assert np.isclose(float(ops.convert_to_numpy(layer.losses[0])), expected, rtol=1e-5)


def test_mlm_loss_over_masked_tokens_matches_numpy_and_trains():
    bert = tiny_bert()
    original_in = keras.Input((None,), dtype="int32", name="Input-Original")
    masked_in = keras.Input((None,), dtype="int32", name="Input-Is-Masked")
    probs = MaskedTokenCrossEntropy(output_axis=2)([original_in, masked_in, bert.output])
    model = keras.Model(bert.inputs + [original_in, masked_in], probs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))

    original, segments = padded_batch(VOCAB, [10, 10, 7, 5], 10, seed=3)
    rng = np.random.default_rng(3)
    is_masked = ((rng.random(original.shape) < 0.3) & (original != 0)).astype("int32")
    is_masked[:, 1] = 1
    masked_ids = np.where(is_masked == 1, 4, original).astype("int32")  # 4 plays [MASK]
    x = [masked_ids, segments, original, is_masked]

    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs, bert.predict(x[:2], verbose=0), atol=1e-6)
    expected = numpy_token_loss(probs, original, is_masked.astype("float64"))
    losses = model.fit(x, epochs=5, batch_size=len(original), verbose=0).history["loss"]
    assert np.isclose(losses[0], expected, rtol=1e-5)
    assert losses[-1] < 0.7 * losses[0]


def test_save_and_load_keeps_outputs_and_loss(tmp_path):
    bert, model = seq2seq_model()
    ids, segments = padded_batch(VOCAB, [12, 9, 8, 5], 12, seed=4)
    x = [ids, segments]
    model.save(tmp_path / "seq2seq.keras")
    restored = keras.saving.load_model(tmp_path / "seq2seq.keras")
    assert type(restored.get_layer("seq2seq_loss")) is Seq2SeqCrossEntropy
    assert restored.get_layer("seq2seq_loss").get_config()["output_axis"] == 2
    probs = restored.predict(x, verbose=0)
    np.testing.assert_allclose(probs, bert.predict(x, verbose=0), atol=1e-6)
    restored.compile(optimizer="sgd")
    assert np.isclose(
        restored.evaluate(x, verbose=0), numpy_seq2seq_loss(probs, ids, segments), rtol=1e-5
    )


def small_regression(output_axis):
    """Dense predictions of a target, with two loss layers (their sum is trained)."""
    features_in = keras.Input((3,), name="features")
    target_in = keras.Input((2,), name="target")
    prediction = keras.layers.Dense(2, name="dense")(features_in)
    outputs = MeanSquare(output_axis=output_axis, name="square")([target_in, prediction])
    extra = MeanSquare(output_axis=1, name="extra")([target_in * 0.0, prediction])
    return keras.Model([features_in, target_in], [outputs, extra])


def test_eager_call_records_one_loss_per_layer_and_does_not_accumulate():
    model = small_regression(output_axis=1)
    rng = np.random.default_rng(5)
    features = rng.normal(size=(6, 3)).astype("float32")
    target = rng.normal(size=(6, 2)).astype("float32")
    for _ in range(2):
        model([features, target], training=False)
    prediction = run(model.get_layer("dense"), features)
    values = sorted(float(ops.convert_to_numpy(v)) for v in model.losses)
    expected = sorted([((target - prediction) ** 2).mean(), (prediction**2).mean()])
    np.testing.assert_allclose(values, expected, rtol=1e-5)


@pytest.mark.parametrize("output_axis", [None, 0, [1, 0]])
def test_output_axis_chooses_the_passed_through_inputs(output_axis):
    rng = np.random.default_rng(6)
    target = rng.normal(size=(4, 2)).astype("float32")
    prediction = rng.normal(size=(4, 2)).astype("float32")
    out = MeanSquare(output_axis=output_axis)([target, prediction])
    chosen = {None: [target, prediction], 0: target, (1, 0): [prediction, target]}
    expected = chosen[tuple(output_axis) if isinstance(output_axis, list) else output_axis]
    if isinstance(expected, list):
        assert len(out) == len(expected)
        for a, b in zip(out, expected):
            np.testing.assert_array_equal(ops.convert_to_numpy(a), b)
    else:
        np.testing.assert_array_equal(ops.convert_to_numpy(out), expected)


def test_fit_reports_the_sum_of_all_loss_layers():
    model = small_regression(output_axis=[1])
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    rng = np.random.default_rng(7)
    features = rng.normal(size=(8, 3)).astype("float32")
    target = rng.normal(size=(8, 2)).astype("float32")
    prediction = run(model.get_layer("dense"), features)
    expected = ((target - prediction) ** 2).mean() + (prediction**2).mean()
    losses = model.fit([features, target], epochs=3, batch_size=8, verbose=0).history["loss"]
    assert np.isclose(losses[0], expected, rtol=1e-5)
    assert losses[-1] < losses[0]


def test_mask_passes_through_with_the_chosen_input():
    ids_in = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(10, 4, mask_zero=True)(ids_in)
    target_in = keras.Input((None, 4))
    out = MeanSquare(output_axis=1)([target_in, hidden])
    layer = MeanSquare(output_axis=1)
    mask = np.array([[True, True, False]])
    assert layer.compute_mask([None, None], [None, mask]) is mask
    assert layer.compute_mask([None, None], None) is None
    assert out.shape == hidden.shape
    assert getattr(out, "_keras_mask", None) is not None


def test_config_round_trip():
    layer = MeanSquare(output_axis=[1, 0], name="sq")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is MeanSquare
    assert clone.get_config() == layer.get_config()
    assert clone.output_axis == [1, 0]


def test_bad_use_gets_clear_errors():
    x = np.zeros((2, 3), "float32")
    with pytest.raises(NotImplementedError, match="compute_loss"):
        Loss()([x, x])
    with pytest.raises(TypeError, match="output_axis"):
        MeanSquare(output_axis="first")
    with pytest.raises(ValueError, match="out of range"):
        MeanSquare(output_axis=5)([x, x])

    class NotReduced(Loss):
        def compute_loss(self, inputs, mask=None):
            return ops.square(inputs[0])

    with pytest.raises(ValueError, match="scalar"):
        NotReduced(output_axis=0)([x, x])
