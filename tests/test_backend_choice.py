"""nlp4keras picks a Keras backend only when the user has not."""

import os
import subprocess
import sys

import pytest

PROBE = (
    "import nlp4keras, os, keras; print(os.environ.get('KERAS_BACKEND'), keras.backend.backend())"
)


def probe(code=PROBE, **env):
    environment = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_unset_backend_picks_the_first_installed():
    # jax is installed in the test environment and comes first.
    assert probe() == ["jax", "jax"]


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_explicit_choice_is_respected(backend):
    assert probe(KERAS_BACKEND=backend) == [backend, backend]


def test_keras_already_imported_is_left_alone(tmp_path):
    # keras imported first reads its own config (here: torch from keras.json);
    # nlp4keras must not set KERAS_BACKEND afterwards.
    (tmp_path / "keras.json").write_text('{"backend": "torch"}')
    code = "import keras; " + PROBE
    assert probe(code, KERAS_HOME=str(tmp_path)) == ["None", "torch"]


def test_keras_json_choice_is_respected(tmp_path):
    (tmp_path / "keras.json").write_text('{"backend": "torch"}')
    assert probe(KERAS_HOME=str(tmp_path)) == ["None", "torch"]


def test_keras_json_default_tensorflow_does_not_crash(tmp_path):
    # Keras writes "tensorflow" there on first use; TensorFlow is not installed.
    (tmp_path / "keras.json").write_text('{"backend": "tensorflow"}')
    assert probe(KERAS_HOME=str(tmp_path)) == ["jax", "jax"]
