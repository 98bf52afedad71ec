"""Which Keras backend to use, decided before Keras is imported.

Keras reads its backend once, when it is first imported: `KERAS_BACKEND`,
else the "backend" of `keras.json`, else "tensorflow" (which it then writes
into `keras.json`), and crashes when that backend is not installed. The rule
here, in order:

1. `KERAS_BACKEND`, when set, always wins.
2. Else the `keras.json` backend, when it is installed and is not
   "tensorflow" (Keras writes that value by itself on first use, so it is no
   sign of a choice).
3. Else the first installed of jax, torch, tensorflow.

`import nlp4keras` applies it. So does `nlp4keras.pth` at interpreter start
(through `_nlp4keras_startup`), so a script that imports keras before
nlp4keras gets the same backend. This file therefore imports only the
standard library, never raises at start-up and prints nothing.
"""

import importlib.util
import os
import sys

PREFERENCE = ("jax", "torch", "tensorflow")
# Keras backend name -> the module it needs.
BACKEND_MODULES = {
    "jax": "jax",
    "torch": "torch",
    "tensorflow": "tensorflow",
    "numpy": "numpy",
    "openvino": "openvino",
}
KERAS_DEFAULT = "tensorflow"


def installed(backend):
    """Whether the module a Keras backend needs can be imported (not importing it)."""
    module = BACKEND_MODULES.get(backend, backend)
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def keras_json_path():
    """Where Keras looks for keras.json (its own rule: KERAS_HOME, else ~/.keras,
    else /tmp/.keras when the home folder is not writable)."""
    if "KERAS_HOME" in os.environ:
        folder = os.environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        folder = os.path.join(base, ".keras")
    return os.path.join(os.path.expanduser(folder), "keras.json")


def configured_backend():
    """The "backend" of keras.json, or None when there is none or it is unreadable."""
    import json

    try:
        with open(keras_json_path(), encoding="utf-8") as f:
            value = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def choose(is_installed=installed):
    """The backend to set in KERAS_BACKEND, or None to leave Keras' own choice."""
    if os.environ.get("KERAS_BACKEND"):
        return None
    configured = configured_backend()
    if configured and configured != KERAS_DEFAULT and is_installed(configured):
        return None
    return next((name for name in PREFERENCE if is_installed(name)), None)


def apply():
    """Set KERAS_BACKEND by the rule when Keras is not imported yet; returns the
    name set, or None."""
    if "keras" in sys.modules:
        return None
    name = choose()
    if name is not None:
        os.environ["KERAS_BACKEND"] = name
    return name


def missing_backend_message(chosen, is_installed=installed):
    """What to do when Keras would load `chosen` and it is not installed, else None."""
    if chosen not in BACKEND_MODULES or is_installed(chosen):
        return None  # installed, or a name Keras itself reports as unknown
    available = [name for name in PREFERENCE if is_installed(name)]
    if not available:
        return (
            "nlp4keras needs a Keras backend, and none of jax, torch, tensorflow is "
            "installed: pip install 'nlp4keras[jax]' (or [torch], [tensorflow])"
        )
    package = f"'nlp4keras[{chosen}]'" if chosen in PREFERENCE else BACKEND_MODULES[chosen]
    return (
        f"KERAS_BACKEND={chosen!r}, but {BACKEND_MODULES[chosen]!r} is not installed: "
        f"pip install {package}, or choose an installed backend "
        f"(KERAS_BACKEND={' | '.join(available)}), or unset KERAS_BACKEND"
    )


def check_backend_installed():
    """After `apply()`: an ImportError that says what to do where Keras would
    fail with a bare `No module named ...`."""
    if "keras" in sys.modules:
        return
    chosen = os.environ.get("KERAS_BACKEND") or configured_backend() or KERAS_DEFAULT
    message = missing_backend_message(chosen)
    if message:
        raise ImportError(message)
