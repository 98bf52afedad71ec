"""Saving: every wrapper's config round-trips; a model trained with all
wrappers composed, saved mid-way through a gradient-accumulation cycle (so
the accumulators, moments, slow weights and averages all hold state) and
loaded back, continues exactly like the original (weights and every optimizer
variable within rtol 1e-6, atol 1e-7)."""

import keras
import numpy as np
import pytest

from nlp4keras.optimizers import (
    clip_by_norm,
    extend_with_exponential_moving_average,
    extend_with_gradient_accumulation,
    extend_with_gradient_transforms,
    extend_with_layer_adaptation,
    extend_with_lazy_optimization,
    extend_with_lookahead,
    extend_with_parameter_wise_lr,
    extend_with_piecewise_linear_lr,
    extend_with_weight_decay,
    scale,
)

WRAPPERS = {
    extend_with_weight_decay: dict(weight_decay_rate=0.1, exclude_from_weight_decay=["bias"]),
    extend_with_layer_adaptation: dict(exclude_from_layer_adaptation=["Norm"]),
    extend_with_piecewise_linear_lr: dict(lr_schedule={2: 1.0, 5: 0.5}),
    extend_with_gradient_accumulation: dict(grad_accum_steps=2),
    extend_with_lookahead: dict(steps_per_slow_update=2, slow_step_size=0.6),
    extend_with_lazy_optimization: dict(include_in_lazy_optimization=["Embedding"]),
    extend_with_exponential_moving_average: dict(ema_momentum=0.9),
    extend_with_parameter_wise_lr: dict(paramwise_lr_schedule={"dense": 2.0}),
    extend_with_gradient_transforms: dict(
        gradient_transforms=[("kernel", clip_by_norm(0.5)), ("dense", scale(3.0))]
    ),
}


@pytest.mark.parametrize("extend", list(WRAPPERS), ids=lambda f: f.__name__)
def test_config_round_trips(extend):
    opt = extend(keras.optimizers.Adam)(0.01, **WRAPPERS[extend])
    config = keras.optimizers.serialize(opt)
    restored = keras.optimizers.deserialize(config)
    assert type(restored) is type(opt)
    assert restored.get_config() == opt.get_config()
    for key in WRAPPERS[extend]:
        assert key in restored.get_config(), key


def _all_wrappers():
    Opt = keras.optimizers.Adam
    for extend in WRAPPERS:
        Opt = extend(Opt)
    kwargs = {k: v for extra in WRAPPERS.values() for k, v in extra.items()}
    return Opt(0.01, **kwargs)


def _model():
    ids = keras.Input((3,), dtype="int32")
    hidden = keras.layers.Embedding(10, 4, name="Embedding-Token")(ids)
    hidden = keras.layers.LayerNormalization(name="Norm")(keras.layers.Flatten()(hidden))
    model = keras.Model(ids, keras.layers.Dense(2, name="dense")(hidden))
    model.compile(optimizer=_all_wrappers(), loss="mse")
    return model


def _numpy(variables):
    return [keras.ops.convert_to_numpy(v).astype("float64") for v in variables]


def test_state_survives_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=(16, 3)).astype("int32")  # ids 6..9 never seen: lazy rows
    y = rng.normal(size=(16, 2)).astype("float32")
    model = _model()
    model.fit(x[:12], y[:12], batch_size=4, epochs=1, shuffle=False, verbose=0)  # 3 batches
    # The state to carry is not trivial: a half-full accumulator, averages, slow weights.
    for kind in ("gradient_accumulator", "_ema", "_slow_weight", "_momentum"):
        values = [v for v in model.optimizer.variables if kind in v.path]
        assert values and max(np.abs(a).max() for a in _numpy(values)) > 0, kind
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(_numpy(loaded.optimizer.variables), _numpy(model.optimizer.variables)):
        np.testing.assert_array_equal(a, b)

    # Batch 4 completes an accumulation cycle: update, lookahead sync, EMA step.
    for m in (model, loaded):
        m.fit(x[12:], y[12:], batch_size=4, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2
    for a, b in zip(_numpy(loaded.trainable_variables), _numpy(model.trainable_variables)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(_numpy(loaded.optimizer.variables), _numpy(model.optimizer.variables)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    model.optimizer.apply_ema_weights()
    loaded.optimizer.apply_ema_weights()
    for a, b in zip(_numpy(loaded.trainable_variables), _numpy(model.trainable_variables)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
