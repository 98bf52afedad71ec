"""nlp4keras: bert4keras reborn on Keras 3 (JAX, PyTorch, TensorFlow)."""

import importlib.util
import os
import sys

__version__ = "0.1.0"

# Keras picks its backend once, at import. When the user has not chosen one
# (no KERAS_BACKEND) and keras is not imported yet, take the first installed of
# jax, torch, tensorflow instead of Keras' default (tensorflow), which crashes
# when TensorFlow is absent. An explicit choice is never overridden.
_BACKEND_PREFERENCE = ("jax", "torch", "tensorflow")


def _choose_backend():
    if "KERAS_BACKEND" in os.environ or "keras" in sys.modules:
        return None
    for name in _BACKEND_PREFERENCE:
        if importlib.util.find_spec(name) is not None:
            os.environ["KERAS_BACKEND"] = name
            return name
    return None


_choose_backend()

# Register every layer, activation and initializer with Keras, so that
# `keras.saving.load_model()` works after a bare `import nlp4keras`.
from nlp4keras import backend, initializers, layers  # noqa: E402,F401
