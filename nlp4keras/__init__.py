"""nlp4keras: bert4keras reborn on Keras 3 (JAX, PyTorch, TensorFlow)."""

import importlib.util
import json
import os
import sys

__version__ = "0.1.0"

# Keras picks its backend once, at import. When the user has not chosen one
# and keras is not imported yet, take the first installed of jax, torch,
# tensorflow instead of Keras' default (tensorflow), which crashes when
# TensorFlow is absent. Explicit choices win: KERAS_BACKEND, and a keras.json
# naming an installed backend other than "tensorflow" (the value Keras writes
# there by itself on first use).
_BACKEND_PREFERENCE = ("jax", "torch", "tensorflow")


def _installed(name):
    return importlib.util.find_spec(name) is not None


def _keras_json_backend():
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def _choose_backend():
    if "KERAS_BACKEND" in os.environ or "keras" in sys.modules:
        return None
    configured = _keras_json_backend()
    if configured in ("jax", "torch") and _installed(configured):
        return None  # Keras will read it from keras.json
    for name in _BACKEND_PREFERENCE:
        if _installed(name):
            os.environ["KERAS_BACKEND"] = name
            return name
    return None


_choose_backend()

# Register every layer, activation, initializer, loss and optimizer with
# Keras, so that `keras.saving.load_model()` works after a bare
# `import nlp4keras` (classes made by `extend_with_*` register when made).
from nlp4keras import backend, initializers, layers, losses, optimizers  # noqa: E402,F401
