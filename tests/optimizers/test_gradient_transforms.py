"""Per-variable gradient transforms selected by path regex: clip by value,
clip by norm, scale and a free function, applied in list order, against
numpy with an SGD base (rtol 1e-5, atol 1e-6); serialisation of the
ready-made transforms and of functions (registered, or via custom_objects)."""

import keras
import numpy as np
import pytest
from optimizers import reference as ref

from nlp4keras.optimizers import (
    ClipByNorm,
    clip_by_norm,
    clip_by_value,
    extend_with_gradient_transforms,
    extend_with_weight_decay,
    scale,
)

LR = 0.1
SGDTransforms = extend_with_gradient_transforms(keras.optimizers.SGD)


def pull_to_zero(gradient, variable):
    """A free transform reading the variable: adds 0.5 * w to the gradient."""
    return gradient + 0.5 * keras.ops.convert_to_tensor(variable)


TRANSFORMS = [
    ("kernel$", clip_by_value(0.3)),
    ("^dense/", scale(2.0)),
    ("Embedding", clip_by_norm(0.7)),
    ("bias", clip_by_norm(100.0)),  # above the norm: no change
    ("bias", pull_to_zero),
]


def _numpy_transform(path, g, w):
    if path.endswith("kernel"):
        g = np.clip(g, -0.3, 0.3)
    if path.startswith("dense/"):
        g = 2.0 * g
    if "Embedding" in path:
        g = g * min(1.0, 0.7 / np.linalg.norm(g))
    if "bias" in path:
        g = g * min(1.0, 100.0 / np.linalg.norm(g))
        g = g + 0.5 * w
    return g


def test_transforms_match_numpy_in_list_order():
    params, steps = ref.initial_params(), ref.gradient_steps(3)
    params["dense/bias"] += 1.0
    expected = {p: v.astype("float32").astype("float64") for p, v in params.items()}
    for grads in steps:
        for path in expected:
            g = grads[path].astype("float32").astype("float64")
            expected[path] = expected[path] - LR * _numpy_transform(path, g, expected[path])
    got = ref.run_keras(SGDTransforms(LR, gradient_transforms=TRANSFORMS), params, steps)
    ref.assert_params_close(got, expected)
    # The transforms changed something: plain SGD differs on every variable.
    plain = ref.run_keras(keras.optimizers.SGD(LR), params, steps)
    for path in params:
        assert np.abs(plain[path] - got[path]).max() > 1e-3, path


def test_transforms_run_before_the_inner_update_wrappers():
    """Outside weight decay: the decay is not scaled by the gradient transform."""
    Opt = extend_with_gradient_transforms(extend_with_weight_decay(keras.optimizers.SGD))
    opt = Opt(LR, weight_decay_rate=0.5, gradient_transforms=[(".*", scale(0.0))])
    params, steps = ref.initial_params(), ref.gradient_steps(1)
    got = ref.run_keras(opt, params, steps)
    for path, value in params.items():
        value = value.astype("float32").astype("float64")
        np.testing.assert_allclose(got[path], value * (1 - LR * 0.5), rtol=1e-6, atol=1e-7)


def test_named_transforms_serialise_and_functions_need_registration():
    opt = SGDTransforms(LR, gradient_transforms=TRANSFORMS)
    config = keras.optimizers.serialize(opt)
    with pytest.raises(TypeError, match="pull_to_zero"):
        keras.optimizers.deserialize(config)
    restored = keras.optimizers.deserialize(config, custom_objects={"pull_to_zero": pull_to_zero})
    assert [p for p, _ in restored.gradient_transforms] == [p for p, _ in TRANSFORMS]
    assert repr(restored.gradient_transforms[2][1]) == "ClipByNorm(max_norm=0.7)"
    assert isinstance(restored.gradient_transforms[3][1], ClipByNorm)
    assert restored.gradient_transforms[4][1] is pull_to_zero
    assert restored.get_config() == opt.get_config()
