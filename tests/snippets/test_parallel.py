"""Tests for nlp4keras.snippets.parallel: results against `map` (ordered) and
as a permutation (unordered), seeded worker processes against the seeded
streams of `random` and numpy, errors raised in workers, a clear error for
unpicklable or unimportable funcs, bounded reading of the input, and no
worker left running after an error or an early close.

Worker processes start with 'spawn', so the functions they run live in a
small module written to a temporary folder on sys.path (spawned workers get
the parent's sys.path); importing a test module there would import Keras.
"""

import importlib
import multiprocessing
import random
import sys
import textwrap
import threading
import time
import types

import numpy as np
import pytest

from nlp4keras.snippets import parallel_apply, parallel_apply_generator
from nlp4keras.snippets.parallel import _worker_seeds

pytestmark = pytest.mark.backend_free  # tests/lanes.py: first lane of `make test` only

WORKER_FUNCS = '''
import os, random, time
import numpy as np

def square(x):
    return x * x

def jittered_square(x):
    time.sleep(random.random() * 0.01)
    return x * x

def draws_after_rendezvous(folder):
    """Wait until two workers have each taken an item, then draw."""
    open(os.path.join(folder, str(os.getpid())), "w").close()
    deadline = time.time() + 60
    while len(os.listdir(folder)) < 2 and time.time() < deadline:
        time.sleep(0.005)
    return os.getpid(), random.random(), float(np.random.random())

class PairError(Exception):
    def __init__(self, a, b):  # unpicklable: pickle re-creates it with one arg
        super().__init__(f"pair {a} {b}")

def fail_on_3(x):
    if x == 3:
        raise ValueError(f"item {x} is bad")
    return x

def pair_error_on_3(x):
    if x == 3:
        raise PairError(x, "b")
    return x

def sleep_then_return(x):
    time.sleep(0.2)
    return x
'''


@pytest.fixture(scope="module")
def funcs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parallel_funcs")
    (folder / "parallel_worker_funcs.py").write_text(textwrap.dedent(WORKER_FUNCS))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield importlib.import_module("parallel_worker_funcs")
        sys.modules.pop("parallel_worker_funcs", None)


@pytest.fixture(autouse=True)
def no_worker_left():
    """Every test must leave no worker process or thread behind."""
    yield
    assert multiprocessing.active_children() == []
    deadline = time.time() + 5
    while _worker_threads() and time.time() < deadline:
        time.sleep(0.01)
    assert _worker_threads() == []


def _worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith("parallel_apply-")]


@pytest.mark.parametrize("dummy", [False, True])
def test_ordered_results_equal_map(funcs, dummy):
    items = list(range(25))
    results = parallel_apply(
        funcs.jittered_square, items, 2, 3, dummy=dummy, random_seeds=False, unordered=False
    )
    assert results == list(map(funcs.square, items))


def test_unordered_results_are_a_permutation(funcs):
    # the process path is the same generator, checked through the ordered test
    pairs = list(parallel_apply_generator(funcs.jittered_square, iter(range(25)), 2, 2, True))
    assert sorted(pairs) == [(i, i * i) for i in range(25)]
    results = parallel_apply(funcs.jittered_square, range(25), 2, 2, dummy=True)
    assert sorted(results) == [i * i for i in range(25)]


def test_callback_in_input_order(funcs):
    seen = []
    returned = parallel_apply(
        funcs.jittered_square, range(20), 2, 2, callback=seen.append, dummy=True, unordered=False
    )
    assert returned is None and seen == [i * i for i in range(20)]


def _draws_by_worker(funcs, tmp_path, seeds):
    folder = tmp_path / "rendezvous"
    folder.mkdir()
    pairs = parallel_apply_generator(
        funcs.draws_after_rendezvous, [str(folder)] * 8, 2, 2, random_seeds=seeds
    )
    by_worker = {}
    for _, (pid, py_draw, np_draw) in sorted(pairs):  # a worker takes items in input order
        by_worker.setdefault(pid, []).append((py_draw, np_draw))
    assert len(by_worker) == 2  # the rendezvous makes both workers draw
    return list(by_worker.values())


def _seeded_stream(seed, n):
    python, legacy = random.Random(seed), np.random.RandomState(seed)
    return [(python.random(), legacy.random_sample()) for _ in range(n)]


def test_seeded_workers_are_reproducible(funcs, tmp_path):
    streams = _draws_by_worker(funcs, tmp_path, [11, 22])
    # each worker's draws are the start of its seed's stream, one seed each
    matched = []
    for draws in streams:
        matches = [s for s in (11, 22) if draws == _seeded_stream(s, len(draws))]
        assert len(matches) == 1, draws
        matched += matches
    assert sorted(matched) == [11, 22]


def test_seed_arguments():
    assert _worker_seeds(5, 3) == [5, 6, 7]  # an int: consecutive seeds
    assert _worker_seeds([3, 1], 2) == [3, 1]
    assert _worker_seeds(False, 2) == _worker_seeds(None, 2) == [None, None]
    assert all(len(set(_worker_seeds(True, 8))) == 8 for _ in range(20))  # distinct


def test_default_seeds_differ_between_workers(funcs, tmp_path):
    first, second = _draws_by_worker(funcs, tmp_path, True)
    assert first[0][0] != second[0][0] and first[0][1] != second[0][1]


@pytest.mark.parametrize("dummy", [False, True])
def test_exception_propagates_with_its_message(funcs, dummy):
    with pytest.raises(ValueError, match="item 3 is bad") as caught:
        parallel_apply(funcs.fail_on_3, range(10), 2, 2, dummy=dummy, random_seeds=False)
    if not dummy:  # the worker's traceback comes along as the cause
        assert "fail_on_3" in str(caught.value.__cause__)


def test_unpicklable_exception_keeps_its_message(funcs):
    with pytest.raises(RuntimeError, match="PairError: pair 3 b"):
        parallel_apply(funcs.pair_error_on_3, range(10), 2, 2, random_seeds=False)


def test_lambda_with_processes_is_a_clear_error():
    with pytest.raises(TypeError, match="must be picklable.*dummy=True"):
        parallel_apply(lambda x: x, range(3), 2, 2)
    with pytest.raises(TypeError, match="`func` must be callable, got 'len' \\(str\\)"):
        parallel_apply("len", range(3), 2, 2, dummy=True)


def test_threads_run_a_lambda():
    results = parallel_apply(lambda x: x + 1, range(30), 2, 4, dummy=True, unordered=False)
    assert results == list(range(1, 31))


def test_func_a_worker_cannot_import_is_a_clear_error():
    # like a function typed in a notebook: picklable by name, missing in a fresh interpreter
    module = types.ModuleType("only_in_this_process")
    exec("def double(x):\n    return 2 * x", module.__dict__)
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(RuntimeError, match="could not load func.*only_in_this_process"):
            parallel_apply(module.double, range(4), 2, 2, random_seeds=False)
    finally:
        del sys.modules[module.__name__]


@pytest.mark.parametrize("dummy", [False, True])
def test_early_close_stops_the_workers(funcs, dummy):
    results = parallel_apply_generator(
        funcs.sleep_then_return, range(1000), 2, 2, dummy=dummy, random_seeds=False
    )
    next(results)
    started = time.time()
    results.close()
    assert time.time() - started < 5
    # processes are stopped by close(); threads by the fixture's wait


def test_input_is_read_lazily_and_bounded():
    read = []

    def items():
        for i in range(200):
            read.append(i)
            yield i

    in_flight = []
    for n_yielded, _ in enumerate(
        parallel_apply_generator(lambda x: x, items(), 3, 4, dummy=True), start=1
    ):
        in_flight.append(len(read) - n_yielded)
    assert len(read) == 200
    assert max(in_flight) <= 4 + 3  # max_queue_size + workers


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(workers=0), "`workers` must be an integer >= 1, got 0"),
        (dict(max_queue_size=0), "`max_queue_size` must be an integer >= 1, got 0"),
        (dict(start_method="threads"), "`start_method` must be one of .*got 'threads'"),
        (dict(random_seeds=[1]), "1 seeds for 2 workers"),
        (
            dict(random_seeds=[1, -1]),
            r"`random_seeds\[1\]` must be an integer >= 0 and < 4294967296",
        ),
        (dict(random_seeds=[1, 2], dummy=True), "threads share one random state"),
        (dict(random_seeds=1, dummy=True), "threads share one random state"),
    ],
)
def test_bad_arguments_are_named(funcs, kwargs, message):
    arguments = dict(func=funcs.square, iterable=range(3), workers=2, max_queue_size=2)
    with pytest.raises(ValueError, match=message):
        parallel_apply(**(arguments | kwargs))


SCRIPT = """
from nlp4keras.snippets import parallel_apply


def square(x):
    return x * x

{call}
"""
CALL = "print(sorted(parallel_apply(square, range(6), workers=2, max_queue_size=2)))"


@pytest.mark.parametrize("guarded", [False, True])
def test_a_script_without_the_main_guard_is_told_to_add_it(tmp_path, guarded):
    import subprocess

    call = f'if __name__ == "__main__":\n    {CALL}' if guarded else CALL
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(call=call))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    if guarded:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[0, 1, 4, 9, 16, 25]"
    else:
        assert result.returncode != 0
        last_line = result.stderr.strip().splitlines()[-1]
        assert last_line.startswith("RuntimeError: worker process parallel_apply-")
        assert 'under `if __name__ == "__main__":`' in last_line
