"""FGM and gradient penalty (nlp4keras.training.AdversarialModel): one SGD
step against the same quantities computed independently with the backend's
autodiff on a plain model (`stateless_call`), plus restoring and learning."""

import keras
import numpy as np
import pytest
from helpers import TINY_BERT

from nlp4keras.layers import TakeToken
from nlp4keras.models import build_transformer_model
from nlp4keras.training import AdversarialModel, adversarial_training

BACKEND = keras.backend.backend()
LR = 0.1
# Larger weights than BERT's 0.02 init, so that gradients (and the penalty)
# are far above float32 noise.
CONFIG = dict(TINY_BERT, num_hidden_layers=1, initializer_range=0.3)


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (conftest.one_torch_thread)."""


def classifier(vocab_size=CONFIG["vocab_size"], recompute=False):
    keras.utils.set_random_seed(0)
    bert = build_transformer_model(**dict(CONFIG, vocab_size=vocab_size), recompute=recompute)
    probs = keras.layers.Dense(3, activation="softmax")(TakeToken(0)(bert.output))
    return keras.Model(bert.inputs, probs)


def batch():
    """No padding, and few distinct tokens so that tokens repeat."""
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 6, size=(2, 6)).astype("int32")
    return [ids, np.zeros_like(ids)], np.array([0, 2], "int32")


def numpy_values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def embedding_index(model):
    matrix = model.get_layer("Embedding-Token").embeddings
    return next(i for i, v in enumerate(model.trainable_variables) if v is matrix)


def loss_of(model, values, x, y):
    non_trainable = [v.value for v in model.non_trainable_variables]
    probs, _ = model.stateless_call(values, non_trainable, x)
    return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, probs))


_JAX_GRADIENTS = {}


def gradient(objective, values, *args):
    """d objective(values, *args) / d values by the backend's autodiff (numpy
    out); the objective may itself take gradients (torch: math attention
    kernel, whose double backward exists; TensorFlow: nested tapes)."""
    if BACKEND == "jax":
        import jax

        if objective not in _JAX_GRADIENTS:  # compile once per objective
            _JAX_GRADIENTS[objective] = jax.jit(jax.grad(objective))
        return [np.asarray(g) for g in _JAX_GRADIENTS[objective](values, *args)]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        leaves = [tf.constant(v) for v in values]
        with tf.GradientTape() as tape:
            tape.watch(leaves)
            value = objective(leaves, *args)
        return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(value, leaves)]
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    leaves = [torch.tensor(v, requires_grad=True) for v in values]
    with sdpa_kernel(SDPBackend.MATH):
        grads = torch.autograd.grad(objective(leaves, *args), leaves)
    return [g.numpy() for g in grads]


def inner_gradient(objective, value):
    """d objective / d value, differentiable again."""
    if BACKEND == "jax":
        import jax

        return jax.grad(objective)(value)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:  # recorded by the caller's outer tape
            tape.watch(value)
            result = objective(value)
        return tf.convert_to_tensor(tape.gradient(result, value))
    import torch

    return torch.autograd.grad(objective(value), value, create_graph=True)[0]


def one_sgd_step(model, x, y, **kwargs):
    adversarial = AdversarialModel(model.inputs, model.output, **kwargs)
    adversarial.compile(optimizer=keras.optimizers.SGD(LR), loss="sparse_categorical_crossentropy")
    adversarial.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0)
    return numpy_values(model.trainable_variables), adversarial


def assert_update(actual, expected, start, wrong):
    """actual == expected (float32 noise), and far from a wrong update."""
    scale = max(np.abs(e - s).max() for e, s in zip(expected, start, strict=True))
    tolerance = 1e-4 * scale
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=0, atol=tolerance)
    assert max(np.abs(w - e).max() for w, e in zip(wrong, expected, strict=True)) > 100 * tolerance


@pytest.fixture(scope="module")
def fgm_steps():
    """One SGD step with FGM (clean_loss True and False) on fresh copies of the
    same model, and the reference updates from independent gradients."""
    epsilon = 1.0
    x, y = batch()
    model = classifier()
    start = numpy_values(model.trainable_variables)
    index = embedding_index(model)

    def loss(values):
        return loss_of(model, values, x, y)

    clean = gradient(loss, start)
    g = clean[index].astype("float64")
    delta = epsilon * g / (np.sqrt((g**2).sum()) + 1e-8)
    perturbed = list(start)
    perturbed[index] = (start[index] + delta).astype("float32")
    adversarial = gradient(loss, perturbed)
    steps = {"start": start, "x": x, "y": y}
    steps["plain"] = [s - LR * c for s, c in zip(start, clean)]
    steps["both"] = [s - LR * (c + a) for s, c, a in zip(start, clean, adversarial)]
    steps["adversarial_only"] = [s - LR * a for s, a in zip(start, adversarial)]
    for clean_loss in (True, False):
        steps[clean_loss] = one_sgd_step(
            classifier(), x, y, method="fgm", epsilon=epsilon, clean_loss=clean_loss
        )
    return steps


def test_fgm_update_is_clean_plus_adversarial_gradient(fgm_steps):
    actual, _ = fgm_steps[True]
    assert_update(actual, fgm_steps["both"], fgm_steps["start"], wrong=fgm_steps["plain"])


def test_fgm_without_clean_loss_uses_the_adversarial_gradient_alone(fgm_steps):
    """bert4keras' variant."""
    actual, _ = fgm_steps[False]
    expected = fgm_steps["adversarial_only"]
    assert_update(actual, expected, fgm_steps["start"], wrong=fgm_steps["both"])


def test_fgm_leaves_no_perturbation(fgm_steps):
    """With a zero learning rate a step leaves every weight as it was, bit for
    bit: the perturbation is gone from the embedding matrix."""
    _, model = fgm_steps[False]
    model.optimizer.learning_rate = 0.0
    before = numpy_values(model.weights)
    model.fit(fgm_steps["x"], fgm_steps["y"], epochs=2, verbose=0)
    for old, new in zip(before, numpy_values(model.weights), strict=True):
        np.testing.assert_array_equal(old, new)


def test_fgm_training_lowers_the_loss(fgm_steps):
    """Toy task: the class is the first token mod 3 (batches shaped like the
    compiled step's)."""
    _, model = fgm_steps[True]
    ids = np.random.default_rng(5).integers(1, 6, size=(16, 6)).astype("int32")
    labels = ids[:, 0] % 3
    history = model.fit([ids, np.zeros_like(ids)], labels, batch_size=2, epochs=10, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0]


def test_gradient_penalty_is_its_definition():
    """L + 0.5 * eps * ||dL/de||^2 with e the embedding output, one row per
    position (repeated tokens not summed): computed on a copy of the model
    whose vocabulary has one row per position (E2 = E[ids]), so that its
    matrix gradient is that per-position gradient; the outer gradient flows
    back to E through the gather."""
    epsilon = 3.0
    model = classifier()
    x, y = batch()
    ids, segments = x
    positions = ids.size
    expanded = classifier(vocab_size=positions + 1)
    x2 = [np.arange(1, positions + 1, dtype="int32").reshape(ids.shape), segments]
    rows = np.concatenate([[0], ids.ravel()])  # row j of E2 is row rows[j] of E
    index = embedding_index(model)
    start = numpy_values(model.trainable_variables)

    def penalised(values, weight):
        def expanded_loss(table):
            expanded_values = values[:index] + [table] + values[index + 1 :]
            return loss_of(expanded, expanded_values, x2, y)

        table = keras.ops.take(values[index], rows, axis=0)
        per_position = inner_gradient(expanded_loss, table)
        penalty = 0.5 * keras.ops.sum(keras.ops.square(per_position))
        return loss_of(model, values, x, y) + weight * penalty

    expected = [s - LR * g for s, g in zip(start, gradient(penalised, start, epsilon))]
    plain = [s - LR * g for s, g in zip(start, gradient(penalised, start, 0.0))]

    actual, _ = one_sgd_step(model, x, y, method="gradient_penalty", epsilon=epsilon)
    assert_update(actual, expected, start, wrong=plain)


@pytest.mark.parametrize("method", ["fgm", "gradient_penalty"])
def test_recomputed_blocks_give_the_same_update(method):
    """The attention layers nested in recomputed blocks are found too (the
    penalty needs their twice-differentiable path: torch's fused CPU kernel
    has no second derivative)."""
    x, y = batch()
    plain, _ = one_sgd_step(classifier(), x, y, method=method, epsilon=3.0)
    recomputed, _ = one_sgd_step(classifier(recompute=True), x, y, method=method, epsilon=3.0)
    for a, b in zip(recomputed, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bad_arguments_are_named():
    model = classifier()
    with pytest.raises(ValueError, match="Did you mean 'Embedding-Token'.*Embedding-Segment"):
        adversarial_training(model, embedding_name="Embedding-Tokens")
    with pytest.raises(ValueError, match="Valid methods: fgm, gradient_penalty"):
        adversarial_training(model, method="vat")
    with pytest.raises(ValueError, match="epsilon"):
        adversarial_training(model, epsilon=0)
    model.get_layer("Embedding-Token").trainable = False
    with pytest.raises(ValueError, match="trainable"):
        adversarial_training(model)


@pytest.mark.parametrize("wrap", ["fgm", "gradient_penalty", "vat"])
def test_a_compiled_model_gives_a_model_compiled_the_same_way(wrap):
    """bert4keras' scripts add adversarial training after compile: the wrapped
    model gets the same optimizer object, loss and metrics; an uncompiled one
    stays uncompiled."""
    from nlp4keras.training import virtual_adversarial_training

    def make(model):
        if wrap == "vat":
            return virtual_adversarial_training(model)
        return adversarial_training(model, method=wrap, epsilon=0.1)

    assert not make(classifier()).compiled
    model = classifier()
    optimizer = keras.optimizers.SGD(LR)
    model.compile(
        optimizer, "sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"]
    )
    wrapped = make(model)
    assert wrapped.compiled and wrapped.optimizer is optimizer
    x, y = batch()
    logs = wrapped.train_on_batch(x, y, return_dict=True)
    assert set(logs) >= {"loss", "sparse_categorical_accuracy"}
    # The loss it reports after the step is the compiled loss of the shared weights.
    probs = keras.ops.convert_to_numpy(model(x))
    expected = -np.log(probs[np.arange(len(y)), y]).mean()
    np.testing.assert_allclose(wrapped.evaluate(x, y, verbose=0)[0], expected, rtol=1e-4)
