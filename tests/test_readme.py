"""Every python block of README.md runs on its own, in a fresh interpreter, on
the backend under test. A python block followed directly by a ```text block
must print exactly that text. Documentation that is not meant to run does
not go in a python fence."""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def readme_blocks(text):
    """[(line, code, expected output or None)] for the python fences of `text`."""
    fences = list(FENCE.finditer(text))
    blocks = []
    for index, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        expected = None
        following = fences[index + 1] if index + 1 < len(fences) else None
        if (
            following is not None
            and following.group(1) == "text"
            and not text[fence.end() : following.start()].strip()
        ):
            expected = following.group(2)
        blocks.append((text.count("\n", 0, fence.start()) + 1, fence.group(2), expected))
    return blocks


TEXT = README.read_text(encoding="utf-8")
BLOCKS = readme_blocks(TEXT)


def test_every_python_fence_is_found():
    # An indented or oddly written fence would escape the test below.
    assert len(BLOCKS) == TEXT.count("```python") >= 5


@pytest.mark.parametrize("line, code, expected", BLOCKS, ids=[f"line{b[0]}" for b in BLOCKS])
def test_readme_block_runs(line, code, expected):
    environment = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"README.md block at line {line} failed:\n{result.stderr}"
    if expected is not None:
        assert result.stdout == expected, f"README.md block at line {line} printed otherwise"


def test_block_parser_pairs_code_with_its_output():
    text = "```python\nprint(1)\n```\n\n```text\n1\n```\n```python\nx = 2\n```\n```bash\nls\n```\n"
    assert readme_blocks(text) == [(1, "print(1)\n", "1\n"), (8, "x = 2\n", None)]
