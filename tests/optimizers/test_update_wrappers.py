"""Per-variable wrappers (weight decay, layer adaptation, lazy optimization,
parameter-wise lr) against numpy re-implementations, with Adam and SGD bases,
fixed gradients fed through `optimizer.apply`. Tolerance: rtol 1e-5, atol 1e-6
(float32 Keras vs float64 numpy over 3 steps)."""

import keras
import numpy as np
from optimizers import reference as ref

from nlp4keras.optimizers import (
    extend_with_layer_adaptation,
    extend_with_lazy_optimization,
    extend_with_parameter_wise_lr,
    extend_with_weight_decay,
)

LR = ref.LR


def test_weight_decay_matches_numpy(base):
    keras_base, kwargs, numpy_base = base
    opt = extend_with_weight_decay(keras_base)(
        LR, weight_decay_rate=0.3, exclude_from_weight_decay=["bias$", "^Embedding-"], **kwargs
    )
    params, steps = ref.initial_params(), ref.gradient_steps(3)
    params["dense/bias"] += 1.0  # would visibly decay if not excluded

    def rewrite(path, old, new, g, lr):
        return new if path != "dense/kernel" else ref.weight_decay(old, new, lr, 0.3)

    expected = ref.run_numpy(numpy_base(), params, steps, LR, rewrite)
    ref.assert_params_close(ref.run_keras(opt, params, steps), expected)


def test_weight_decay_equals_keras_adamw_for_adam():
    params, steps = ref.initial_params(), ref.gradient_steps(3)
    ours = extend_with_weight_decay(keras.optimizers.Adam)(LR, weight_decay_rate=0.3)
    keras_adamw = keras.optimizers.AdamW(LR, weight_decay=0.3)
    ref.assert_params_close(
        ref.run_keras(ours, params, steps), ref.run_keras(keras_adamw, params, steps), 1e-6
    )


def test_layer_adaptation_matches_numpy(base):
    keras_base, kwargs, numpy_base = base
    opt = extend_with_layer_adaptation(keras_base)(
        LR, exclude_from_layer_adaptation=["Embedding"], **kwargs
    )
    params, steps = ref.initial_params(), ref.gradient_steps(3)

    def rewrite(path, old, new, g, lr):
        return new if path.startswith("Embedding") else ref.layer_adaptation(old, new, lr)

    expected = ref.run_numpy(numpy_base(), params, steps, LR, rewrite)
    ref.assert_params_close(ref.run_keras(opt, params, steps), expected)
    # The trust ratio really acts: the kernel moves by lr * ||w|| on the first step.
    one_step = ref.run_keras(opt.__class__(LR, **kwargs), params, steps[:1])
    moved = np.linalg.norm(one_step["dense/kernel"] - params["dense/kernel"])
    np.testing.assert_allclose(moved, LR * np.linalg.norm(params["dense/kernel"]), rtol=1e-5)


def test_lazy_optimization_leaves_zero_gradient_rows_untouched(base):
    keras_base, kwargs, numpy_base = base
    opt = extend_with_lazy_optimization(keras_base)(
        LR, include_in_lazy_optimization=["Embedding-Token"], **kwargs
    )
    params, steps = ref.initial_params(), ref.gradient_steps(3)

    def rewrite(path, old, new, g, lr):
        return ref.lazy(old, new, g) if path.startswith("Embedding") else new

    seen = []
    result = ref.run_keras(
        opt,
        params,
        steps,
        trace=lambda v: seen.append(ref.numpy_values(v)["Embedding-Token/embeddings"]),
    )
    ref.assert_params_close(result, ref.run_numpy(numpy_base(), params, steps, LR, rewrite))
    # Rows 4 and 5 have zero gradient at step 2 (index 2): bit-identical across it.
    np.testing.assert_array_equal(seen[2][[4, 5]], seen[1][[4, 5]])
    # Without the wrapper, momentum moves them: the test can fail.
    plain = []
    ref.run_keras(
        keras_base(LR, **kwargs),
        params,
        steps,
        trace=lambda v: plain.append(ref.numpy_values(v)["Embedding-Token/embeddings"]),
    )
    assert np.abs(plain[2][[4, 5]] - plain[1][[4, 5]]).max() > 1e-4


def test_parameter_wise_lr_scales_the_update(base):
    keras_base, kwargs, numpy_base = base
    schedule = {"dense/": 3.0, "kernel": 0.5, "Embedding": 0.1}
    opt = extend_with_parameter_wise_lr(keras_base)(LR, paramwise_lr_schedule=schedule, **kwargs)
    params, steps = ref.initial_params(), ref.gradient_steps(3)
    multipliers = {"dense/kernel": 1.5, "dense/bias": 3.0, "Embedding-Token/embeddings": 0.1}

    def rewrite(path, old, new, g, lr):
        return old + (new - old) * multipliers[path]

    expected = ref.run_numpy(numpy_base(), params, steps, LR, rewrite)
    ref.assert_params_close(ref.run_keras(opt, params, steps), expected)
    # One step: exactly multiplier x the unscaled update.
    scaled = ref.run_keras(
        opt.__class__(LR, paramwise_lr_schedule=schedule, **kwargs), params, steps[:1]
    )
    plain = ref.run_keras(keras_base(LR, **kwargs), params, steps[:1])
    for path, multiplier in multipliers.items():
        np.testing.assert_allclose(
            scaled[path] - params[path],
            multiplier * (plain[path] - params[path]),
            rtol=1e-5,
            atol=1e-7,
        )


def test_order_of_weight_decay_and_parameter_wise_lr_matters():
    """Parameter-wise lr outside weight decay scales the decay too; inside, not."""
    params, steps = ref.initial_params(), ref.gradient_steps(2)
    kwargs = dict(weight_decay_rate=0.5, paramwise_lr_schedule={"kernel": 4.0})
    outer_lr = extend_with_parameter_wise_lr(extend_with_weight_decay(keras.optimizers.SGD))
    outer_decay = extend_with_weight_decay(extend_with_parameter_wise_lr(keras.optimizers.SGD))
    mult = lambda path: 4.0 if path.endswith("kernel") else 1.0

    def lr_outside(path, old, new, g, lr):
        return old + (ref.weight_decay(old, new, lr, 0.5) - old) * mult(path)

    def decay_outside(path, old, new, g, lr):
        return ref.weight_decay(old, old + (new - old) * mult(path), lr, 0.5)

    got_a = ref.run_keras(outer_lr(LR, **kwargs), params, steps)
    got_b = ref.run_keras(outer_decay(LR, **kwargs), params, steps)
    ref.assert_params_close(got_a, ref.run_numpy(ref.SGD(), params, steps, LR, lr_outside))
    ref.assert_params_close(got_b, ref.run_numpy(ref.SGD(), params, steps, LR, decay_outside))
    assert np.abs(got_a["dense/kernel"] - got_b["dense/kernel"]).max() > 1e-3
