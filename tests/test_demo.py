"""`make demo`'s script, run as a newcomer runs it: nothing set (no
KERAS_BACKEND, a fresh Keras home), twice, and with a keras.json naming a
backend that is not installed. It imports keras before nlp4keras. The
printed similarities must be those of the real MiniLM (tests/demo_output.py).

.ci/run also runs `make demo` itself on the fresh clone, before anything
but the demo's JAX environment is installed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from demo_output import check

from nlp4keras import _backend_choice

pytestmark = pytest.mark.backend_free  # subprocesses choose their backend: one lane (lanes.py)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sentence_similarity.py"


def run_demo(minilm_dir, keras_home, backend=None):
    environment = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    environment["KERAS_HOME"] = str(keras_home)
    if backend:
        environment["KERAS_BACKEND"] = backend
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(minilm_dir)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_example_imports_keras_first():
    # The premise of the clean-environment tests below.
    source = EXAMPLE.read_text()
    assert source.index("import keras") < source.index("from nlp4keras")


def test_demo_in_a_clean_environment_twice(minilm_dir, tmp_path):
    keras_home = tmp_path / "fresh_keras_home"  # does not exist yet
    for _ in range(2):  # the second run reads the keras.json the first one left
        output = run_demo(minilm_dir, keras_home)
        assert "on the jax backend" in output.splitlines()[0]
        check(output)
    assert (keras_home / "keras.json").is_file()


def test_demo_with_keras_json_naming_a_missing_backend(minilm_dir, tmp_path):
    assert not _backend_choice.installed("openvino")
    (tmp_path / "keras.json").write_text('{"backend": "openvino"}')
    output = run_demo(minilm_dir, tmp_path)
    assert "on the jax backend" in output.splitlines()[0]
    check(output)


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_demo_on_a_chosen_backend(minilm_dir, tmp_path, backend):
    output = run_demo(minilm_dir, tmp_path, backend)
    assert f"on the {backend} backend" in output.splitlines()[0]
    check(output)
