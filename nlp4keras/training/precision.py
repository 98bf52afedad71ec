"""Mixed precision for models built by nlp4keras.

Keras 3 layers take their dtype policy from the global one when created, so a
model is built under the policy and its variables stay float32:

    with mixed_precision("mixed_float16"):
        bert = build_transformer_model(config_path, checkpoint_path)
        model = keras.Model(bert.inputs, keras.layers.Dense(2, dtype="float32")(...))
    model.compile(optimizer, loss)  # mixed_float16: LossScaleOptimizer added

The final keras.Model must be created under the policy too: compile only
wraps the optimizer in a LossScaleOptimizer when the model's own policy is
mixed_float16. Softmax heads are best given dtype="float32".
"""

import contextlib

import keras

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16", "bfloat16", "float16")


@contextlib.contextmanager
def mixed_precision(policy="mixed_bfloat16"):
    """Set the global Keras dtype policy inside the block, restore it after."""
    name = getattr(policy, "name", policy)
    if name not in POLICIES:
        raise ValueError(f"unknown dtype policy {policy!r}; use one of {', '.join(POLICIES)}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield keras.config.dtype_policy()
    finally:
        keras.config.set_dtype_policy(previous)
