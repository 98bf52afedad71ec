"""`parallel_apply`: map a function over an iterable with worker processes or
threads, keeping a bounded number of items in flight (bert4keras API).

Worker processes start with 'spawn' by default: a fresh interpreter inherits
none of the parent's threads or accelerator state, whereas forking a process
that runs JAX or PyTorch can deadlock. So with `dummy=False`, `func`, the
items and the results travel by pickle: `func` must be defined at module
level in an importable module (not a lambda, a nested function, or one typed
in an interactive session), and a script that starts workers needs the usual
`if __name__ == "__main__":` guard. With `dummy=True`, threads run `func` and
any callable works.

This file imports only the standard library at its top: worker processes run
it by path (runpy) rather than importing the nlp4keras package, which would
import Keras and its backend, seconds per worker, before doing any work. The
argument checks import `nlp4keras.validation` when called, in the parent.
"""

import multiprocessing
import os
import pickle
import queue
import random
import runpy
import signal
import threading
import traceback

_WORKER_RUN_NAME = "_nlp4keras_parallel_worker"
_STARTUP = -1  # index of a worker's report that it could not start
_POLL_SECONDS = 0.1  # how often a waiting parent checks that workers are alive
_JOIN_SECONDS = 5.0
_MAX_SEED = 2**32  # numpy's legacy seeds are below this


def parallel_apply_generator(
    func,
    iterable,
    workers,
    max_queue_size,
    dummy=False,
    random_seeds=True,
    start_method="spawn",
):
    """Yield `(index, func(item))` for the items of `iterable`, in completion order.

    `workers` processes (threads with `dummy=True`) run `func`. The input is
    read lazily and at most `max_queue_size + workers` items are in flight
    (read but not yet yielded), so memory stays bounded on long iterables.
    An exception raised by `func` is raised here, with the worker's traceback
    as its cause; the workers are then stopped, as they are when the
    generator is closed early.

    `random_seeds` (worker processes only): True seeds python's `random` and
    numpy's global generator in each worker with a distinct random seed; an
    int seeds worker k with `random_seeds + k`, and a list gives one seed per
    worker (reproducible per worker; which worker gets which item still
    depends on timing); False or None leaves the generators alone. Threads
    share the process' generators, so with `dummy=True` only True, False or
    None are accepted, and nothing is seeded.

    `start_method`: 'spawn' (default), 'forkserver' or 'fork' (fast, but only
    safe when the parent runs no threads, so not after JAX or PyTorch start).

    With 'spawn' or 'forkserver', every worker first re-runs the top level of
    your script, so the script must start workers under the usual guard:

        if __name__ == "__main__":
            results = parallel_apply(func, items, workers=4, max_queue_size=100)

    `func` must be defined at module level (not a lambda or nested function).
    """
    return _start(
        func,
        iterable,
        workers,
        max_queue_size,
        dummy,
        random_seeds,
        start_method,
        "parallel_apply_generator",
    )


def _start(func, iterable, workers, max_queue_size, dummy, random_seeds, start_method, who):
    """Check the arguments (naming `who` in errors); the generator of results."""
    from nlp4keras import validation  # here, not at the top: see the module docstring

    if not callable(func):
        validation.instance(func, "func", (), who, what="callable")
    if not hasattr(iterable, "__iter__"):
        validation.instance(iterable, "iterable", (), who, what="an iterable of items")
    workers = validation.integer(workers, "workers", who, minimum=1)
    max_queue_size = validation.integer(max_queue_size, "max_queue_size", who, minimum=1)
    dummy = validation.boolean(dummy, "dummy", who)
    if dummy:
        if not (random_seeds is True or random_seeds is False or random_seeds is None):
            raise ValueError(
                f"{who}: `random_seeds` must be True, False or None with dummy=True, got "
                f"{random_seeds!r}: threads share one random state; use worker processes "
                "(dummy=False) for per-worker seeds"
            )
        make_pool = lambda: _ThreadPool(func, workers)
    else:
        context = _context(start_method, who)
        seeds = _worker_seeds(random_seeds, workers, who)
        func_payload = _pickle_func(func)
        make_pool = lambda: _ProcessPool(func_payload, seeds, context)
    return _generate(make_pool, iterable, max_queue_size + workers)


def parallel_apply(
    func,
    iterable,
    workers,
    max_queue_size,
    callback=None,
    dummy=False,
    random_seeds=True,
    unordered=True,
    start_method="spawn",
):
    """`func` over `iterable` in parallel (see `parallel_apply_generator`).

    Without `callback`, returns the list of results: in completion order when
    `unordered`, else in input order. With `callback`, calls it on each
    result in that order and returns None. Worker processes start with
    'spawn': call it under `if __name__ == "__main__":` in a script.
    """
    from nlp4keras import validation  # here, not at the top: see the module docstring

    who = "parallel_apply"
    callback = validation.callable_or_none(callback, "callback", who)
    unordered = validation.boolean(unordered, "unordered", who)
    generator = _start(
        func, iterable, workers, max_queue_size, dummy, random_seeds, start_method, who
    )
    try:
        pairs = generator if unordered else _in_input_order(generator)
        if callback is None:
            return [result for _, result in pairs]
        for _, result in pairs:
            callback(result)
        return None
    finally:
        generator.close()  # stops the workers at once if we leave early


def _generate(make_pool, iterable, limit):
    """Feed `iterable` to a pool, at most `limit` items in flight; yield results."""
    pool = make_pool()
    try:
        in_flight = 0
        for index, item in enumerate(iterable):
            if in_flight == limit:
                yield pool.get(block=True)
                in_flight -= 1
            pool.put(index, item)
            in_flight += 1
            while (result := pool.get(block=False)) is not None:
                yield result
                in_flight -= 1
        while in_flight:
            yield pool.get(block=True)
            in_flight -= 1
    except BaseException:  # an error, or the consumer closed the generator
        pool.abort()
        raise
    pool.close()


def _in_input_order(pairs):
    """Reorder `(index, result)` pairs by index, holding early arrivals."""
    waiting, next_index = {}, 0
    for index, result in pairs:
        waiting[index] = result
        while next_index in waiting:
            yield next_index, waiting.pop(next_index)
            next_index += 1


def _pickle_func(func):
    try:
        return pickle.dumps(func, pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise TypeError(
            f"func {func!r} cannot be sent to worker processes ({error}). With dummy=False, "
            "func must be picklable: a function defined at module level of an importable "
            "module, not a lambda or a nested function. Or pass dummy=True to use threads."
        ) from error


def _context(start_method, who):
    from nlp4keras import validation

    methods = multiprocessing.get_all_start_methods()
    validation.one_of(start_method, "start_method", methods, who)
    return multiprocessing.get_context(start_method)


def _worker_seeds(random_seeds, workers, who="parallel_apply"):
    """One seed (or None: leave the generators alone) per worker process."""
    from nlp4keras import validation

    if random_seeds is True:
        return random.SystemRandom().sample(range(_MAX_SEED), workers)  # distinct
    if random_seeds is False or random_seeds is None:
        return [None] * workers
    if validation.is_integer(random_seeds):  # worker k gets random_seeds + k
        first = validation.integer(
            random_seeds, "random_seeds", who, minimum=0, maximum=_MAX_SEED - workers
        )
        return [first + k for k in range(workers)]
    if isinstance(random_seeds, (str, bytes, dict)) or not hasattr(random_seeds, "__len__"):
        what = "True, False, None, an int or a list of ints"
        validation.instance(random_seeds, "random_seeds", (), who, what=what)
    random_seeds = list(random_seeds)
    if len(random_seeds) != workers:
        raise ValueError(
            f"{who}: `random_seeds` has {len(random_seeds)} seeds for {workers} workers"
        )
    return [
        validation.integer(seed, f"random_seeds[{k}]", who, minimum=0, below=_MAX_SEED)
        for k, seed in enumerate(random_seeds)
    ]


def _seed_generators(seed):
    if seed is None:
        return
    random.seed(seed)
    try:
        import numpy
    except ImportError:
        return
    numpy.random.seed(seed)


def _export_error(error):
    """A worker's exception as (pickled exception, traceback text). An
    exception that does not survive pickling becomes a RuntimeError."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        payload = pickle.dumps(error, pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)
    except Exception:
        payload = pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))
    return payload, text


class _RemoteTraceback(Exception):
    """Carries a worker's traceback, shown as the cause of the re-raised error."""

    def __str__(self):
        return "\n" + self.args[0]


def _serve(tasks, results, func, seed=None, in_process=False):
    """Worker loop: run `func` on `(index, item)` tasks until a None task,
    putting `(index, ok, result or error)` on `results`. In a process, func,
    items and results arrive and leave pickled."""
    if in_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        try:
            func = pickle.loads(func)
            _seed_generators(seed)
        except BaseException as error:
            results.put((_STARTUP, False, _export_error(error)))
            return
    while (task := tasks.get()) is not None:
        index, item = task
        try:
            if in_process:
                item = pickle.loads(item)
            result = func(item)
            if in_process:
                result = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
        except BaseException as error:
            results.put((index, False, _export_error(error) if in_process else error))
        else:
            results.put((index, True, result))


class _ThreadPool:
    def __init__(self, func, workers):
        self.tasks, self.results = queue.Queue(), queue.Queue()
        self.threads = [
            threading.Thread(
                target=_serve,
                args=(self.tasks, self.results, func),
                name=f"parallel_apply-{k}",
                daemon=True,
            )
            for k in range(workers)
        ]
        for thread in self.threads:
            thread.start()

    def put(self, index, item):
        self.tasks.put((index, item))

    def get(self, block):
        """The next `(index, result)`; None when not `block` and none is ready."""
        try:
            index, ok, value = self.results.get(block=block)
        except queue.Empty:
            return None
        if not ok:
            raise value
        return index, value

    def close(self):
        for _ in self.threads:
            self.tasks.put(None)
        for thread in self.threads:
            thread.join()

    def abort(self):
        # Threads cannot be killed: drop the waiting tasks, so each thread
        # exits once its current call returns.
        try:
            while True:
                self.tasks.get_nowait()
        except queue.Empty:
            pass
        for _ in self.threads:
            self.tasks.put(None)


class _ProcessPool:
    def __init__(self, func_payload, seeds, context):
        self.start_method = context.get_start_method()
        self.tasks, self.results = context.Queue(), context.Queue()
        self.processes = []
        try:
            for k, seed in enumerate(seeds):
                job = dict(
                    tasks=self.tasks,
                    results=self.results,
                    func=func_payload,
                    seed=seed,
                    in_process=True,
                )
                target, args, kwargs = _process_target(job)
                process = context.Process(
                    target=target,
                    args=args,
                    kwargs=kwargs,
                    name=f"parallel_apply-{k}",
                    daemon=True,
                )
                process.start()
                self.processes.append(process)
        except BaseException:
            self.abort()
            raise

    def put(self, index, item):
        try:
            payload = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            raise TypeError(
                f"item {index} ({type(item).__name__}) cannot be sent to a worker process: {error}"
            ) from error
        self.tasks.put((index, payload))

    def get(self, block):
        """The next `(index, result)`; None when not `block` and none is ready."""
        message = self._receive(block)
        if message is None:
            return None
        index, ok, value = message
        if ok:
            return index, pickle.loads(value)
        payload, remote_traceback = value
        error = pickle.loads(payload)
        if index == _STARTUP:
            raise RuntimeError(
                f"a worker process could not load func: {type(error).__name__}: {error}. "
                "func must be importable by name in a fresh interpreter: define it at "
                "module level of an importable file, or pass dummy=True to use threads."
            ) from _RemoteTraceback(remote_traceback)
        raise error from _RemoteTraceback(remote_traceback)

    def _receive(self, block):
        if not block:
            try:
                return self.results.get_nowait()
            except queue.Empty:
                return None
        while True:
            try:
                return self.results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                pass
            dead = [p for p in self.processes if p.exitcode is not None]
            if dead:
                try:  # a worker's last report may still be on its way
                    return self.results.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    raise RuntimeError(
                        f"worker process {dead[0].name} exited unexpectedly "
                        f"(exit code {dead[0].exitcode}).{self._startup_hint()}"
                    ) from None

    def _startup_hint(self):
        if self.start_method == "fork":
            return ""
        return (
            f" Workers start with {self.start_method!r}: each re-runs the top level of "
            "your script first, so a script must call parallel_apply under "
            '`if __name__ == "__main__":` (the worker\'s own error is printed above); '
            "dummy=True uses threads instead."
        )

    def close(self):
        for _ in self.processes:
            self.tasks.put(None)
        for process in self.processes:
            process.join(_JOIN_SECONDS)
        self.abort()  # stops any worker that did not exit, closes the queues

    def abort(self):
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(_JOIN_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        for channel in (self.tasks, self.results):
            channel.cancel_join_thread()  # never block on data no worker will read
            channel.close()


def _process_target(job):
    """How a worker process starts: this file run by path when it is on
    disk (no package import), else the imported `_serve`."""
    path = os.path.abspath(__file__)
    if os.path.isfile(path):
        kwargs = {"init_globals": {"_worker_job": job}, "run_name": _WORKER_RUN_NAME}
        return runpy.run_path, (path,), kwargs
    return _serve, (), job


if __name__ == _WORKER_RUN_NAME:  # this file, run by a worker process
    _serve(**globals()["_worker_job"])
