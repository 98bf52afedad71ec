"""nlp4keras: bert4keras reborn on Keras 3 (JAX, PyTorch, TensorFlow)."""

from nlp4keras import _backend_choice

__version__ = "0.1.0"

# Keras picks its backend once, at import: choose one by nlp4keras' rule
# (KERAS_BACKEND, else keras.json unless it holds Keras' own default, else
# the first installed of jax, torch, tensorflow) before it loads, and say
# what to do when the one it would load is missing.
_backend_choice.apply()
_backend_choice.check_backend_installed()

# Register every layer, activation, initializer, loss and optimizer with
# Keras, so that `keras.saving.load_model()` works after a bare
# `import nlp4keras` (classes made by `extend_with_*` register when made).
from nlp4keras import backend, initializers, layers, losses, optimizers  # noqa: E402,F401
