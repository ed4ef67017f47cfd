"""Where topcal's independent steps run: this process, a local process pool, or a dask.distributed cluster.

One executor model for the whole chain (``docs/design.md`` section 5). Every command that has
independent steps takes the same three options, as ``process`` and ``predict`` do for coffea:

* ``--executor iterative``: one step after the other in this process (the default);
* ``--executor futures --workers N``: a pool of N local processes;
* ``--executor dask --workers N``: a dask ``LocalCluster`` of N single-threaded worker processes, or
  ``--scheduler tcp://host:8786``: a running cluster (dask-jobqueue on SLURM or HTCondor, see ``docs/cluster.md``).

:func:`worker_pool` gives a :class:`WorkerPool` for any of them; :func:`run_tasks` runs a graph of
:class:`Task` objects (each with its inputs and outputs on disk, so a finished task is skipped and an
interrupted run resumes) on it. A task's result never depends on where it ran: seeds come from the task's
configuration, never from the worker.

Threads: a worker of a LocalCluster started here gets ``cores // workers`` threads for TensorFlow and BLAS
(``TOPCAL_THREADS`` and ``OMP_NUM_THREADS`` in its environment; dask's nanny would otherwise set
``OMP_NUM_THREADS=1``). On an external cluster set ``TOPCAL_THREADS`` in the job's environment, or leave it
unset to give each task the worker's own thread count (:func:`topcal.train.backend.task_threads`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from topcal.errors import ConfigError

EXECUTORS = ("iterative", "futures", "dask")


def default_workers() -> int:
    """Cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_executor(executor: str, workers: int, scheduler: str | None) -> int:
    """One-line errors for impossible executor options (shared with the coffea runners); the number of
    workers to start: at most the cores here for a local pool or cluster (:func:`cap_workers`)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"executor: {executor!r} is not one of {EXECUTORS}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers: {workers} must be >= 1")
    if scheduler and executor != "dask":
        raise ConfigError("--scheduler needs --executor dask")
    return workers if scheduler or executor == "iterative" else cap_workers(workers)


def cap_workers(workers: int) -> int:
    """``workers`` local processes, or the cores available here when that is more, with a warning on
    standard error: more processes than cores only add memory and switching."""
    cores = default_workers()
    if workers <= cores:
        return workers
    print(f"topcal: warning: --workers {workers} is more than the {cores} cores here; using {cores}",
          file=sys.stderr, flush=True)
    return cores


class _Deferred:
    """The iterative executor's future: the call runs when its result is first asked for."""

    def __init__(self, fn, args, kwargs):
        self._call, self._done, self._value, self._error = (fn, args, kwargs), False, None, None

    def result(self):
        if not self._done:
            fn, args, kwargs = self._call
            try:
                self._value = fn(*args, **kwargs)
            except BaseException as exc:  # re-raised to every caller of result()
                self._error = exc
            self._done, self._call = True, None
        if self._error is not None:
            raise self._error
        return self._value


@dataclass
class WorkerPool:
    """Submit calls to the chosen executor; ``slots`` calls run at once."""

    executor: str
    slots: int
    pool: object = None      # concurrent.futures.ProcessPoolExecutor or dask.distributed.Client
    scheduler_address: str | None = None

    @property
    def local(self) -> bool:
        """True when calls run in this process (progress bars and TensorFlow's threads are this process's)."""
        return self.executor == "iterative"

    def submit(self, fn: Callable, *args, **kwargs):
        """A future (``.result()``) of ``fn(*args, **kwargs)``."""
        if self.executor == "iterative":
            return _Deferred(fn, args, kwargs)
        if self.executor == "dask":
            return self.pool.submit(fn, *args, pure=False, **kwargs)
        return self.pool.submit(fn, *args, **kwargs)

    def ordered(self, fn: Callable, calls: Iterable[tuple], in_flight: int | None = None) -> Iterator:
        """``fn(*call)`` for every call, yielded in order, with at most ``in_flight`` (2 x slots) pending:
        the memory stays bounded by a few results however many calls there are."""
        in_flight = in_flight or 2 * self.slots
        pending: list = []
        calls = iter(calls)
        exhausted = False
        while True:
            while not exhausted and len(pending) < in_flight:
                try:
                    pending.append(self.submit(fn, *next(calls)))
                except StopIteration:
                    exhausted = True
            if not pending:
                return
            yield pending.pop(0).result()

    def wait_first(self, futures: list) -> None:
        """Block until at least one of ``futures`` is finished."""
        if self.executor == "dask":
            from dask.distributed import wait

            wait(futures, return_when="FIRST_COMPLETED")
        elif self.executor == "futures":
            cf.wait(futures, return_when=cf.FIRST_COMPLETED)


@contextlib.contextmanager
def worker_pool(executor: str = "iterative", workers: int = 1, scheduler: str | None = None) -> Iterator[WorkerPool]:
    """A :class:`WorkerPool`; local processes and clusters are shut down on exit (see the module docstring)."""
    workers = check_executor(executor, workers, scheduler)
    if executor == "iterative":
        yield WorkerPool("iterative", 1)
        return
    if executor == "futures":
        with local_pool(workers) as pool:
            yield WorkerPool("futures", workers, pool)
        return
    with dask_client(workers, scheduler) as client:
        slots = sum(client.nthreads().values()) or workers
        yield WorkerPool("dask", slots, client, client.scheduler.address)


@contextlib.contextmanager
def local_pool(workers: int, initializer: Callable[[], None] | None = None) -> Iterator[cf.ProcessPoolExecutor]:
    """A pool of ``workers`` local processes that die with this one (``initializer``, which must call
    :func:`die_with_parent`, runs first in each; by default that function alone). On an error or
    an interruption (Ctrl-C, SIGTERM) the queued calls are cancelled and the workers terminated at once,
    instead of running every queued call first; on success the pool is shut down normally.

    fork starts workers fast, but only before TensorFlow is loaded: a process forked after TensorFlow ran an
    operation inherits thread pools without their threads and hangs at its first parallel op. So spawn once
    it is loaded; with fork, every worker starts now (the pool would fork at the first submit, by when the
    caller may have run TensorFlow)."""
    fork = "tensorflow" not in sys.modules
    ctx = multiprocessing.get_context("fork" if fork else "spawn")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=initializer or die_with_parent)
    try:
        if fork:
            pool.submit(os.getpid).result()  # forks all the workers
        yield pool
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(timeout=10)
                if process.is_alive():  # still starting up, or stuck: SIGKILL cannot be held off
                    process.kill()
                    process.join(timeout=10)
        raise
    pool.shutdown(wait=True)


def worker_environment(workers: int) -> dict[str, str]:
    """Environment of a local dask worker: its share of the cores for TensorFlow and BLAS."""
    threads = str(max(1, default_workers() // workers))
    return {"TOPCAL_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads}


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None):
    """A dask Client: of the cluster at ``scheduler``, or of a LocalCluster of ``workers`` processes with one
    task slot each and ``cores // workers`` threads each (:func:`worker_environment`)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=worker_environment(workers)) as cluster:
        with Client(cluster) as client:
            yield client


def die_with_parent() -> None:
    """In a worker process: the default SIGTERM action (not the parent's handler, which a forked worker
    inherits), and death by SIGKILL when the parent dies, even by SIGKILL itself (Linux's PR_SET_PDEATHSIG)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which shuts the pool down
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - no glibc
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


@dataclass
class Task:
    """One independent step: ``fn(*args, **kwargs)`` writes ``output``; it runs after the tasks named in
    ``after`` (whose outputs it reads). A task whose ``output`` exists is complete and is not run again
    (every topcal step publishes its output atomically, so an existing output is a whole one). So is a
    task whose output a later step has used up and replaced by ``superseded_by`` (an ensemble member's
    checkpoint, once the ensemble's model is published)."""

    name: str
    output: Path
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    after: tuple[str, ...] = ()
    superseded_by: Path | None = None

    @property
    def complete(self) -> bool:
        return Path(self.output).exists() or (self.superseded_by is not None and Path(self.superseded_by).exists())


def _timed(fn: Callable, args: tuple, kwargs: dict) -> float:
    """Run a task's call; its wall time in seconds, measured where it ran."""
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def run_tasks(tasks: list[Task], pool: WorkerPool, on_done: Callable[[Task, float, str], None] | None = None) -> None:
    """Run every incomplete task of ``tasks`` on ``pool``, each once its ``after`` tasks are complete.

    Independent tasks run at the same time on the pool's slots. ``on_done(task, seconds, "done" | "reused")``
    is called in this process as each task ends. The first failing task's error is raised after the tasks
    already running have ended (their outputs are complete and are reused by the next run).
    """
    names = {t.name for t in tasks}
    for t in tasks:
        missing = set(t.after) - names
        if missing:
            raise ValueError(f"task {t.name}: depends on unknown tasks {sorted(missing)}")
    done: set[str] = set()
    todo: list[Task] = []
    for t in tasks:
        if t.complete:
            done.add(t.name)
            if on_done:
                on_done(t, 0.0, "reused")
        else:
            todo.append(t)
    if pool.local:  # one after the other, in the given order (which respects ``after``)
        for t in todo:
            if not set(t.after) <= done:
                raise ValueError(f"task {t.name}: listed before the tasks it depends on")
            seconds = _timed(t.fn, t.args, t.kwargs)
            done.add(t.name)
            if on_done:
                on_done(t, seconds, "done")
        return
    running: dict = {}  # future -> task
    error: BaseException | None = None
    while todo or running:
        ready = [t for t in todo if set(t.after) <= done] if error is None else []
        for t in ready:
            todo.remove(t)
            running[pool.submit(_timed, t.fn, t.args, t.kwargs)] = t
        if not running:
            if error is not None:
                break
            raise ValueError(f"tasks wait on each other: {', '.join(t.name for t in todo)}")
        pool.wait_first(list(running))
        for future in [f for f in running if f.done()]:
            t = running.pop(future)
            try:
                seconds = future.result()
            except BaseException as exc:  # the first error is raised once the running tasks have ended
                error = error or exc
                continue
            done.add(t.name)
            if on_done:
                on_done(t, seconds, "done")
    if error is not None:
        raise error
