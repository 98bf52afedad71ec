"""Virtual adversarial training (nlp4keras.training.VirtualAdversarialModel):
one SGD step against the same quantities computed independently with the
backend's autodiff on plain models (`stateless_call`), unlabeled batches,
learning, and argument errors.

The perturbation of the embedding output is applied, in the references, to
a copy of the classifier whose vocabulary has one row per position (row j
holds E[ids_j]): adding r to its rows is adding r to the embedding output,
and the gradient of a row is the gradient at that position."""

import functools

import keras
import numpy as np
import pytest
from helpers import TINY_BERT
from keras import ops
from test_adversarial import (
    LR,
    assert_update,
    batch,
    classifier,
    embedding_index,
    gradient,
    numpy_values,
)

from nlp4keras.layers import TakeToken
from nlp4keras.models import build_transformer_model
from nlp4keras.training import (
    VirtualAdversarialModel,
    adversarial_training,
    virtual_adversarial_training,
)

SEED = 7
EPSILON = 2.0
XI = 0.5
WEIGHT = 3.0


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (conftest.one_torch_thread)."""


def probs_of(model, values, x):
    non_trainable = [v.value for v in model.non_trainable_variables]
    return model.stateless_call(values, non_trainable, x)[0]


def unit(d):
    """d / ||d||, one norm per example, in float64."""
    d = np.asarray(d, "float64")
    return d / np.sqrt((d**2).sum(axis=(1, 2), keepdims=True))


class PerPosition:
    """`classifier()` for the batch x, and a copy whose vocabulary has one row
    per position of x (fed the ids 1..n): with row j = E[ids_j] + shift_j it
    gives the classifier's probabilities with `shift` added to the embedding
    output, a function the backend's autodiff differentiates directly."""

    def __init__(self, x):
        self.x = x
        ids, segments = x
        self.model = classifier()
        self.expanded = classifier(vocab_size=ids.size + 1)
        self.x2 = [np.arange(1, ids.size + 1, dtype="int32").reshape(ids.shape), segments]
        self.rows = np.concatenate([[0], ids.ravel()])  # row j of E2 is row rows[j] of E
        self.index = embedding_index(self.model)
        self.start = numpy_values(self.model.trainable_variables)
        self.hidden = self.start[self.index].shape[1]

    def probs(self, values, shift):
        rows = ops.concatenate(
            [ops.zeros((1, self.hidden)), ops.reshape(shift, (-1, self.hidden))], axis=0
        )
        table = ops.take(values[self.index], self.rows, axis=0) + rows
        expanded_values = list(values[: self.index]) + [table] + list(values[self.index + 1 :])
        return probs_of(self.expanded, expanded_values, self.x2)


class Reference(PerPosition):
    """The VAT quantities of `batch()` for `classifier()`, from plain autodiff."""

    def __init__(self, power_iterations):
        x, self.y = batch()
        super().__init__(x)
        self.clean = ops.convert_to_numpy(probs_of(self.model, self.start, self.x))
        # The model's first draw from a generator with the same seed.
        shape = x[0].shape + (self.hidden,)
        noise = keras.random.normal(shape, seed=keras.random.SeedGenerator(SEED), dtype="float32")
        self.noise = ops.convert_to_numpy(noise)
        d = XI * unit(self.noise)
        for _ in range(power_iterations):
            (g,) = gradient(self.kl_of_shift, [d.astype("float32")], self.start)
            d = XI * unit(g)
        self.r = (EPSILON * unit(g)).astype("float32")

    def vat(self, values, shift):
        """KL(p_clean || p(e + shift)), batch mean."""
        perturbed = self.probs(values, shift)
        return ops.mean(keras.losses.kl_divergence(self.clean, perturbed))

    def kl_of_shift(self, leaves, values):
        return self.vat(values, leaves[0])

    def objective(self, values, r, y, sample_weight, supervised):
        """supervised * CE(y, p(x); sample_weight) + WEIGHT * KL(p_clean || p(e + r))."""
        probs = probs_of(self.model, values, self.x)
        ce = keras.losses.SparseCategoricalCrossentropy()(y, probs, sample_weight=sample_weight)
        return supervised * ce + WEIGHT * self.vat(values, r)

    def update(self, r, y, sample_weight=None, supervised=1.0):
        """Parameters after one SGD step on the objective."""
        weights = np.ones(len(y), "float32") if sample_weight is None else sample_weight
        grads = gradient(self.objective, self.start, r, y, weights, supervised)
        return [s - LR * g for s, g in zip(self.start, grads, strict=True)]


@functools.cache
def reference(power_iterations=1):
    return Reference(power_iterations)


def vat_step(y=None, sample_weight=None, recompute=False, logits=False, **kwargs):
    """One SGD step of a VirtualAdversarialModel on batch() (targets y)."""
    model = classifier(recompute=recompute)
    if logits:  # the same model without its softmax
        model.layers[-1].activation = keras.activations.get("linear")
    kwargs = dict(dict(epsilon=EPSILON, xi=XI, vat_weight=WEIGHT, seed=SEED), **kwargs)
    vat = VirtualAdversarialModel(model.inputs, model.output, from_logits=logits, **kwargs)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    vat.compile(optimizer=keras.optimizers.SGD(LR), loss=loss)
    x, _ = batch()
    history = vat.fit(x, y, sample_weight=sample_weight, batch_size=2, shuffle=False, verbose=0)
    return numpy_values(model.trainable_variables), history.history


@functools.cache
def labeled_step(power_iterations=1):
    return vat_step(batch()[1], power_iterations=power_iterations)


@pytest.mark.parametrize("power_iterations", [1, 2])
def test_update_is_supervised_plus_vat_gradient(power_iterations):
    """CE + w KL(p || p(e + r_adv)), r_adv from the power iteration at the
    clean prediction (held constant), no gradient through r_adv."""
    ref = reference(power_iterations)
    actual, history = labeled_step(power_iterations)
    expected = ref.update(ref.r, ref.y)
    # r = 0: the KL's gradient vanishes at p = p_clean, leaving plain training.
    plain = ref.update(np.zeros_like(ref.r), ref.y)
    assert_update(actual, expected, ref.start, wrong=plain)
    # The power iteration matters: the random direction alone gives another update.
    random_r = (EPSILON * unit(ref.noise)).astype("float32")
    assert_update(actual, expected, ref.start, wrong=ref.update(random_r, ref.y))
    vat = float(ref.vat(ref.start, ref.r))
    np.testing.assert_allclose(history["vat_loss"][0], vat, rtol=1e-4)


def test_unlabeled_batches_train_on_the_vat_term_alone():
    """fit(x) without targets: the update is that of WEIGHT * KL alone."""
    ref = reference()
    actual, history = vat_step(None)
    expected = ref.update(ref.r, ref.y, supervised=0.0)
    assert_update(actual, expected, ref.start, wrong=ref.update(ref.r, ref.y))
    assert set(history) == {"loss", "vat_loss"}
    np.testing.assert_allclose(history["loss"][0], WEIGHT * history["vat_loss"][0], rtol=1e-6)


def test_unlabeled_then_labeled_batches_with_compiled_metrics():
    """bert4keras' pattern with train_on_batch: the first batch may be unlabeled (the
    compiled metrics are not built yet); on TensorFlow a labeled batch after that is
    refused with a message (its traced step cannot create the metrics' variables)."""
    model = virtual_adversarial_training(classifier(), epsilon=EPSILON, xi=XI)
    model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = batch()
    logs = model.train_on_batch(x, return_dict=True)
    assert set(logs) == {"loss", "vat_loss"} and logs["loss"] == logs["vat_loss"]
    if keras.backend.backend() == "tensorflow":
        with pytest.raises(ValueError, match="a labeled batch after unlabeled ones"):
            model.train_on_batch(x, y)
        return
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy", "vat_loss"}


def test_rows_with_sample_weight_zero_are_unlabeled():
    """A mixed batch: the second row's label (any) has sample weight 0, so the
    supervised loss ignores it while its VAT term counts."""
    ref = reference()
    y = np.array([ref.y[0], (ref.y[1] + 1) % 3], "int32")
    weights = np.array([1.0, 0.0], "float32")
    actual, _ = vat_step(y, sample_weight=weights)
    expected = ref.update(ref.r, y, weights)
    assert_update(actual, expected, ref.start, wrong=ref.update(ref.r, y))


def test_from_logits_matches_probabilities():
    """The same classifier without its softmax, with from_logits=True for the
    loss and the KL, takes the same step."""
    probabilities, _ = labeled_step()
    logits, _ = vat_step(batch()[1], logits=True)
    for a, b in zip(logits, probabilities, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_recomputed_blocks_give_the_same_update():
    """The power iteration's inner gradient runs through recomputed blocks
    (TensorFlow: inside Keras' tape)."""
    plain, _ = labeled_step()
    recomputed, _ = vat_step(batch()[1], recompute=True)
    for a, b in zip(recomputed, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_training_lowers_the_loss_with_dropout_and_unlabeled_batches():
    """Toy task (the class is the first token mod 3) with dropout (random state
    advanced by the extra passes) and accuracy compiled; then unlabeled fits.
    epsilon suits this model's embeddings (norm about 0.1 per token): the
    default 1 would dwarf them and VAT would flatten the classifier."""
    keras.utils.set_random_seed(0)
    bert = build_transformer_model(**dict(TINY_BERT, num_hidden_layers=1), dropout_rate=0.1)
    probs = keras.layers.Dense(3, activation="softmax")(TakeToken(0)(bert.output))
    model = keras.Model(bert.inputs, probs)
    model = virtual_adversarial_training(model, epsilon=0.05, xi=0.5, seed=0)
    model.compile(
        keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    ids = np.random.default_rng(5).integers(1, 6, size=(16, 6)).astype("int32")
    x = [ids, np.zeros_like(ids)]
    history = model.fit(x, ids[:, 0] % 3, batch_size=4, epochs=12, verbose=0).history
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["vat_loss"]).all()
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert history["accuracy"][-1] > 0.9
    unlabeled = model.fit(x, batch_size=4, epochs=2, verbose=0).history
    assert set(unlabeled) == {"loss", "vat_loss"} and np.isfinite(unlabeled["loss"]).all()


def test_bad_arguments_are_named():
    model = classifier()
    inputs, output = model.inputs, model.output
    cases = [
        (dict(epsilon=0), ValueError, "epsilon"),
        (dict(xi=-1.0), ValueError, "xi"),
        (dict(power_iterations=0), ValueError, "power_iterations"),
        (dict(power_iterations=1.5), TypeError, "power_iterations"),
        (dict(vat_weight="1"), TypeError, "vat_weight"),
        (dict(from_logits=1), TypeError, "from_logits"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(embedding_name="Embedding-Tokens"), ValueError, "Did you mean 'Embedding-Token'"),
    ]
    for kwargs, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            VirtualAdversarialModel(inputs, output, **kwargs)
    with pytest.raises(ValueError, match="one output"):
        VirtualAdversarialModel(inputs, [output, output])
    with pytest.raises(TypeError, match="functional keras.Model"):
        virtual_adversarial_training("model")
    with pytest.raises(ValueError, match="use VirtualAdversarialModel"):
        adversarial_training(model, method="vat")
