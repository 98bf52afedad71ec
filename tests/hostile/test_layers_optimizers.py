"""Hostile inputs to the task layers, losses, backend helpers, optimizers and
training helpers. Every case is a `test_error_*` (the exception type and a
message naming the argument or tensor and the rule) or a `test_output_*`
(the right value, computed independently here), on every backend.

Label checks run inside compiled code too (nlp4keras.tensor_checks): under
JAX `fit` / `evaluate` raise a JaxRuntimeError holding the message, under
TensorFlow an InvalidArgumentError, under torch the ValueError itself.
"""

import itertools
import types

import keras
import numpy as np
import pytest
from keras import ops

from nlp4keras import backend, losses
from nlp4keras.callbacks import EMACallback
from nlp4keras.layers import (
    DGCNN,
    ConditionalRandomField,
    CRFDecoder,
    EfficientGlobalPointer,
    FeedForward,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    GlobalPointer,
    LayerNormalization,
    Loss,
    MaximumEntropyMarkovModel,
    MultiHeadAttention,
    TakeToken,
    viterbi_decode,
)
from nlp4keras.optimizers import (
    AdaFactor,
    Adam,
    AdaX,
    Lion,
    clip_by_norm,
    clip_by_value,
    extend_with_exponential_moving_average,
    extend_with_gradient_accumulation,
    extend_with_gradient_transforms,
    extend_with_layer_adaptation,
    extend_with_lazy_optimization,
    extend_with_lookahead,
    extend_with_parameter_wise_lr,
    extend_with_piecewise_linear_lr,
    extend_with_weight_decay,
    layerwise_lr_multipliers,
    scale,
)
from nlp4keras.training import AdversarialModel, get_intermediates

NAN, INF = float("nan"), float("inf")
K = 4  # labels of the tagging problems below


def as_np(x):
    return ops.convert_to_numpy(x)


def case_ids(table):
    """Readable ids for (callable, kwargs, ...) rows: 'Owner-name=value'."""
    return [
        f"{owner.__name__}-" + ",".join(f"{k}={v!r}" for k, v in kwargs.items())
        for owner, kwargs, *_ in table
    ]


def compiled_error():
    """What a failed tensor check raises from Keras' compiled fit/evaluate."""
    name = keras.backend.backend()
    if name == "jax":
        import jax

        return jax.errors.JaxRuntimeError
    if name == "tensorflow":
        import tensorflow as tf

        return tf.errors.InvalidArgumentError
    return ValueError


# ----------------------------------------------------------------------------
# Layer constructors: every argument is checked, and the message names the
# layer and the argument.


class _Dense(keras.layers.Dense):
    """A layer without transitions, for CRFDecoder."""


LAYER_ARGUMENTS = [
    (MultiHeadAttention, dict(heads=0, head_size=4), ValueError, "`heads` must be an integer >= 1"),
    (MultiHeadAttention, dict(heads=2.5, head_size=4), TypeError, "`heads` must be an integer"),
    (MultiHeadAttention, dict(heads=2, head_size=-8), ValueError, "`head_size`.*got -8"),
    (MultiHeadAttention, dict(heads=2, head_size=4, key_size=0), ValueError, "`key_size`"),
    (MultiHeadAttention, dict(heads=2, head_size=4, out_dim=0), ValueError, "`out_dim`"),
    (
        MultiHeadAttention,
        dict(heads=2, head_size=4, attention_dropout=1.5),
        ValueError,
        "`attention_dropout`",
    ),
    (
        MultiHeadAttention,
        dict(heads=2, head_size=4, attention_dropout=NAN),
        ValueError,
        "`attention_dropout`.*nan",
    ),
    (
        MultiHeadAttention,
        dict(heads=2, head_size=4, use_bias="yes"),
        TypeError,
        "`use_bias` must be True or False",
    ),
    (
        MultiHeadAttention,
        dict(heads=2, head_size=4, attention_scale=1),
        TypeError,
        "`attention_scale`",
    ),
    (FeedForward, dict(units=0), ValueError, "FeedForward: `units` must be an integer >= 1"),
    (FeedForward, dict(units=8, activation=None), TypeError, "FeedForward: `activation`.*'linear'"),
    (FeedForward, dict(units=8, activation="gleu"), ValueError, "unknown activation 'gleu'"),
    (FeedForward, dict(units=8, activation=[]), ValueError, "`activation`.*empty list"),
    (FeedForward, dict(units=8, use_bias=None), TypeError, "FeedForward: `use_bias`"),
    (LayerNormalization, dict(epsilon=NAN), ValueError, "LayerNormalization: `epsilon`.*nan"),
    (
        LayerNormalization,
        dict(epsilon=-1e-6),
        ValueError,
        "`epsilon` must be a finite real number >= 0",
    ),
    (LayerNormalization, dict(conditional="yes"), TypeError, "`conditional` must be True or False"),
    (LayerNormalization, dict(conditional=True, hidden_units=0), ValueError, "`hidden_units`"),
    (LayerNormalization, dict(hidden_activation="nope"), ValueError, "`hidden_activation`.*'nope'"),
    (GlobalPointer, dict(heads=0, head_size=4), ValueError, "GlobalPointer: `heads`"),
    (GlobalPointer, dict(heads=2, head_size=5), ValueError, "RoPE needs an even head_size.*5"),
    (GlobalPointer, dict(heads=2, head_size=4, RoPE=1), TypeError, "`RoPE` must be True or False"),
    (
        EfficientGlobalPointer,
        dict(heads=2, head_size=2.5),
        TypeError,
        "EfficientGlobalPointer: `head_size`",
    ),
    (EfficientGlobalPointer, dict(heads=2, head_size=4, tril_mask="no"), TypeError, "`tril_mask`"),
    (DGCNN, dict(dilation_rate=0), ValueError, "DGCNN: `dilation_rate` must be an integer >= 1"),
    (DGCNN, dict(dropout_rate=NAN), ValueError, "DGCNN: `dropout_rate`.*nan"),
    (DGCNN, dict(skip_connect="no"), TypeError, "DGCNN: `skip_connect`"),
    (
        GlobalAveragePooling1D,
        dict(data_format="channels_middle"),
        ValueError,
        "`data_format` must be one of",
    ),
    (GlobalMaxPooling1D, dict(keepdims=1), TypeError, "GlobalMaxPooling1D: `keepdims`"),
    (Loss, dict(output_axis=[]), ValueError, "`output_axis` must name at least one input"),
    (Loss, dict(output_axis=1.0), TypeError, "`output_axis` must be None, an int or a list"),
    (Loss, dict(output_axis=[0, "1"]), TypeError, r"`output_axis\[1\]`"),
    (TakeToken, dict(index="0"), TypeError, "TakeToken: `index` must be an integer"),
    (
        ConditionalRandomField,
        dict(lr_multiplier=NAN),
        ValueError,
        "ConditionalRandomField: `lr_multiplier`.*nan",
    ),
    (
        ConditionalRandomField,
        dict(lr_multiplier=INF),
        ValueError,
        "`lr_multiplier` must be a finite real number > 0",
    ),
    (ConditionalRandomField, dict(lr_multiplier=-2), ValueError, "`lr_multiplier`.*got -2"),
    (ConditionalRandomField, dict(lr_multiplier="10"), TypeError, "`lr_multiplier`.*'10'"),
    (
        MaximumEntropyMarkovModel,
        dict(lr_multiplier=NAN),
        ValueError,
        "MaximumEntropyMarkovModel: `lr_multiplier`",
    ),
    (
        MaximumEntropyMarkovModel,
        dict(hidden_dim=0),
        ValueError,
        "`hidden_dim` must be an integer >= 1",
    ),
    (MaximumEntropyMarkovModel, dict(hidden_dim=1.5), TypeError, "`hidden_dim`"),
]


@pytest.mark.parametrize(
    "cls, kwargs, error, message",
    LAYER_ARGUMENTS,
    ids=case_ids(LAYER_ARGUMENTS),
)
def test_error_layer_argument(cls, kwargs, error, message):
    with pytest.raises(error, match=message):
        cls(**kwargs)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(crf=_Dense(3)), TypeError, "CRFDecoder: `crf` must be a ConditionalRandomField"),
        (dict(crf=None), TypeError, "CRFDecoder: `crf`"),
        (dict(starts=[]), ValueError, "CRFDecoder: `starts` must not be empty"),
        (dict(starts=[0.5]), TypeError, r"CRFDecoder: `starts\[0\]` must be an integer"),
        (dict(ends=[-1]), ValueError, r"`ends\[0\]` must be >= 0"),
        (dict(ends="01"), TypeError, "CRFDecoder: `ends` must be a list of integers"),
    ],
    ids=["crf-dense", "crf-none", "starts-empty", "starts-float", "ends-negative", "ends-string"],
)
def test_error_crf_decoder_argument(kwargs, error, message):
    kwargs.setdefault("crf", ConditionalRandomField())
    with pytest.raises(error, match=message):
        CRFDecoder(**kwargs)


def test_error_crf_decoder_label_id_beyond_num_labels():
    crf = ConditionalRandomField()
    crf(np.zeros((1, 2, K), "float32"))
    decoder = CRFDecoder(crf, ends=[K])
    with pytest.raises(ValueError, match=rf"CRFDecoder: `ends` has label ids \[{K}\] outside"):
        decoder(np.zeros((1, 2, K), "float32"))


# ----------------------------------------------------------------------------
# Layer inputs


def test_error_attention_needs_q_k_v():
    x = np.zeros((1, 3, 8), "float32")
    with pytest.raises(ValueError, match=r"MultiHeadAttention expects a list of inputs \[q, k, v"):
        MultiHeadAttention(2, 4)([x, x])


def test_error_attention_k_and_v_lengths_differ():
    q, k, v = (np.zeros((1, n, 8), "float32") for n in (3, 5, 4))
    with pytest.raises(ValueError, match="`k` and `v` must have the same length"):
        MultiHeadAttention(2, 4)([q, k, v])


def test_error_take_token_index_out_of_range():
    with pytest.raises(ValueError, match="TakeToken: `index` 5 is out of range for 3 steps"):
        TakeToken(5)(np.zeros((2, 3, 4), "float32"))


def test_error_conditional_layer_norm_without_condition():
    with pytest.raises(ValueError, match=r"conditional=True\) expects inputs \[x, cond\]"):
        LayerNormalization(conditional=True)(np.zeros((2, 3, 4), "float32"))


def test_error_pooling_mask_of_another_length():
    x = np.ones((2, 3, 4), "float32")
    with pytest.raises(ValueError, match=r"the mask must have shape \[batch, steps\]"):
        GlobalAveragePooling1D()(x, mask=np.ones((2, 5), bool))


# ----------------------------------------------------------------------------
# CRF and MEMM: padding, labels, accuracy


def tagging_problem(lengths, steps=4, seed=0):
    rng = np.random.default_rng(seed)
    emissions = (2 * rng.normal(size=(len(lengths), steps, K))).astype("float32")
    labels = rng.integers(0, K, size=(len(lengths), steps)).astype("int32")
    mask = np.arange(steps)[None, :] < np.array(lengths)[:, None]
    return emissions, labels, mask


def brute_force_nll(emissions, trans, labels):
    """-log p(labels) of one unpadded sequence, summing over every path (float64)."""
    emissions, trans = emissions.astype("float64"), trans.astype("float64")
    steps = np.arange(len(emissions))

    def score(path):
        return emissions[steps, path].sum() + trans[path[:-1], path[1:]].sum()

    every = [score(np.array(p)) for p in itertools.product(range(K), repeat=len(emissions))]
    return np.logaddexp.reduce(every) - score(labels)


def built_crf(seed=1):
    crf = ConditionalRandomField()
    crf.build((None, None, K))
    trans = np.random.default_rng(seed).normal(size=(K, K)).astype("float32")
    crf._trans.assign(trans)
    return crf, trans


def test_output_crf_all_padding_row_has_zero_loss():
    emissions, labels, mask = tagging_problem([3, 0])
    crf, trans = built_crf()
    scores = crf(emissions, mask=mask)
    sparse = as_np(crf.sparse_loss(labels, scores))
    dense = as_np(crf.dense_loss(np.eye(K, dtype="float32")[labels], scores))
    expected = brute_force_nll(emissions[0, :3], trans, labels[0, :3])
    np.testing.assert_allclose(sparse, [expected, 0.0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense, [expected, 0.0], rtol=1e-5, atol=1e-6)


def direction_nll(emissions, labels, trans):
    """One direction of the MEMM loss, summed over an unpadded sequence (float64)."""
    history = np.concatenate([emissions[:1], trans[labels[:-1]]])
    logits = (emissions + history) / 2
    return (np.logaddexp.reduce(logits, axis=1) - logits[np.arange(len(labels)), labels]).sum()


def test_output_memm_all_padding_row_and_batch_have_zero_loss():
    emissions, labels, mask = tagging_problem([3, 0])
    memm = MaximumEntropyMarkovModel()
    memm.build((None, None, K))
    trans = np.random.default_rng(2).normal(size=(K, K)).astype("float32")
    memm._trans.assign(trans)
    loss = as_np(memm.sparse_loss(labels, memm(emissions, mask=mask)))
    e, y, t = emissions[0, :3].astype("float64"), labels[0, :3], trans.astype("float64")
    both = direction_nll(e, y, t) + direction_nll(e[::-1], y[::-1], t.T)
    np.testing.assert_allclose(loss, [2 * both / (2 * 3), 0.0], rtol=1e-5)
    empty = as_np(memm.sparse_loss(labels, memm(emissions, mask=np.zeros_like(mask))))
    np.testing.assert_array_equal(empty, [0.0, 0.0])  # not 0 / 0


def test_output_crf_accuracy_of_an_all_padding_batch_is_zero():
    emissions, labels, _ = tagging_problem([0, 0])
    crf, _ = built_crf()
    scores = crf(emissions, mask=np.zeros((2, 4), bool))
    assert float(as_np(crf.sparse_accuracy(labels, scores))) == 0.0
    assert float(as_np(crf.dense_accuracy(np.eye(K)[labels], scores))) == 0.0


def test_output_crf_accuracy_ignores_an_all_padding_row():
    emissions, labels, mask = tagging_problem([4, 0], seed=3)
    crf, _ = built_crf()
    expected = (emissions[0].argmax(-1) == labels[0]).mean()
    got = float(as_np(crf.sparse_accuracy(labels, crf(emissions, mask=mask))))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_output_crf_labels_on_padding_are_ignored():
    emissions, labels, mask = tagging_problem([2, 3])
    crf, _ = built_crf()
    scores = crf(emissions, mask=mask)
    ignored = np.where(mask, labels, -100)  # the usual "ignore" label of HF data
    np.testing.assert_array_equal(
        as_np(crf.sparse_loss(ignored, scores)), as_np(crf.sparse_loss(labels, scores))
    )


def test_output_crf_nan_emissions_are_not_taken_for_padding():
    emissions, labels, mask = tagging_problem([3, 3])
    emissions[1, 1] = NAN
    crf, _ = built_crf()
    loss = as_np(crf.sparse_loss(labels, crf(emissions, mask=mask)))
    assert np.isfinite(loss[0]) and np.isnan(loss[1])  # visible, not a silent 0


def test_output_crf_decoder_leaves_an_all_padding_row_at_zero():
    emissions, _, mask = tagging_problem([3, 0], seed=4)
    crf, trans = built_crf()
    paths = as_np(CRFDecoder(crf)(crf(emissions, mask=mask)))
    e, t = emissions[0, :3].astype("float64"), trans.astype("float64")
    best = max(
        itertools.product(range(K), repeat=3),
        key=lambda p: e[[0, 1, 2], p].sum() + t[p[:-1], p[1:]].sum(),
    )
    np.testing.assert_array_equal(paths, [list(best) + [0], [0, 0, 0, 0]])


def test_output_crf_whole_float_labels_equal_integer_labels():
    """Keras hands y_true to a loss as float32: 2.0 is label 2, not an error."""
    emissions, labels, mask = tagging_problem([4, 2], seed=5)
    crf, _ = built_crf()
    scores = crf(emissions, mask=mask)
    np.testing.assert_array_equal(
        as_np(crf.sparse_loss(labels.astype("float32"), scores)),
        as_np(crf.sparse_loss(labels, scores)),
    )


@pytest.mark.parametrize("bad", [-1, K, 1.5, 1e10], ids=["minus-one", "K", "fraction", "huge"])
@pytest.mark.parametrize("layer", [ConditionalRandomField, MaximumEntropyMarkovModel])
def test_error_tagging_label_outside_range(layer, bad):
    emissions, labels, mask = tagging_problem([3, 2])
    head = layer(name="tags")
    scores = head(emissions, mask=mask)
    labels = labels.astype("float32")  # as Keras hands y_true to a loss
    labels[1, 1] = bad
    message = (
        rf"{layer.__name__} 'tags'.sparse_loss: labels \(y_true\) must be integers in \[0, 4\)"
    )
    with pytest.raises(ValueError, match=message):
        head.sparse_loss(labels, scores)


def test_error_crf_accuracy_label_outside_range():
    emissions, labels, mask = tagging_problem([3, 2])
    crf, _ = built_crf()
    labels[0, 0] = K
    with pytest.raises(ValueError, match=r"sparse_accuracy: labels \(y_true\) must be integers"):
        crf.sparse_accuracy(labels, crf(emissions, mask=mask))


def test_error_crf_left_padding():
    emissions, labels, _ = tagging_problem([4, 4])
    mask = np.array([[True] * 4, [False, False, True, True]])
    crf, _ = built_crf()
    with pytest.raises(ValueError, match="padding must come after the real tokens"):
        crf.sparse_loss(labels, crf(emissions, mask=mask))


@pytest.mark.parametrize(
    "layer, method",
    [
        (ConditionalRandomField, "dense_loss"),
        (ConditionalRandomField, "dense_accuracy"),
        (MaximumEntropyMarkovModel, "dense_loss"),
    ],
)
def test_error_tagging_dense_labels_of_another_width(layer, method):
    emissions, labels, mask = tagging_problem([3, 2])
    head = layer(name="tags")
    scores = head(emissions, mask=mask)
    one_hot = np.eye(K + 1, dtype="float32")[labels]  # one label too many
    with pytest.raises(ValueError, match=rf"'tags'.{method}: y_true must be one-hot"):
        getattr(head, method)(one_hot, scores)


def test_error_crf_sparse_loss_given_one_hot_labels():
    emissions, labels, mask = tagging_problem([3, 2])
    crf, _ = built_crf()
    with pytest.raises(ValueError, match="one-hot labels go to dense_loss"):
        crf.sparse_loss(np.eye(K, dtype="float32")[labels], crf(emissions, mask=mask))


def test_error_viterbi_decode_mask_of_another_shape():
    emissions, _, _ = tagging_problem([3, 2])
    with pytest.raises(ValueError, match=r"viterbi_decode: mask must have shape \[batch, steps\]"):
        viterbi_decode(emissions, np.zeros((K, K), "float32"), np.ones((2, 7), bool))


def tagger(layer):
    keras.utils.set_random_seed(0)
    ids = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(20, 8, mask_zero=True)(ids)
    head = layer(name="tags")
    model = keras.Model(ids, head(keras.layers.Dense(K)(hidden)))
    model.compile(optimizer="sgd", loss=head.sparse_loss, metrics=[head.sparse_accuracy])
    ids = np.array([[3, 4, 5, 0], [6, 7, 0, 0]], "int32")
    labels = np.array([[0, 1, 2, 0], [3, 3, 0, 0]], "int32")
    return model, ids, labels


def test_error_crf_fit_with_label_outside_range():
    model, ids, labels = tagger(ConditionalRandomField)
    labels[1, 1] = K  # a real token
    with pytest.raises(compiled_error(), match=r"labels \(y_true\) must be integers in \[0, 4\)"):
        model.fit(ids, labels, batch_size=2, epochs=1, verbose=0)


def test_error_memm_evaluate_with_negative_label():
    model, ids, labels = tagger(MaximumEntropyMarkovModel)
    labels[0, 2] = -1
    with pytest.raises(compiled_error(), match=r"labels \(y_true\) must be integers in \[0, 4\)"):
        model.evaluate(ids, labels, batch_size=2, verbose=0)


# ----------------------------------------------------------------------------
# Losses


@pytest.mark.parametrize("bad", [2.0, -1.0, NAN], ids=["two", "minus-one", "nan"])
def test_error_multilabel_label_outside_unit_interval(bad):
    labels = np.array([[0.0, 1.0, bad]], "float32")
    with pytest.raises(ValueError, match=r"labels \(y_true\) must lie in \[0, 1\]"):
        losses.multilabel_categorical_crossentropy(labels, np.zeros((1, 3), "float32"))


def test_output_multilabel_labels_at_the_bounds_of_the_unit_interval():
    labels = np.array([[0.0, 1.0, 0.5]], "float32")
    logits = np.array([[0.5, -1.0, 2.0]], "float32")
    s = logits.astype("float64")[0]
    expected = np.log1p(np.exp(s[0]) + 0.5 * np.exp(s[2])) + np.log1p(
        np.exp(-s[1]) + 0.5 * np.exp(-s[2])
    )
    got = as_np(losses.multilabel_categorical_crossentropy(labels, logits))
    np.testing.assert_allclose(got, [expected], rtol=1e-6)


def test_error_multilabel_shapes_differ():
    with pytest.raises(ValueError, match="y_true and y_pred must have the same shape"):
        losses.multilabel_categorical_crossentropy(np.zeros((2, 1)), np.zeros((2, 3), "float32"))


@pytest.mark.parametrize("bad", [3, -1, 1.5], ids=["C", "minus-one", "fraction"])
def test_error_sparse_multilabel_index_outside_classes(bad):
    indices = np.array([[0, bad]], "float32")
    message = r"class indices \(y_true\) must be integers in \[0, 3\)"
    with pytest.raises(ValueError, match=message):
        losses.sparse_multilabel_categorical_crossentropy(indices, np.zeros((1, 3), "float32"))


def test_output_sparse_multilabel_whole_float_indices_are_indices():
    logits = np.array([[0.5, -1.0, 2.0, 0.1]], "float32")
    as_floats = losses.sparse_multilabel_categorical_crossentropy([[1.0, 3.0]], logits)
    as_ints = losses.sparse_multilabel_categorical_crossentropy(np.array([[1, 3]]), logits)
    s = logits.astype("float64")[0]
    expected = np.log1p(np.exp(s[[0, 2]]).sum()) + np.log1p(np.exp(-s[[1, 3]]).sum())
    np.testing.assert_allclose([as_np(as_floats)[0], as_np(as_ints)[0]], [expected] * 2, rtol=1e-6)


def test_error_sparse_multilabel_leading_shape_differs():
    with pytest.raises(ValueError, match="need the same rank and leading shape"):
        losses.sparse_multilabel_categorical_crossentropy(
            np.zeros((1, 2), "int32"), np.zeros((4, 3), "float32")
        )


def test_error_sparse_multilabel_mask_zero_not_a_bool():
    with pytest.raises(TypeError, match="`mask_zero` must be True or False"):
        losses.SparseMultilabelCategoricalCrossentropy(mask_zero="no")


def test_output_sparse_multilabel_counts_a_repeated_index_once():
    logits = np.array([[1.5, -0.5, 2.0, 0.25]], "float32")
    dense_labels = np.array([[0.0, 0.0, 1.0, 0.0]], "float32")
    repeated = as_np(losses.sparse_multilabel_categorical_crossentropy([[2, 2]], logits))
    s = logits.astype("float64")[0]
    expected = np.log1p(np.exp(s[[0, 1, 3]]).sum()) + np.log1p(np.exp(-s[2]))
    np.testing.assert_allclose(repeated, [expected], rtol=1e-6)
    dense = as_np(losses.multilabel_categorical_crossentropy(dense_labels, logits))
    np.testing.assert_allclose(dense, [expected], rtol=1e-6)


def test_error_sparse_multilabel_evaluate_with_index_outside_classes():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(6)(inputs))
    model.compile(loss=losses.SparseMultilabelCategoricalCrossentropy(mask_zero=True))
    indices = np.array([[1, 2], [3, 6]], "int32")
    with pytest.raises(compiled_error(), match=r"class indices \(y_true\) must be integers"):
        model.evaluate(np.ones((2, 5), "float32"), indices, batch_size=2, verbose=0)


def test_error_global_pointer_labels_of_another_shape():
    logits = np.zeros((1, 2, 3, 3), "float32")
    with pytest.raises(ValueError, match=r"y_true must have y_pred's shape \[batch, heads, n, n\]"):
        losses.global_pointer_crossentropy(np.zeros((1, 2, 3, 4), "float32"), logits)


def test_error_sparse_global_pointer_span_end_beyond_sequence():
    logits = np.zeros((1, 2, 3, 3), "float32")
    spans = np.array([[[[1, 3]], [[0, 0]]]], "int32")  # end 3 would land on the next row
    message = r"span starts and ends \(y_true\) must be integers in \[0, 3\)"
    with pytest.raises(ValueError, match=message):
        losses.sparse_global_pointer_crossentropy(spans, logits)


def test_error_sparse_global_pointer_heads_differ():
    with pytest.raises(ValueError, match=r"expects y_true \[batch, heads, K, 2\]"):
        losses.sparse_global_pointer_crossentropy(
            np.zeros((1, 3, 1, 2), "int32"), np.zeros((1, 2, 3, 3), "float32")
        )


@pytest.mark.parametrize("temperature", [0, -1.0, NAN, INF], ids=["zero", "negative", "nan", "inf"])
def test_error_infonce_temperature(temperature):
    with pytest.raises(ValueError, match="InfoNCE: `temperature` must be a finite real number > 0"):
        losses.InfoNCE(temperature=temperature)


def test_error_flatnce_temperature_not_a_number():
    with pytest.raises(TypeError, match="FlatNCE: `temperature`.*'0.05' \\(str\\)"):
        losses.FlatNCE(temperature="0.05")


def test_error_infonce_loss_function_temperature():
    with pytest.raises(ValueError, match="paired_similarity_logits: `temperature`"):
        losses.infonce_loss(None, np.ones((4, 3), "float32"), temperature=NAN)


def test_error_infonce_positive_outside_columns():
    with pytest.raises(ValueError, match=r"positives must be integers in \[0, 3\)"):
        losses.infonce_from_logits(np.zeros((2, 3), "float32"), np.array([1, 3]))


def test_error_infonce_positives_of_another_length():
    with pytest.raises(ValueError, match=r"positives must be \[N\] = \(2,\)"):
        losses.flatnce_from_logits(np.zeros((2, 3), "float32"), np.array([1, 0, 2]))


def test_error_infonce_diagonal_needs_enough_columns():
    with pytest.raises(ValueError, match="default positives are the diagonal"):
        losses.infonce_from_logits(np.zeros((3, 2), "float32"))


# ----------------------------------------------------------------------------
# Backend sequence helpers


def test_error_sequence_masking_mask_would_broadcast():
    x = np.ones((2, 3, 4), "float32")
    with pytest.raises(ValueError, match=r"mask must have shape \[batch, time\] = \(2, 3\)"):
        backend.sequence_masking(x, np.ones((2, 1), bool))


@pytest.mark.parametrize(
    "value, error", [(NAN, ValueError), (-INF, ValueError), (None, TypeError)], ids=str
)
def test_error_sequence_masking_value(value, error):
    x = np.ones((2, 3), "float32")
    with pytest.raises(error, match="masking value must be a finite number, '-inf' or 'inf'"):
        backend.sequence_masking(x, np.ones((2, 3), bool), value=value)


def test_error_sequence_masking_fractional_axis():
    with pytest.raises(TypeError, match="sequence_masking: `axis` must be an integer"):
        backend.sequence_masking(np.ones((2, 3, 4), "float32"), np.ones((2, 3)), axis=1.5)


def test_error_sinusoidal_embeddings_base():
    with pytest.raises(ValueError, match="sinusoidal_embeddings: `base` must be a finite real"):
        backend.sinusoidal_embeddings(np.arange(3), 4, base=-10000)


def test_error_rotary_dims_differ():
    sinusoidal = backend.sinusoidal_embeddings(np.arange(3), 4)
    with pytest.raises(ValueError, match=r"differ in dim \(4 vs 6\)"):
        backend.apply_rotary_position_embeddings(sinusoidal, np.ones((1, 3, 2, 6), "float32"))


@pytest.mark.parametrize(
    "schedule, message",
    [
        ({10: NAN}, r"`schedule\[10\]` must be a finite real number"),
        ({INF: 1.0}, "`schedule key inf` must be a finite real number"),
        ({"10": 1.0, 10: 0.5}, "names the point 10 twice"),
    ],
    ids=["nan-value", "inf-key", "repeated-key"],
)
def test_error_piecewise_linear_schedule(schedule, message):
    with pytest.raises(ValueError, match=message):
        backend.piecewise_linear(5, schedule)


# ----------------------------------------------------------------------------
# Optimizers: learning rates, schedules, multipliers, transforms


WRAPPERS = [
    extend_with_weight_decay,
    extend_with_layer_adaptation,
    extend_with_lazy_optimization,
    extend_with_parameter_wise_lr,
    extend_with_piecewise_linear_lr,
    extend_with_gradient_accumulation,
    extend_with_lookahead,
    extend_with_gradient_transforms,
    extend_with_exponential_moving_average,
]


@pytest.mark.parametrize("extend", WRAPPERS, ids=lambda f: f.__name__)
def test_error_wrapper_negative_learning_rate(extend):
    """keras.optimizers.Adam itself takes -1.0; every wrapper refuses it."""
    optimizer = extend(keras.optimizers.Adam)
    with pytest.raises(
        ValueError, match=rf"{optimizer.__name__}: `learning_rate` .* >= 0, got -1.0"
    ):
        optimizer(-1.0)


@pytest.mark.parametrize("rate", [NAN, INF], ids=["nan", "inf"])
def test_error_wrapper_non_finite_learning_rate(rate):
    optimizer = extend_with_weight_decay(extend_with_lookahead(keras.optimizers.SGD))
    with pytest.raises(
        ValueError, match=f"`learning_rate` must be a finite real number >= 0, got {rate}"
    ):
        optimizer(learning_rate=rate)


@pytest.mark.parametrize(
    "cls, rate, error",
    [
        (Adam, -1.0, ValueError),
        (Adam, NAN, ValueError),
        (AdaX, INF, ValueError),
        (Lion, -3e-4, ValueError),
        (AdaFactor, INF, ValueError),
        (Adam, "1e-3", TypeError),
    ],
    ids=["adam-negative", "adam-nan", "adax-inf", "lion-negative", "adafactor-inf", "adam-str"],
)
def test_error_base_optimizer_learning_rate(cls, rate, error):
    with pytest.raises(
        error, match=rf"{cls.__name__}: `learning_rate` must be a finite real number >= 0"
    ):
        cls(learning_rate=rate)


def test_output_learning_rate_schedules_and_callables_stay_allowed():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    wrapped = extend_with_weight_decay(keras.optimizers.SGD)(schedule)
    assert wrapped._learning_rate is schedule
    assert float(as_np(Adam(learning_rate=lambda: 0.25).learning_rate)) == 0.25
    assert AdaFactor(learning_rate=None).get_config()["learning_rate"] is None
    assert float(as_np(Adam(learning_rate=0.0).learning_rate)) == 0.0  # frozen, not uphill


def test_output_lr_schedule_keys_from_json_are_steps():
    """A saved config holds the keys as strings; they still read as steps."""
    optimizer = extend_with_piecewise_linear_lr(keras.optimizers.SGD)
    loaded = optimizer(0.1, lr_schedule={"0": 0.0, "10": 1.0, "20.0": 0.5})
    assert loaded.lr_schedule == {0: 0.0, 10: 1.0, 20: 0.5}
    assert optimizer.from_config(loaded.get_config()).lr_schedule == loaded.lr_schedule


OPTIMIZER_ARGUMENTS = [
    (
        extend_with_piecewise_linear_lr,
        dict(lr_schedule={100: NAN}),
        ValueError,
        r"`lr_schedule\[100\]`.*nan",
    ),
    (
        extend_with_piecewise_linear_lr,
        dict(lr_schedule={100: INF}),
        ValueError,
        r"`lr_schedule\[100\]`.*inf",
    ),
    (
        extend_with_piecewise_linear_lr,
        dict(lr_schedule={100: -1.0}),
        ValueError,
        r"`lr_schedule\[100\]` must be .*>= 0",
    ),
    (
        extend_with_piecewise_linear_lr,
        dict(lr_schedule={INF: 1.0}),
        ValueError,
        "steps must be integers >= 0, got inf",
    ),
    (
        extend_with_piecewise_linear_lr,
        dict(lr_schedule={"10": 1.0, 10: 0.5}),
        ValueError,
        "names step 10 twice",
    ),
    (
        extend_with_piecewise_linear_lr,
        dict(lr_schedule={True: 1.0}),
        TypeError,
        "steps must be integers >= 0, got True",
    ),
    (
        extend_with_parameter_wise_lr,
        dict(paramwise_lr_schedule={"Embedding": NAN}),
        ValueError,
        r"`paramwise_lr_schedule\['Embedding'\]`.*nan",
    ),
    (
        extend_with_parameter_wise_lr,
        dict(paramwise_lr_schedule={"Embedding": INF}),
        ValueError,
        "paramwise_lr_schedule.*inf",
    ),
    (
        extend_with_parameter_wise_lr,
        dict(paramwise_lr_schedule={"Embedding": -0.5}),
        ValueError,
        "paramwise_lr_schedule.*>= 0",
    ),
    (
        extend_with_parameter_wise_lr,
        dict(paramwise_lr_schedule={"": 2.0}),
        ValueError,
        "`paramwise_lr_schedule key` must be a non-empty string",
    ),
    (extend_with_weight_decay, dict(weight_decay_rate=NAN), ValueError, "`weight_decay_rate`.*nan"),
    (extend_with_weight_decay, dict(weight_decay_rate=INF), ValueError, "`weight_decay_rate`.*inf"),
    (
        extend_with_weight_decay,
        dict(exclude_from_weight_decay=5),
        TypeError,
        "`exclude_from_weight_decay` must be a list of regular expressions",
    ),
    (
        extend_with_exponential_moving_average,
        dict(ema_momentum=NAN),
        ValueError,
        "`ema_momentum`.*nan",
    ),
    (
        extend_with_exponential_moving_average,
        dict(ema_momentum=1.0),
        ValueError,
        "`ema_momentum` must be .*< 1",
    ),
    (extend_with_lookahead, dict(slow_step_size=NAN), ValueError, "`slow_step_size`.*nan"),
    (
        extend_with_lookahead,
        dict(steps_per_slow_update=2.5),
        TypeError,
        "`steps_per_slow_update` must be an integer",
    ),
    (
        extend_with_gradient_accumulation,
        dict(grad_accum_steps=0),
        ValueError,
        "`grad_accum_steps` must be an integer >= 1",
    ),
    (
        extend_with_gradient_accumulation,
        dict(grad_accum_steps=NAN),
        TypeError,
        "`grad_accum_steps`.*nan",
    ),
]


@pytest.mark.parametrize(
    "extend, kwargs, error, message",
    OPTIMIZER_ARGUMENTS,
    ids=case_ids(OPTIMIZER_ARGUMENTS),
)
def test_error_wrapper_argument(extend, kwargs, error, message):
    with pytest.raises(error, match=message):
        extend(keras.optimizers.Adam)(1e-3, **kwargs)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: scale(NAN), ValueError, "scale: `factor` must be a finite real number, got nan"),
        (lambda: scale(INF), ValueError, "scale: `factor`.*inf"),
        (lambda: clip_by_value(NAN), ValueError, "clip_by_value: `limit`.*nan"),
        (lambda: clip_by_norm(-1.0), ValueError, "clip_by_norm: `max_norm` must be .*>= 0"),
        (lambda: clip_by_norm("1"), TypeError, "clip_by_norm: `max_norm`.*'1' \\(str\\)"),
    ],
    ids=["scale-nan", "scale-inf", "clip-value-nan", "clip-norm-negative", "clip-norm-str"],
)
def test_error_gradient_transform_argument(make, error, message):
    with pytest.raises(error, match=message):
        make()


def fake_model():
    paths = ["Embedding-Token/embeddings", "Transformer-0-FeedForward/kernel", "Head/kernel"]
    variables = [types.SimpleNamespace(path=path, name=path) for path in paths]
    return types.SimpleNamespace(trainable_variables=variables)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(extra={"Head": NAN}), ValueError, r"`extra\['Head'\]`.*nan"),
        (dict(extra={"Head": INF}), ValueError, r"`extra\['Head'\]`.*inf"),
        (dict(extra=[("Head", 2.0)]), TypeError, "`extra` must be a dict"),
        (dict(decay=INF), ValueError, "`decay` must be a finite real number > 0"),
        (dict(head_multiplier=-1.0), ValueError, "`head_multiplier` must be .*>= 0"),
    ],
    ids=["extra-nan", "extra-inf", "extra-list", "decay-inf", "head-negative"],
)
def test_error_layerwise_multipliers_argument(kwargs, error, message):
    with pytest.raises(error, match=f"layerwise_lr_multipliers: {message}"):
        layerwise_lr_multipliers(fake_model(), **kwargs)


BASE_OPTIMIZER_ARGUMENTS = [
    (AdaFactor, dict(beta1=NAN), ValueError, "AdaFactor: `beta1`.*nan"),
    (AdaFactor, dict(epsilon1=INF), ValueError, "AdaFactor: `epsilon1`.*inf"),
    (AdaFactor, dict(clipping_threshold=NAN), ValueError, "AdaFactor: `clipping_threshold`"),
    (AdaFactor, dict(min_dim_size_to_factor=0), ValueError, "`min_dim_size_to_factor`"),
    (
        AdaFactor,
        dict(multiply_by_parameter_scale="yes"),
        TypeError,
        "`multiply_by_parameter_scale`",
    ),
    (AdaX, dict(beta_2=INF), ValueError, "AdaX: `beta_2`.*inf"),
    (Lion, dict(beta_1=NAN), ValueError, "Lion: `beta_1`.*nan"),
    (Lion, dict(weight_decay=INF), ValueError, "Lion: `weight_decay`.*inf"),
    (Adam, dict(epsilon=NAN), ValueError, "Adam: `epsilon`.*nan"),
    (
        Adam,
        dict(bias_correction="no"),
        TypeError,
        "Adam: `bias_correction` must be True or False",
    ),
]


@pytest.mark.parametrize(
    "cls, kwargs, error, message",
    BASE_OPTIMIZER_ARGUMENTS,
    ids=case_ids(BASE_OPTIMIZER_ARGUMENTS),
)
def test_error_base_optimizer_hyperparameter(cls, kwargs, error, message):
    with pytest.raises(error, match=message):
        cls(**kwargs)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(ema_momentum=NAN), ValueError, "EMACallback: `ema_momentum`.*nan"),
        (dict(ema_momentum=-0.5), ValueError, "EMACallback: `ema_momentum` must be .*>= 0"),
        (dict(bias_correction="yes"), TypeError, "EMACallback: `bias_correction`"),
        (dict(evaluate_with_ema=None), TypeError, "EMACallback: `evaluate_with_ema`"),
    ],
    ids=["momentum-nan", "momentum-negative", "bias-correction-str", "evaluate-none"],
)
def test_error_ema_callback_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        EMACallback(**kwargs)


# ----------------------------------------------------------------------------
# Training helpers


@pytest.fixture(scope="module")
def token_model():
    ids = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(10, 4, name="Embedding-Token")(ids)
    return ids, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(hidden))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(epsilon=INF),
            ValueError,
            "AdversarialModel: `epsilon` must be a finite real number > 0",
        ),
        (dict(epsilon=NAN), ValueError, "AdversarialModel: `epsilon`.*nan"),
        (dict(epsilon="1"), TypeError, "AdversarialModel: `epsilon`.*'1' \\(str\\)"),
        (dict(clean_loss="no"), TypeError, "AdversarialModel: `clean_loss` must be True or False"),
        (dict(method=None), ValueError, "AdversarialModel: unknown method None.*Valid methods"),
        (dict(embedding_name=5), TypeError, "AdversarialModel: `embedding_name` must be a string"),
    ],
    ids=["epsilon-inf", "epsilon-nan", "epsilon-str", "clean-loss-str", "method-none", "name-int"],
)
def test_error_adversarial_model_argument(token_model, kwargs, error, message):
    with pytest.raises(error, match=message):
        AdversarialModel(*token_model, **kwargs)


def test_error_get_intermediates_names_not_strings(token_model):
    model = keras.Model(*token_model)
    with pytest.raises(TypeError, match=r"get_intermediates: `names\[0\]` must be a string"):
        get_intermediates(model, np.ones((1, 3), "int32"), [0])
