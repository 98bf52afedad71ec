"""Backend-neutral helpers built on `keras.ops`: activations and small ops.

bert4keras exposed these from `bert4keras.backend`; the names are kept.
"""

import keras
from keras import ops

# Registers a class or function under the nlp4keras package so that
# `keras.saving.load_model` finds it.
serializable = keras.saving.register_keras_serializable(package="nlp4keras")


@serializable
def gelu_erf(x):
    """Exact GELU, x * Phi(x) (what HF calls "gelu")."""
    return ops.gelu(x, approximate=False)


@serializable
def gelu_tanh(x):
    """Tanh approximation of GELU (Google BERT's original, HF "gelu_new")."""
    return ops.gelu(x, approximate=True)


# What the bare name "gelu" means; bert4keras let users switch it globally.
_gelu_default = {"gelu": "gelu_erf"}

# Activation names found in Google / HF configs, mapped to one canonical name.
_ACTIVATION_ALIASES = {
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_python": "gelu_erf",
    "silu": "swish",
}

_OWN_ACTIVATIONS = {"gelu_erf": gelu_erf, "gelu_tanh": gelu_tanh}


def set_gelu(version):
    """Choose what the name "gelu" means from now on: 'erf' (default) or 'tanh'."""
    version = str(version).lower()
    if version not in ("erf", "tanh"):
        raise ValueError(f"set_gelu() takes 'erf' or 'tanh', got {version!r}")
    _gelu_default["gelu"] = "gelu_" + version


def resolve_activation(name):
    """The canonical name of an activation (so saved configs do not depend on
    the global `set_gelu` state). Non-string activations are returned as is."""
    if not isinstance(name, str):
        return name
    key = name.lower()
    key = _gelu_default.get(key, key)
    return _ACTIVATION_ALIASES.get(key, key)


def get_activation(name):
    """An activation callable from a name (config or canonical) or callable."""
    resolved = resolve_activation(name)
    if resolved is None:
        return keras.activations.linear
    if callable(resolved):
        return resolved
    if resolved in _OWN_ACTIVATIONS:
        return _OWN_ACTIVATIONS[resolved]
    try:
        return keras.activations.get(resolved)
    except ValueError:
        raise ValueError(
            f"unknown activation {name!r}; use a Keras activation name or one of "
            f"{', '.join(sorted(['gelu', *_OWN_ACTIVATIONS, *_ACTIVATION_ALIASES]))}"
        ) from None


def infinity():
    """A large finite number used instead of inf where inf would make NaNs."""
    return 1e12
