"""Helper scripts run in subprocesses started together (several devices or
processes must be set up before a framework starts), for tests."""

import socket
import subprocess
import time

import pytest


def free_port():
    """A TCP port free on localhost now (for a coordinator to listen on)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_together(commands, env, cwd, timeout, what):
    """Start every command of {name: argv} at once and wait for all within
    `timeout` seconds together; on a failure (or a timeout, which kills
    them all) fail the test with each failure and the end of its stderr.
    env: the environment of every command, or a function name -> environment."""
    started, processes = time.monotonic(), {}
    for name, command in commands.items():
        processes[name] = subprocess.Popen(
            command, env=env(name) if callable(env) else env, cwd=cwd, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
    failures = []
    for name, process in processes.items():
        left = max(1, timeout - (time.monotonic() - started))
        try:
            _, stderr = process.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            for other in processes.values():
                other.kill()
            _, stderr = process.communicate()
            failures.append(f"{name}: still running after {timeout} s\n{stderr[-3000:]}")
            continue
        if process.returncode:
            failures.append(f"{name}: exit code {process.returncode}\n{stderr[-3000:]}")
    if failures:
        pytest.fail(f"{what} failed:\n" + "\n".join(failures))
