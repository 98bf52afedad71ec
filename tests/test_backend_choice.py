"""The Keras backend: nlp4keras' rule (nlp4keras/_backend_choice.py), applied
by `import nlp4keras` and, before any import, by the nlp4keras.pth start-up
hook; an explicit choice is never overridden."""

import json
import os
import subprocess
import sys

import pytest

from nlp4keras import _backend_choice

pytestmark = pytest.mark.backend_free  # subprocesses choose their backend: one lane (lanes.py)

PROBE = (
    "import nlp4keras, os, keras; print(os.environ.get('KERAS_BACKEND'), keras.backend.backend())"
)
# What the interpreter start-up hook did, before anything is imported.
AT_START = "import os, sys; print(os.environ.get('KERAS_BACKEND'), 'keras' in sys.modules)"


def clean_environment(**env):
    environment = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME")}
    environment.update(env)
    return environment


def probe(code=PROBE, **env):
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def keras_home_with(tmp_path, backend):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": backend}))
    return str(tmp_path)


# ------------------------------------------------------ the rule, in-process
@pytest.fixture
def rule_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "keras_json, available, expected",
    [
        (None, {"jax", "torch", "tensorflow"}, "jax"),  # nothing chosen: the first installed
        (None, {"torch", "tensorflow"}, "torch"),
        (None, {"tensorflow"}, "tensorflow"),
        (None, set(), None),  # nothing installed: leave it to the error
        ("tensorflow", {"jax", "tensorflow"}, "jax"),  # Keras' own default is no choice
        ("tensorflow", {"torch"}, "torch"),  # written by Keras, TensorFlow absent
        ("torch", {"jax", "torch"}, None),  # a real choice: Keras reads it itself
        ("torch", {"jax"}, "jax"),  # the chosen one is not installed
        ("numpy", {"jax"}, None),  # Keras' numpy backend needs only numpy
    ],
)
def test_rule(rule_environment, keras_json, available, expected):
    if keras_json is not None:
        keras_home_with(rule_environment, keras_json)
    installed = lambda name: name in available or name == "numpy"
    assert _backend_choice.choose(installed) == expected


def test_rule_never_overrides_keras_backend(rule_environment, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert _backend_choice.choose(lambda name: name == "jax") is None


def test_unreadable_keras_json_counts_as_no_choice(rule_environment):
    (rule_environment / "keras.json").write_text("{not json")
    assert _backend_choice.choose(lambda name: name == "torch") == "torch"


def test_message_for_an_explicit_backend_that_is_missing():
    message = _backend_choice.missing_backend_message("torch", lambda name: name == "jax")
    assert "KERAS_BACKEND='torch'" in message
    assert "pip install 'nlp4keras[torch]'" in message
    assert "KERAS_BACKEND=jax" in message


def test_message_when_no_backend_is_installed():
    message = _backend_choice.missing_backend_message("tensorflow", lambda name: False)
    assert "none of jax, torch, tensorflow is installed" in message
    assert "pip install 'nlp4keras[jax]'" in message


def test_no_message_for_an_installed_backend():
    assert _backend_choice.missing_backend_message("jax", lambda name: name == "jax") is None


# ------------------------------------------- real processes, as users run them
def test_unset_backend_picks_the_first_installed(tmp_path):
    # jax is installed in the test environment and comes first.
    assert probe(KERAS_HOME=str(tmp_path)) == ["jax", "jax"]


@pytest.mark.parametrize("backend", ["torch", "jax", "tensorflow"])
def test_explicit_choice_is_respected(backend, tmp_path):
    assert probe(KERAS_BACKEND=backend, KERAS_HOME=str(tmp_path)) == [backend, backend]


def test_keras_json_choice_is_respected(tmp_path):
    assert probe(KERAS_HOME=keras_home_with(tmp_path, "torch")) == ["None", "torch"]


def test_keras_json_default_tensorflow_is_no_choice(tmp_path):
    assert probe(KERAS_HOME=keras_home_with(tmp_path, "tensorflow")) == ["jax", "jax"]


def test_start_up_hook_sets_the_backend_without_importing_keras(tmp_path):
    assert probe(AT_START, KERAS_HOME=str(tmp_path)) == ["jax", "False"]
    # A keras.json naming a backend that is not installed gets the rule too.
    assert not _backend_choice.installed("openvino")
    assert probe(AT_START, KERAS_HOME=keras_home_with(tmp_path, "openvino")) == ["jax", "False"]


def test_start_up_hook_leaves_an_explicit_choice_alone(tmp_path):
    assert probe(AT_START, KERAS_BACKEND="torch", KERAS_HOME=str(tmp_path)) == ["torch", "False"]
    assert probe(AT_START, KERAS_HOME=keras_home_with(tmp_path, "torch")) == ["None", "False"]


def test_keras_imported_first_gets_the_same_backend(tmp_path):
    # The order isort gives (keras before nlp4keras), with nothing chosen:
    # plain Keras would load TensorFlow, or crash where it is not installed.
    code = "import keras; " + PROBE
    assert probe(code, KERAS_HOME=str(tmp_path)) == ["jax", "jax"]
    assert probe(code, KERAS_HOME=keras_home_with(tmp_path, "openvino")) == ["jax", "jax"]
    assert probe(code, KERAS_HOME=keras_home_with(tmp_path, "torch")) == ["None", "torch"]


def test_missing_explicit_backend_says_what_to_do(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import nlp4keras"],
        env=clean_environment(KERAS_BACKEND="openvino", KERAS_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "ImportError: KERAS_BACKEND='openvino', but 'openvino' is not installed" in result.stderr
    assert "pip install openvino" in result.stderr
