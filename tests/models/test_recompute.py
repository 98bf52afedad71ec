"""Recompute (gradient checkpointing): `recompute_grad` and the builder's
`recompute=True` give the same outputs and gradients as the plain model
(relative error of each layer's gradient <= 1e-6, dropout included: the
recomputation draws the same masks), keep layer names, weights, fit,
save/load and checkpoint loading, and really recompute (fewer stored
activations; a block's layers run again in the backward pass)."""

import keras
import numpy as np
import pytest
from helpers import TINY_BERT, padded_batch, run

from nlp4keras.backend import recompute_grad
from nlp4keras.layers import Add
from nlp4keras.models import BERT, build_transformer_model
from nlp4keras.recompute import RecomputedBlock, RecomputedModel

BACKEND = keras.backend.backend()
LAYERS = TINY_BERT["num_hidden_layers"]

VARIANTS = {
    "encoder": {},
    "realformer_lm": dict(residual_attention_scores=True, application="lm"),
    "unilm": dict(application="unilm"),
    "dropout": dict(dropout_rate=0.3),
}


def batch():
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [12, 5, 9], 12, seed=3)
    return [ids, segments]


def build_pair(**kwargs):
    """A plain and a recomputed Transformer holding the same weights and seeds."""
    config = {**TINY_BERT, **kwargs}
    plain = build_transformer_model(**config, return_keras_model=False)
    recomputed = build_transformer_model(**config, recompute=True, return_keras_model=False)
    assert set(plain.layers) <= set(recomputed.layers)
    for name, layer in plain.layers.items():
        for target, source in zip(recomputed.layers[name].variables, layer.variables):
            target.assign(source)  # weights and dropout seed states
    return plain, recomputed


def loss_of(outputs):
    """A loss touching every output element with a different weight."""
    total = 0.0
    for i, output in enumerate(keras.tree.flatten(outputs)):
        weights = np.random.default_rng(i).normal(size=tuple(output.shape)).astype("float32")
        total = total + keras.ops.sum(
            keras.ops.cast(output, "float32") * keras.ops.convert_to_tensor(weights)
        )
    return total


def loss_and_gradients(model, inputs):
    """Training-mode loss and {id(variable): gradient} for every trainable weight."""
    keras.utils.set_random_seed(0)  # unseeded (global-RNG) dropout draws alike
    variables = model.trainable_variables
    if BACKEND == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_fn(values):
            outputs, _ = model.stateless_call(values, non_trainable, inputs, training=True)
            return loss_of(outputs)

        value, grads = jax.value_and_grad(loss_fn)([v.value for v in variables])
    elif BACKEND == "torch":
        for v in variables:
            v.value.grad = None
        value = loss_of(model(inputs, training=True))
        value.backward()
        grads = [v.value.grad for v in variables]
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss_of(model(inputs, training=True))
        # The embedding's gradient comes as IndexedSlices: made dense.
        grads = [
            tf.convert_to_tensor(g) for g in tape.gradient(value, [v.value for v in variables])
        ]
    else:
        raise NotImplementedError(f"no gradient helper for the {BACKEND} backend")
    as_numpy = keras.ops.convert_to_numpy
    return float(as_numpy(value)), {id(v): as_numpy(g) for v, g in zip(variables, grads)}


def assert_same_gradients(plain, recomputed, inputs):
    """Per layer (its weights' gradients as one vector), so that a weight whose
    exact gradient is zero (the key bias: softmax ignores a per-query
    constant) is compared by its rounding noise against the layer's scale."""
    plain_loss, plain_grads = loss_and_gradients(plain.model, inputs)
    loss, grads = loss_and_gradients(recomputed.model, inputs)
    assert loss == pytest.approx(plain_loss, rel=1e-6)
    compared = 0
    for name, layer in plain.layers.items():
        pairs = list(zip(layer.trainable_weights, recomputed.layers[name].trainable_weights))
        if not pairs:
            continue
        expected = np.concatenate([plain_grads[id(source)].ravel() for source, _ in pairs])
        actual = np.concatenate([grads[id(target)].ravel() for _, target in pairs])
        error = np.linalg.norm(actual - expected) / np.linalg.norm(expected)
        assert error <= 1e-6, f"{name}: relative gradient error {error:.2e}"
        compared += len(pairs)
    assert compared == len(plain.model.trainable_weights) == len(recomputed.model.trainable_weights)


@pytest.mark.spread
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_same_outputs_and_gradients_as_the_plain_model(variant):
    plain, recomputed = build_pair(**VARIANTS[variant])
    blocks = [layer for layer in recomputed.model.layers if isinstance(layer, RecomputedBlock)]
    assert [block.name for block in blocks] == [f"Transformer-{i}" for i in range(LAYERS)]
    inputs = batch()
    for a, b in zip(
        keras.tree.flatten(run(plain.model, inputs)),
        keras.tree.flatten(run(recomputed.model, inputs)),
    ):
        np.testing.assert_array_equal(a, b)
    assert_same_gradients(plain, recomputed, inputs)


def test_dropout_is_active_in_the_dropout_variant():
    """Else the dropout case of the gradient test would prove nothing."""
    _, recomputed = build_pair(**VARIANTS["dropout"])
    inputs = batch()
    keras.utils.set_random_seed(0)
    training = keras.ops.convert_to_numpy(recomputed.model(inputs, training=True))
    assert np.abs(training - run(recomputed.model, inputs)).max() > 1e-3


def test_layers_keep_their_names_and_weights():
    plain, recomputed = build_pair()
    model = recomputed.model
    assert isinstance(model, RecomputedModel)
    for name in plain.layers:
        assert model.get_layer(name) is recomputed.layers[name]
    feed_forward = model.get_layer("Transformer-1-FeedForward")
    assert model.get_layer("Transformer-1").get_layer(feed_forward.name) is feed_forward
    assert len(model.weights) == len(plain.model.weights)
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("Transformer-9-FeedForward")


# ------------------------------------------------ recompute really happens
def count_calls(layer):
    """Count the runs of `layer.call` (forward and recomputation)."""
    calls = []
    original = layer.call

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    layer.call = counted
    return calls


def stored_activation_bytes(model, inputs):
    """Bytes the backward pass keeps from a training-mode forward."""
    if BACKEND == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_fn(values):
            outputs, _ = model.stateless_call(values, non_trainable, inputs, training=True)
            return loss_of(outputs)

        _, backward = jax.vjp(loss_fn, [v.value for v in model.trainable_variables])
        return sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(backward))
    import torch

    stored = []

    def pack(tensor):
        stored.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss_of(model(inputs, training=True))
    return sum(stored)


@pytest.mark.skipif(
    BACKEND == "tensorflow",
    reason="TensorFlow has no hook to count the tensors a tape keeps; recomputation "
    "is checked there by counting block runs in the backward pass",
)
def test_recompute_stores_fewer_activations():
    plain, recomputed = build_pair()
    inputs = batch()
    plain_bytes = stored_activation_bytes(plain.model, inputs)
    recomputed_bytes = stored_activation_bytes(recomputed.model, inputs)
    assert recomputed_bytes < 0.5 * plain_bytes, (recomputed_bytes, plain_bytes)


def jax_program_checkpoints_each_block_in_training_only():
    import jax

    _, recomputed = build_pair()
    model, inputs = recomputed.model, batch()
    values = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def checkpoints(training):
        def forward(values):
            return model.stateless_call(values, non_trainable, inputs, training=training)[0]

        equations = jax.make_jaxpr(forward)(values).jaxpr.eqns
        return sum(
            "remat" in e.primitive.name or "checkpoint" in e.primitive.name for e in equations
        )

    assert checkpoints(training=True) == LAYERS
    assert checkpoints(training=False) == 0


def backward_runs_each_block_again_in_training_only():
    """torch and TensorFlow: a block's layers run again in the backward pass."""
    plain, recomputed = build_pair()
    inputs = batch()
    for transformer, recomputations in ((plain, 0), (recomputed, 1)):
        model = transformer.model
        calls = count_calls(transformer.layers["Transformer-0-FeedForward"])
        for training in (True, False):
            _, in_backward = forward_and_backward(
                lambda: model(inputs, training=training), model, calls
            )
            expected = recomputations if training else 0
            assert in_backward == expected, (transformer.recompute, training)


def forward_and_backward(forward, model, calls):
    """Run forward(), then the backward pass of loss_of(its outputs) with
    respect to `model`'s weights; (len(calls) grown in each)."""
    if BACKEND == "torch":
        outputs = forward()
        in_forward = len(calls)
        loss_of(outputs).backward()
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of(forward())
        in_forward = len(calls)
        tape.gradient(loss, [v.value for v in model.trainable_variables])
    return in_forward, len(calls) - in_forward


# ------------------------------------------------- the decorator on a layer
class DenseStack(keras.layers.Layer):
    """Dense, seeded dropout, Dense; `call` takes no training argument (the
    dropout reads it from Keras' call context). Tiny-BERT feed-forward sizes,
    so that kernels compiled for the other tests are reused."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(TINY_BERT["intermediate_size"], activation="gelu")
        self.dropout = keras.layers.Dropout(0.5, seed=7)
        self.output_layer = keras.layers.Dense(TINY_BERT["hidden_size"])

    def call(self, x):
        return self.output_layer(self.dropout(self.hidden(x)))


class RecomputedDenseStack(DenseStack):
    @recompute_grad
    def call(self, x):
        return super().call(x)


def stack_model(layer_class):
    inputs = keras.Input((None, TINY_BERT["hidden_size"]))
    return keras.Model(inputs, layer_class(name="stack")(inputs))


def test_decorated_layer_gives_the_same_gradients_and_seeds():
    plain, decorated = stack_model(DenseStack), stack_model(RecomputedDenseStack)
    decorated.set_weights(plain.get_weights())
    x = np.random.default_rng(0).normal(size=(3, 12, TINY_BERT["hidden_size"])).astype("float32")
    plain_loss, plain_grads = loss_and_gradients(plain, x)
    loss, grads = loss_and_gradients(decorated, x)
    assert loss == pytest.approx(plain_loss, rel=1e-6)
    for source, target in zip(plain.trainable_weights, decorated.trainable_weights):
        np.testing.assert_allclose(grads[id(target)], plain_grads[id(source)], rtol=1e-6, atol=1e-7)
    # The dropout masks really differ between calls (a seeded generator).
    keras.utils.set_random_seed(0)
    first = keras.ops.convert_to_numpy(decorated(x, training=True))
    second = keras.ops.convert_to_numpy(decorated(x, training=True))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(run(decorated, x), run(plain, x))


def jax_decorated_layer_is_checkpointed():
    import jax

    model = stack_model(RecomputedDenseStack)
    values = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    x = np.ones((3, 12, TINY_BERT["hidden_size"]), "float32")

    def forward(values):
        return model.stateless_call(values, non_trainable, x, training=True)[0]

    names = [e.primitive.name for e in jax.make_jaxpr(forward)(values).jaxpr.eqns]
    assert any("remat" in name or "checkpoint" in name for name in names), names


def decorated_layer_runs_again_in_backward():
    """torch and TensorFlow: the decorated call runs again in the backward pass."""
    model = stack_model(RecomputedDenseStack)
    calls = count_calls(model.get_layer("stack").hidden)
    x = np.ones((3, 12, TINY_BERT["hidden_size"]), "float32")
    assert forward_and_backward(lambda: model(x, training=True), model, calls) == (1, 1)


def on_backend(checks):
    """Run the check written for the backend under test (the JAX program is
    inspected; torch and TensorFlow count the runs in the backward pass)."""
    if BACKEND not in checks:
        raise NotImplementedError(f"no recompute check for the {BACKEND} backend")
    checks[BACKEND]()


def test_blocks_are_recomputed_in_training_only():
    on_backend(
        {
            "jax": jax_program_checkpoints_each_block_in_training_only,
            "torch": backward_runs_each_block_again_in_training_only,
            "tensorflow": backward_runs_each_block_again_in_training_only,
        }
    )


def test_decorated_layer_is_recomputed():
    on_backend(
        {
            "jax": jax_decorated_layer_is_checkpointed,
            "torch": decorated_layer_runs_again_in_backward,
            "tensorflow": decorated_layer_runs_again_in_backward,
        }
    )


# ------------------------------------------- training, saving, checkpoints
def test_recomputed_model_fits_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_transformer_model(**TINY_BERT, with_pool=True, dropout_rate=0.1, recompute=True)
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [12, 9, 5] * 4, 12, seed=4)
    labels = np.tanh(ids[:, :1] / 50.0 - 1.0) * np.ones((1, TINY_BERT["hidden_size"]), "float32")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    losses = model.fit([ids, segments], labels, batch_size=3, epochs=6, verbose=0).history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0], losses

    path = tmp_path / "recomputed.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, RecomputedModel)
    assert isinstance(restored.get_layer("Transformer-1"), RecomputedBlock)
    assert restored.get_layer("Transformer-1-FeedForward").name == "Transformer-1-FeedForward"
    np.testing.assert_array_equal(run(restored, [ids, segments]), run(model, [ids, segments]))


def test_checkpoint_loads_into_the_recomputed_model(tmp_path):
    plain = build_transformer_model(**TINY_BERT, with_mlm=True, return_keras_model=False)
    prefix = str(tmp_path / "bert_model.ckpt")
    plain.save_weights_as_checkpoint(prefix)
    recomputed = build_transformer_model(
        **TINY_BERT, with_mlm=True, checkpoint_path=prefix, recompute=True
    )
    np.testing.assert_array_equal(run(recomputed, batch()), run(plain.model, batch()))


def test_conditional_layer_norm_model_matches_and_round_trips(tmp_path):
    """The condition input reaches every recomputed block (through a layer:
    a block sharing a model input could not be saved)."""
    plain, recomputed = build_pair(layer_norm_cond=5)
    condition = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    inputs = batch() + [condition]
    expected = run(plain.model, inputs)
    np.testing.assert_array_equal(run(recomputed.model, inputs), expected)
    path = tmp_path / "conditional.keras"
    recomputed.model.save(path)
    np.testing.assert_array_equal(run(keras.saving.load_model(path), inputs), expected)


# ----------------------------------------------------- option and errors
def test_recompute_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv("RECOMPUTE", "1")
    assert build_transformer_model(**TINY_BERT, return_keras_model=False).recompute
    assert not build_transformer_model(
        **TINY_BERT, recompute=False, return_keras_model=False
    ).recompute
    monkeypatch.setenv("RECOMPUTE", "0")
    assert not build_transformer_model(**TINY_BERT, return_keras_model=False).recompute
    monkeypatch.setenv("RECOMPUTE", "maybe")
    with pytest.raises(ValueError, match="RECOMPUTE"):
        build_transformer_model(**TINY_BERT)


class SharedAcrossBlocks(BERT):
    """Block 0 computes a tensor that every later block reads."""

    def apply_main_layers(self, inputs, index):
        if index == 0:
            self.shared = self.apply(
                inputs=inputs, layer=keras.layers.Dense, units=self.hidden_size, name="Shared-Dense"
            )
        x = super().apply_main_layers(inputs, index)
        return self.apply(inputs=[x, self.shared], layer=Add, name=f"Shared-Add-{index}")


def test_a_layer_shared_by_blocks_is_a_clear_error():
    build_transformer_model(**TINY_BERT, model=SharedAcrossBlocks)  # fine without recompute
    with pytest.raises(ValueError, match="Shared-Dense"):
        build_transformer_model(**TINY_BERT, model=SharedAcrossBlocks, recompute=True)
