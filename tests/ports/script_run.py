"""Run a ported example in a subprocess, as a user would: `python script.py` in its folder."""

import dataclasses
import os
import re
import subprocess
import sys
import time

import keras

# The line of a traceback that names the exception: `ValueError: ...`, `jax.errors.X: ...`.
EXCEPTION = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception|Exit|Interrupt)\b")
# Lines of a traceback that name a file and line.
FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)', re.MULTILINE)


@dataclasses.dataclass
class ScriptRun:
    script: str
    returncode: int
    output: str  # stdout and stderr, interleaved
    seconds: float
    timed_out: bool = False

    @property
    def ok(self):
        return self.returncode == 0 and not self.timed_out

    def first_error(self):
        """'script.py:LINE: the exception line' of the last traceback ('' when none): the
        deepest frame in the script itself, and the error it raised."""
        tail = self.output[self.output.rfind("Traceback (most recent call last)") :]
        error = next((line for line in tail.splitlines() if EXCEPTION.match(line)), "")
        frames = [m for m in FRAME.finditer(tail) if m["file"].endswith(".py")]
        ours = [m for m in frames if os.path.basename(m["file"]) == self.script]
        where = f"{self.script}:{ours[-1]['line']}: " if ours else ""
        if self.timed_out:
            return f"{self.script}: timed out after {self.seconds:.0f} s"
        return f"{where}{error}".strip()

    def describe(self, last_lines=40):
        lines = self.output.rstrip().splitlines()[-last_lines:]
        status = "timed out" if self.timed_out else f"exit {self.returncode}"
        return (
            f"{self.script}: {status} after {self.seconds:.1f} s; "
            f"first error: {self.first_error() or '-'}\n--- last {len(lines)} lines ---\n"
            + "\n".join(lines)
        )


def run_script(workspace, script, timeout):
    """Run `python script` with cwd=workspace, the current Keras backend and KERAS_HOME."""
    env = dict(os.environ)
    env["KERAS_BACKEND"] = keras.backend.backend()
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONHASHSEED", "0")
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, script],
            cwd=workspace,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as expired:
        output = (expired.output or b"").decode("utf-8", "replace")
        return ScriptRun(script, -1, output, time.perf_counter() - start, timed_out=True)
    output = done.stdout.decode("utf-8", "replace")
    return ScriptRun(script, done.returncode, output, time.perf_counter() - start)
