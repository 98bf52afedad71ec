"""Training-time behaviour: attention dropout, fit on every backend, masks
reaching the user's layers."""

import keras
import numpy as np
from helpers import TINY_BERT, padded_batch, run

from nlp4keras.layers import MultiHeadAttention
from nlp4keras.models import build_transformer_model


def test_attention_dropout_is_unbiased_noise_in_training_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 8)).astype("float32")
    layer = MultiHeadAttention(heads=2, head_size=4, attention_dropout=0.5)
    clean = keras.ops.convert_to_numpy(layer([x, x, x], training=False))
    np.testing.assert_array_equal(clean, keras.ops.convert_to_numpy(layer([x, x, x])))
    samples = np.stack(
        [keras.ops.convert_to_numpy(layer([x, x, x], training=True)) for _ in range(300)]
    )
    single_error = np.abs(samples - clean).mean()
    assert single_error > 1e-2  # dropout is active in training
    # Inverted dropout keeps the expectation: the average converges to `clean`.
    assert np.abs(samples.mean(0) - clean).mean() < 0.2 * single_error


def test_fit_a_classifier_on_the_pooled_output():
    keras.utils.set_random_seed(0)
    bert = build_transformer_model(**TINY_BERT, with_pool=True)
    outputs = keras.layers.Dense(2, activation="softmax")(bert.output)
    model = keras.Model(bert.inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [16, 12, 9, 5] * 8, 16, seed=4)
    labels = (ids == 7).any(axis=1).astype("int32") | (ids[:, 1] > 50)
    history = model.fit([ids, segments], labels, batch_size=8, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0]


def test_padding_mask_reaches_user_pooling_layers():
    bert = build_transformer_model(**TINY_BERT)
    pooled = keras.layers.GlobalAveragePooling1D()(bert.output)
    model = keras.Model(bert.inputs, pooled)
    ids, segments = padded_batch(TINY_BERT["vocab_size"], [10, 4], 10, seed=5)
    hidden = run(bert, [ids, segments])
    mask = (ids != 0)[..., None]
    expected = (hidden * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(run(model, [ids, segments]), expected, atol=1e-6)
