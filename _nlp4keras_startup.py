"""Run at interpreter start by `nlp4keras.pth` (installed next to nlp4keras).

Applies nlp4keras' backend rule (nlp4keras/_backend_choice.py) before any
import, so that `import keras` placed before `import nlp4keras` (the order
isort gives) finds an installed backend instead of Keras' default
TensorFlow. It changes nothing when KERAS_BACKEND is set. It loads that one
file by path: importing the nlp4keras package here would import Keras into
every Python process of the environment. Never raises, never prints.
"""


def _apply_backend_rule():
    import importlib.util
    import os
    import sys

    if os.environ.get("KERAS_BACKEND") or "keras" in sys.modules:
        return
    package = importlib.util.find_spec("nlp4keras")
    if package is None or not package.submodule_search_locations:
        return
    path = os.path.join(list(package.submodule_search_locations)[0], "_backend_choice.py")
    spec = importlib.util.spec_from_file_location("_nlp4keras_backend_choice", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.apply()


try:
    _apply_backend_rule()
except Exception:  # a start-up hook must never break Python
    pass
