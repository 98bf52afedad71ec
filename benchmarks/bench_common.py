"""Helpers the benchmark scripts share: machine load, quiet waits, memory,
run order, quantiles and the environment a run reports."""

import importlib.metadata
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine_busy_s():
    """CPU seconds all processes have used since boot (Linux /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            values = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal: all but idle and iowait.
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait, threshold=0.3, window=1.0):
    """Wait (at most max_wait s) until other processes use < threshold cores
    over a window; return (seconds waited, cores busy in the last window)."""
    start = time.perf_counter()
    while max_wait > 0:
        before = machine_busy_s()
        if before is None:
            return 0.0, None
        time.sleep(window)
        busy = (machine_busy_s() - before) / window
        waited = time.perf_counter() - start
        if busy < threshold or waited >= max_wait:
            return waited, busy
    return 0.0, None


def current_rss_mb():
    """Resident set size now (Linux /proc), or None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


def torch_threads():
    if "torch" not in sys.modules:
        return None
    return sys.modules["torch"].get_num_threads()


def order_for_round(impls, index):
    """Rotate, and reverse every other round, so each impl moves around."""
    shift = index // 2 % len(impls)
    rotated = impls[shift:] + impls[:shift]
    return rotated[::-1] if index % 2 else rotated


def quantile(values, q):
    values = sorted(values)
    position = (len(values) - 1) * q
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def versions():
    info = {"python": platform.python_version()}
    for package in ("keras", "jax", "jaxlib", "torch", "transformers", "numpy"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    return info


def git_state():
    """Commit of the checkout and whether nlp4keras/ has uncommitted edits."""

    def git(*command):
        try:
            proc = subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True)
        except OSError:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    status = git("status", "--porcelain", "--", "nlp4keras")
    return {"commit": git("rev-parse", "HEAD"), "nlp4keras_dirty": bool(status)}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
