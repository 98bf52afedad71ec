"""Input attributions (nlp4keras.training.input_gradients and
integrated_gradients) on a tiny BERT classifier: gradients against central
finite differences, integrated gradients against completeness, errors.

f(e + h u) is evaluated independently of the library's hooks, on a copy of
the classifier whose vocabulary has one row per position (test_vat.PerPosition)."""

import keras
import numpy as np
import pytest
from helpers import padded_batch
from keras import ops
from test_adversarial import CONFIG, batch, classifier
from test_vat import PerPosition, probs_of

from nlp4keras.training import input_gradients, integrated_gradients

H = 1e-2  # finite-difference step, float32


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def per_position():
    return PerPosition(batch()[0])


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def chosen(probs, classes):
    return numpy(probs)[np.arange(len(classes)), classes]


def test_gradients_equal_central_differences(per_position):
    """<g_i, u_i> against (f_i(e + h u) - f_i(e - h u)) / 2h along random unit
    directions u_i (one norm per example), f_i the predicted class's
    probability. Tolerance 2e-3 * ||g_i|| (float32 differences with h = 1e-2
    are within 3e-4 of it); the gradient of another class is far outside."""
    pp = per_position
    classes = numpy(pp.model(pp.x)).argmax(-1)
    g = input_gradients(pp.model, pp.x)
    other = input_gradients(pp.model, pp.x, output_index=(classes + 1) % 3)
    assert g.shape == pp.x[0].shape + (CONFIG["hidden_size"],) and g.dtype == np.float32
    scale = np.sqrt((g**2).sum(axis=(1, 2)))
    errors, wrong = [], []
    rng = np.random.default_rng(0)
    for _ in range(4):
        u = rng.normal(size=g.shape).astype("float32")
        u /= np.sqrt((u**2).sum(axis=(1, 2), keepdims=True))
        plus = chosen(pp.probs(pp.start, H * u), classes)
        minus = chosen(pp.probs(pp.start, -H * u), classes)
        differences = (plus - minus) / (2 * H)
        errors.append(np.abs((g * u).sum(axis=(1, 2)) - differences) / scale)
        wrong.append(np.abs((other * u).sum(axis=(1, 2)) - differences) / scale)
    assert np.max(errors) < 2e-3 < 0.1 * np.max(wrong)


def test_output_index_forms(per_position):
    """None is each example's predicted class; an int is one class for all; a
    function selects any value per example; class probabilities sum to 1, so
    their gradients sum to 0."""
    model, x = per_position.model, per_position.x
    classes = numpy(model(x)).argmax(-1)
    by_class = [input_gradients(model, x, output_index=k) for k in range(3)]
    scale = np.abs(by_class[0]).max()
    np.testing.assert_allclose(sum(by_class), 0, atol=1e-5 * scale)
    predicted = input_gradients(model, x)
    np.testing.assert_array_equal(predicted, input_gradients(model, x, output_index=classes))
    for row, k in enumerate(classes):
        np.testing.assert_allclose(predicted[row], by_class[k][row], rtol=1e-5, atol=1e-7)
    difference = input_gradients(model, x, output_index=lambda p: p[:, 0] - p[:, 1])
    np.testing.assert_allclose(difference, by_class[0] - by_class[1], rtol=1e-4, atol=1e-6 * scale)


def completeness_gaps(model, x, rule, steps_list, baseline=None, baseline_probs=None):
    """max_i |sum of attributions_i - (f_i(x) - f_i(baseline))| for each steps."""
    probs = numpy(model(x))
    classes = probs.argmax(-1)
    if baseline_probs is None:  # zero token embeddings: a zero matrix
        values = [v.value for v in model.trainable_variables]
        matrix = model.get_layer("Embedding-Token").embeddings
        index = next(i for i, v in enumerate(model.trainable_variables) if v is matrix)
        values[index] = ops.zeros_like(values[index])
        baseline_probs = probs_of(model, values, x)
    change = chosen(probs, classes) - chosen(baseline_probs, classes)
    gaps = []
    for steps in steps_list:
        attributions = integrated_gradients(model, x, baseline=baseline, steps=steps, rule=rule)
        assert attributions.shape == x[0].shape
        gaps.append(np.abs(attributions.sum(axis=1) - change).max())
    return np.array(gaps), np.abs(change).max()


# Error of each rule: O(1/steps^2) for midpoint and trapezoid, O(1/steps) else.
ORDERS = {"midpoint": 2, "trapezoid": 2, "left": 1, "right": 1}


@pytest.mark.spread
@pytest.mark.parametrize("rule", list(ORDERS))
def test_integrated_gradients_completeness(rule):
    """Attributions sum to f(x) - f(0 embeddings) up to a gap that shrinks
    like the rule's order: 16x more steps cut it by at least a third of the
    ideal factor (16 or 256; about 14-18 and 250-290 seen); with 64 steps it
    is below 1e-3 of the largest change (midpoint, trapezoid; 4e-5 seen) or
    5e-2 (left, right; 2e-2 seen). Padded positions get 0."""
    model = classifier()
    ids, segments = padded_batch(CONFIG["vocab_size"], [7, 5, 3], 7, seed=1)
    x = [ids, segments]
    gaps, change = completeness_gaps(model, x, rule, [4, 64])
    factor = 16 ** ORDERS[rule]
    assert gaps[1] < gaps[0] / (factor / 3)
    assert gaps[1] < (1e-3 if ORDERS[rule] == 2 else 5e-2) * change
    attributions = integrated_gradients(model, x, steps=4, rule=rule)
    assert np.abs(attributions[ids == 0]).max() <= 1e-6 * np.abs(attributions).max()


def test_integrated_gradients_from_a_token_baseline():
    """baseline = the embedding of token 1 at every position (one row,
    broadcast): f(baseline) is the model on a text of token 1 only."""
    model = classifier()
    ids, segments = padded_batch(CONFIG["vocab_size"], [6, 4], 6, seed=2)
    row = numpy(model.get_layer("Embedding-Token").embeddings)[1]
    ones = np.where(ids > 0, 1, 0).astype("int32")  # same padding, hence same mask
    baseline_probs = model([ones, segments])
    gaps, change = completeness_gaps(
        model, [ids, segments], "midpoint", [64], baseline=row, baseline_probs=baseline_probs
    )
    assert gaps[0] < 1e-3 * change
    full = integrated_gradients(model, [ids, segments], baseline=row, steps=4, per_token=False)
    per_token = integrated_gradients(model, [ids, segments], baseline=row, steps=4)
    assert full.shape == ids.shape + (CONFIG["hidden_size"],)
    np.testing.assert_allclose(full.sum(axis=-1), per_token, rtol=1e-6, atol=1e-7)


def test_bad_arguments_are_named(per_position):
    model, x = per_position.model, per_position.x
    cases = [
        (dict(steps=0), ValueError, "steps"),
        (dict(steps=2.5), TypeError, "steps"),
        (dict(rule="simpson"), ValueError, "'midpoint', 'trapezoid', 'left', 'right'"),
        (dict(per_token=1), TypeError, "per_token"),
        (dict(layer="Embedding-Tokens"), ValueError, "Did you mean 'Embedding-Token'"),
        (dict(output_index=3), ValueError, r"\[0, 3\)"),
        (dict(output_index=[0]), ValueError, "1 entries for a batch of 2"),
        (dict(output_index=1.5), TypeError, "output_index"),
        (dict(baseline=np.zeros(5)), ValueError, "baseline"),
    ]
    for kwargs, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            integrated_gradients(model, x, **kwargs)
    with pytest.raises(TypeError, match="functional keras.Model"):
        input_gradients("model", x)


def test_a_layer_run_twice_is_refused():
    """A plain Keras Embedding shared by two inputs: its output is not one tensor."""
    first = keras.Input((4,), dtype="int32")
    second = keras.Input((4,), dtype="int32")
    embedding = keras.layers.Embedding(10, 8, name="Shared")
    pooled = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Concatenate(axis=1)([embedding(first), embedding(second)])
    )
    model = keras.Model([first, second], keras.layers.Dense(2, activation="softmax")(pooled))
    ids = np.ones((2, 4), "int32")
    with pytest.raises(ValueError, match="'Shared' ran 2 times"):
        input_gradients(model, [ids, ids], layer="Shared")
    with pytest.raises(ValueError, match="one output"):
        two_outputs = keras.Model(model.inputs, [model.output, model.output])
        input_gradients(two_outputs, [ids, ids], layer="Shared")
