"""AdaFactor, AdaX and Lion against float64 numpy re-implementations of their
formulas (several steps, variables of 1 to 3 axes, factored and not), plus
model.fit, state through model.save / load_model, config round trips and
argument errors, on the Keras backend under test."""

import keras
import numpy as np
import pytest

from nlp4keras.optimizers.adafactor import AdaFactor
from nlp4keras.optimizers.adax import AdaX
from nlp4keras.optimizers.lion import Lion

# Variables the reference tests update, and the axes AdaFactor must factor
# over with min_dim_size_to_factor=4 (the two largest; None: full moment).
SHAPES = {
    "bias": ((5,), None),
    "small_kernel": ((3, 2), None),
    "kernel": ((6, 4), (0, 1)),
    "tensor": ((6, 2, 5), (0, 2)),
    "tensor_last": ((3, 6, 5), (1, 2)),
}
MIN_DIM = 4
STEPS = 6


def as_np(x):
    return keras.ops.convert_to_numpy(x)


def problem(seed, steps=STEPS):
    """Initial values and `steps` lists of gradients, float32, one per SHAPES entry."""
    rng = np.random.default_rng(seed)
    values = [rng.normal(0, 0.5, shape).astype("float32") for shape, _ in SHAPES.values()]
    grads = [
        [rng.normal(0, 1, shape).astype("float32") for shape, _ in SHAPES.values()]
        for _ in range(steps)
    ]
    return values, grads


def run_steps(optimizer, values, grads_per_step, start_step=0):
    """Final variable values after one optimizer update per gradient list.
    Under JAX through jit(stateless_apply), the path model.fit takes."""
    variables = [keras.Variable(v, name=name) for v, name in zip(values, SHAPES)]
    optimizer.build(variables)
    optimizer.iterations.assign(start_step)
    if keras.backend.backend() == "jax":
        import jax

        apply = jax.jit(optimizer.stateless_apply)
        model_values = [v.value for v in variables]
        state = [v.value for v in optimizer.variables]
        for grads in grads_per_step:
            model_values, state = apply(state, grads, model_values)
        for variable, value in zip(variables, model_values):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, state):
            variable.assign(value)
    else:
        for grads in grads_per_step:
            optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    return [as_np(v) for v in variables]


def rms(x):
    return np.sqrt(np.mean(np.square(x)))


def assert_steps_match(result, reference, values):
    """Final values, and the change they made, equal the float64 reference."""
    for got, want, start in zip(result, reference, values):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        change = want - start
        assert np.max(np.abs(change)) > 1e-4, "test problem too flat to detect errors"
        np.testing.assert_allclose(got - start, change, rtol=1e-4, atol=2e-7)


# ---------------------------------------------------------------------------
# AdaFactor
# ---------------------------------------------------------------------------


def adafactor_reference(values, grads_per_step, config, start_step=0):
    """Float64 AdaFactor in the paper's row/column-sum form (Algorithm 4):
    R = sums over axis b, C = sums over axis a, V = R C / sum_a(R).
    Returns (final values, how many updates the clipping shrank)."""
    lr_arg = config.get("learning_rate", 1e-3)
    beta1 = config.get("beta1", 0.0)
    beta2_arg = config.get("beta2")
    eps1, eps2 = 1e-30, 1e-3
    scale = config.get("multiply_by_parameter_scale", True)
    threshold = config.get("clipping_threshold", 1.0)
    excluded = config.get("exclude_from_parameter_scale") or []
    names = list(SHAPES)
    w = [v.astype("float64") for v in values]
    state = [{"v": 0.0, "R": 0.0, "C": 0.0, "m": 0.0} for _ in w]
    clipped = 0
    for k, grads in enumerate(grads_per_step):
        t = start_step + k + 1
        if lr_arg is None:
            lr = min(1e-2, 1 / np.sqrt(t)) * (1.0 if scale else 0.05)
        else:
            lr = lr_arg
        beta2 = 1 - t**-0.8 if beta2_arg is None else beta2_arg
        for i, g in enumerate(grads):
            g = g.astype("float64")
            g2 = g**2 + eps1
            s = state[i]
            axes = SHAPES[names[i]][1]
            if axes is None:
                s["v"] = beta2 * s["v"] + (1 - beta2) * g2
                v = s["v"]
            else:
                a, b = axes
                s["R"] = beta2 * s["R"] + (1 - beta2) * g2.sum(axis=b, keepdims=True)
                s["C"] = beta2 * s["C"] + (1 - beta2) * g2.sum(axis=a, keepdims=True)
                v = s["R"] * s["C"] / s["R"].sum(axis=a, keepdims=True)
            u = g / np.sqrt(v + eps1)
            if threshold is not None:
                ratio = rms(u) / threshold
                clipped += ratio > 1
                u = u / max(1.0, ratio)
            if beta1 > 0:
                s["m"] = beta1 * s["m"] + (1 - beta1) * u
                u = s["m"]
            if scale and not any(p in names[i] for p in excluded):
                u = u * max(eps2, rms(w[i]))
            w[i] = w[i] - lr * u
    return w, clipped


ADAFACTOR_CASES = {
    # relative step 1e-2, beta2 = 1 - t^-0.8, clipping below the default 1
    "relative_step": (dict(learning_rate=None, clipping_threshold=0.5), 0, True),
    # relative step past t = 1e4 (0.05 / sqrt(t) without parameter scale)
    "relative_decayed_unscaled": (
        dict(learning_rate=None, multiply_by_parameter_scale=False, clipping_threshold=0.3),
        40000,
        True,
    ),
    # fixed lr, first moment, constant beta2, no clipping, bias excluded from scale
    "momentum_excluded": (
        dict(
            learning_rate=0.1,
            beta1=0.9,
            beta2=0.99,
            clipping_threshold=None,
            exclude_from_parameter_scale=["bias"],
        ),
        0,
        False,
    ),
    # default clipping (1.0) and a late beta2 schedule with momentum
    "late_schedule_momentum": (dict(learning_rate=0.05, beta1=0.5), 20000, True),
}


@pytest.mark.parametrize("case", list(ADAFACTOR_CASES))
def test_adafactor_matches_reference(case):
    config, start_step, expect_clipping = ADAFACTOR_CASES[case]
    values, grads = problem(seed=len(case))
    optimizer = AdaFactor(min_dim_size_to_factor=MIN_DIM, **config)
    result = run_steps(optimizer, values, grads, start_step)
    reference, clipped = adafactor_reference(values, grads, config, start_step)
    assert_steps_match(result, reference, values)
    assert (clipped > 0) == expect_clipping
    assert int(as_np(optimizer.iterations)) == start_step + STEPS


def test_adafactor_exclusion_and_clipping_change_the_result():
    """The reference is sensitive to the options the cases rely on."""
    values, grads = problem(seed=1)
    base = dict(learning_rate=0.1, clipping_threshold=0.5)
    plain, _ = adafactor_reference(values, grads, base)
    excluded, _ = adafactor_reference(
        values, grads, {**base, "exclude_from_parameter_scale": ["bias"]}
    )
    unclipped, _ = adafactor_reference(values, grads, {**base, "clipping_threshold": None})
    assert np.max(np.abs(plain[0] - excluded[0])) > 1e-2
    np.testing.assert_array_equal(plain[1], excluded[1])
    assert all(np.max(np.abs(p - u)) > 1e-3 for p, u in zip(plain, unclipped))


def test_adafactor_keeps_factored_moments_only():
    variables = [
        keras.Variable(np.zeros(shape, "float32"), name=n) for n, (shape, _) in SHAPES.items()
    ]
    optimizer = AdaFactor(min_dim_size_to_factor=MIN_DIM)
    optimizer.build(variables)
    moment_shapes = sorted(
        tuple(v.shape) for v in optimizer.variables if "velocity" in v.name or "momentum" in v.name
    )
    expected = [(5,), (3, 2), (1, 4), (6, 1), (1, 2, 5), (6, 2, 1), (3, 1, 5), (3, 6, 1)]
    assert moment_shapes == sorted(expected)
    with_momentum = AdaFactor(min_dim_size_to_factor=MIN_DIM, beta1=0.9)
    with_momentum.build(variables)
    momentums = [v for v in with_momentum.variables if "momentum" in v.name]
    assert [tuple(v.shape) for v in momentums] == [s for s, _ in SHAPES.values()]


def test_adafactor_relative_step_learning_rate():
    optimizer = AdaFactor(learning_rate=None)
    assert float(as_np(optimizer.learning_rate)) == pytest.approx(1e-2)
    optimizer.iterations.assign(39999)
    assert float(as_np(optimizer.learning_rate)) == pytest.approx(1 / 200, rel=1e-6)
    unscaled = AdaFactor(learning_rate=None, multiply_by_parameter_scale=False)
    assert float(as_np(unscaled.learning_rate)) == pytest.approx(5e-4)


# ---------------------------------------------------------------------------
# AdaX and Lion
# ---------------------------------------------------------------------------


def adax_reference(values, grads_per_step, lr, beta_1, beta_2, epsilon):
    """Float64 AdaX exactly as the paper writes it (v_t grows, then v^_t)."""
    w = [v.astype("float64") for v in values]
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    for k, grads in enumerate(grads_per_step):
        t = k + 1
        for i, g in enumerate(grads):
            g = g.astype("float64")
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = (1 + beta_2) * v[i] + beta_2 * g**2
            v_hat = v[i] / ((1 + beta_2) ** t - 1)
            w[i] = w[i] - lr * m[i] / (np.sqrt(v_hat) + epsilon)
    return w


def lion_reference(values, grads_per_step, lr, beta_1, beta_2, weight_decay=0.0):
    w = [v.astype("float64") for v in values]
    m = [0.0] * len(w)
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            g = g.astype("float64")
            direction = np.sign(beta_1 * m[i] + (1 - beta_1) * g)
            w[i] = w[i] - lr * (direction + weight_decay * w[i])
            m[i] = beta_2 * m[i] + (1 - beta_2) * g
    return w


@pytest.mark.parametrize(
    "config",
    [dict(learning_rate=0.05), dict(learning_rate=0.02, beta_1=0.5, beta_2=0.1, epsilon=1e-3)],
    ids=["defaults", "custom"],
)
def test_adax_matches_reference(config):
    values, grads = problem(seed=2)
    result = run_steps(AdaX(**config), values, grads)
    full = {"beta_1": 0.9, "beta_2": 1e-4, "epsilon": 1e-6, **config}
    reference = adax_reference(values, grads, full.pop("learning_rate"), **full)
    assert_steps_match(result, reference, values)


def test_adax_global_clipnorm_clips_before_the_update():
    values, grads = problem(seed=3)
    clipped = []
    for step in grads:
        norm = np.sqrt(sum(np.sum(g.astype("float64") ** 2) for g in step))
        clipped.append([g * min(1.0, 0.5 / norm) for g in step])
    result = run_steps(AdaX(learning_rate=0.05, beta_2=0.5, global_clipnorm=0.5), values, grads)
    reference = adax_reference(values, clipped, 0.05, 0.9, 0.5, 1e-6)
    assert_steps_match(result, reference, values)


@pytest.mark.parametrize("weight_decay", [None, 0.5])
def test_lion_matches_reference(weight_decay):
    values, grads = problem(seed=4)
    result = run_steps(Lion(learning_rate=0.01, weight_decay=weight_decay), values, grads)
    reference = lion_reference(values, grads, 0.01, 0.95, 0.98, weight_decay or 0.0)
    assert_steps_match(result, reference, values)


def test_lion_has_bert4keras_defaults():
    config = Lion().get_config()
    assert (config["learning_rate"], config["beta_1"], config["beta_2"]) == pytest.approx(
        (3e-4, 0.95, 0.98)
    )


# ---------------------------------------------------------------------------
# Training, saving, configs, errors
# ---------------------------------------------------------------------------

OPTIMIZERS = {
    "adafactor": lambda: AdaFactor(learning_rate=None, beta1=0.9, min_dim_size_to_factor=4),
    "adafactor_fixed": lambda: AdaFactor(learning_rate=0.05, min_dim_size_to_factor=4),
    "adax": lambda: AdaX(learning_rate=0.02),
    "lion": lambda: Lion(learning_rate=0.005, weight_decay=0.01),
}


def regression_data():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (np.tanh(x @ rng.normal(size=(4, 1))) + 0.5).astype("float32")
    return x, y


def regression_model(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fit_lowers_the_loss(name):
    x, y = regression_data()
    model = regression_model(OPTIMIZERS[name]())
    history = model.fit(x, y, batch_size=16, epochs=8, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize("name", ["adafactor", "adax", "lion"])
def test_state_survives_save_and_load(name, tmp_path):
    x, y = regression_data()
    model = regression_model(OPTIMIZERS[name]())
    model.fit(x, y, batch_size=64, epochs=3, shuffle=False, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert int(as_np(loaded.optimizer.iterations)) == 3
    fresh = regression_model(OPTIMIZERS[name]())  # same weights, new optimizer state
    fresh.set_weights(model.get_weights())
    # One more step on other targets, so the gradient disagrees with the
    # momentum and a lost state shows (Lion's sign would hide it otherwise).
    for m in (model, loaded, fresh):
        m.fit(x, -y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    for kept, restored in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(restored, kept, rtol=1e-6, atol=1e-7)
    gap = max(np.max(np.abs(a - b)) for a, b in zip(model.get_weights(), fresh.get_weights()))
    assert gap > 1e-5, "optimizer state made no difference: the test could not fail"


CONFIG_CASES = [
    AdaFactor(
        learning_rate=None,
        beta1=0.5,
        beta2=0.9,
        epsilon1=1e-20,
        epsilon2=1e-2,
        multiply_by_parameter_scale=False,
        clipping_threshold=None,
        min_dim_size_to_factor=16,
        exclude_from_parameter_scale=["bias", "norm"],
        weight_decay=0.01,
        clipnorm=1.0,
    ),
    AdaFactor(learning_rate=0.01, use_ema=True, ema_momentum=0.9, global_clipnorm=2.0),
    AdaX(learning_rate=0.01, beta_1=0.8, beta_2=1e-3, epsilon=1e-8, gradient_accumulation_steps=2),
    Lion(learning_rate=1e-3, beta_1=0.9, beta_2=0.99, weight_decay=0.1, clipvalue=0.5),
]


@pytest.mark.parametrize("optimizer", CONFIG_CASES, ids=lambda o: type(o).__name__)
def test_config_round_trip(optimizer):
    config = optimizer.get_config()
    again = type(optimizer).from_config(config)
    assert again.get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is type(optimizer)
    assert restored.get_config() == config


def test_relative_step_config_is_none():
    assert AdaFactor(learning_rate=None).get_config()["learning_rate"] is None
    assert AdaFactor().get_config()["learning_rate"] == pytest.approx(1e-3)


BAD_ARGUMENTS = [
    (AdaFactor, dict(learning_rate=-1e-3), "learning_rate"),
    (AdaFactor, dict(beta1=1.0), "beta1"),
    (AdaFactor, dict(beta2=-0.1), "beta2"),
    (AdaFactor, dict(epsilon1=0.0), "epsilon1"),
    (AdaFactor, dict(epsilon2=-1.0), "epsilon2"),
    (AdaFactor, dict(clipping_threshold=0.0), "clipping_threshold"),
    (AdaFactor, dict(min_dim_size_to_factor=2.5), "min_dim_size_to_factor"),
    (AdaFactor, dict(exclude_from_parameter_scale=["("]), "exclude_from_parameter_scale"),
    (AdaX, dict(learning_rate=-0.1), "learning_rate"),
    (AdaX, dict(beta_1=1.5), "beta_1"),
    (AdaX, dict(beta_2=0.0), "beta_2"),
    (AdaX, dict(epsilon=-1e-6), "epsilon"),
    (Lion, dict(learning_rate=-0.1), "learning_rate"),
    (Lion, dict(beta_1=0.0), "beta_1"),
    (Lion, dict(beta_2=1.5), "beta_2"),
    (Lion, dict(weight_decay=-0.1), "weight_decay"),
]


# A value of the wrong type (2.5 for an integer) raises TypeError, a bad value ValueError.
WRONG_TYPES = {"min_dim_size_to_factor"}


@pytest.mark.parametrize("cls, kwargs, argument", BAD_ARGUMENTS)
def test_bad_arguments_name_the_argument(cls, kwargs, argument):
    error = TypeError if argument in WRONG_TYPES else ValueError
    with pytest.raises(error, match=f"`{argument}`"):
        cls(**kwargs)


def test_unknown_keyword_is_rejected():
    with pytest.raises(ValueError, match="not recognized"):
        AdaX(beta3=0.5)


def test_package_exports():
    import nlp4keras.optimizers as optimizers

    assert optimizers.AdaFactor is AdaFactor
    assert optimizers.AdaX is AdaX
    assert optimizers.Lion is Lion
