"""coffea runners on the iterative, futures and dask.distributed executors (shared by process and predict).

``dask`` without a scheduler address starts a ``LocalCluster`` of ``workers`` processes (one task slot
each); with ``scheduler="tcp://host:8786"`` it connects to an existing cluster (for example one started with
dask-jobqueue on a batch system), so the same command scales out (:mod:`topcal.workers`).
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator

from coffea import processor

from topcal.errors import ConfigError
from topcal.io.delphes_reader import TopcalDelphesSchema
from topcal.workers import (
    EXECUTORS,  # noqa: F401  (the CLI's choices)
    check_executor,
    dask_client,
    die_with_parent,
    local_pool,
)

# coffea warnings that say nothing a user can act on: an older DELPHES file's repeated branch names (the
# first is read, as DELPHES itself does); shown with ``topcal -v``
QUIET_WARNINGS = ("Found duplicate branch",)


@contextlib.contextmanager
def make_runner(
    executor: str = "iterative",
    workers: int = 1,
    scheduler: str | None = None,
    chunksize: int = 20_000,
    progress: bool = True,
    skip_bad_files: bool = False,
    desc: str = "Processing",
) -> Iterator[processor.Runner]:
    """A ``coffea.processor.Runner`` reading DELPHES trees with :class:`TopcalDelphesSchema`.

    ``chunksize`` is in events. The dask client and local cluster, if any, are closed on exit. The futures
    executor runs on :func:`topcal.workers.local_pool`: its workers die with this process, and an
    interruption cancels the queued chunks at once. A local pool or cluster has at most one worker per core.
    A failed chunk is not retried (coffea retries three times by default): the inputs are files, whose damaged
    data fails the same way every time.
    """
    workers = check_executor(executor, workers, scheduler)
    _hash_paths_as_utf8()
    if chunksize < 1:
        raise ConfigError(f"chunksize: {chunksize} must be >= 1")
    from topcal.console import show_progress

    progress = show_progress(progress)  # coffea's rich bars only on a terminal
    with contextlib.ExitStack() as stack:
        if not progress:
            stack.enter_context(_quiet_coffea_console())
        stack.enter_context(warnings.catch_warnings())
        quiet_coffea_warnings()
        if executor == "iterative":
            ex = processor.IterativeExecutor(status=progress, desc=desc, retries=0)
        elif executor == "futures":
            ex = processor.FuturesExecutor(pool=stack.enter_context(local_pool(workers, _coffea_worker)),
                                           workers=workers, status=progress, desc=desc, retries=0)
        else:
            ex = processor.DaskExecutor(client=stack.enter_context(dask_client(workers, scheduler)),
                                        status=progress, desc=desc, retries=0)
        yield processor.Runner(
            executor=ex, schema=TopcalDelphesSchema, chunksize=chunksize, skipbadfiles=skip_bad_files,
        )


def quiet_coffea_warnings() -> None:
    """Hide :data:`QUIET_WARNINGS` in this process (unless ``topcal -v``)."""
    from topcal.console import verbose

    if not verbose():
        for message in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message)


def _coffea_worker() -> None:
    """The start of a futures worker: it dies with its parent and hides :data:`QUIET_WARNINGS`."""
    die_with_parent()
    quiet_coffea_warnings()


def _utf8_hash(items) -> int:
    """coffea's work-item hash (``coffea.util._hash``) of the UTF-8 bytes: the same number for ASCII."""
    return int(hashlib.md5(";".join(str(x) for x in items).encode("utf-8")).hexdigest()[:16], base=16)


def _hash_paths_as_utf8() -> None:
    """coffea hashes its work items' file names as ASCII bytes, and fails on a path with any other character
    (``UnicodeEncodeError``): its executors get :func:`_utf8_hash` instead, identical for ASCII paths."""
    from coffea.processor import executor as coffea_executor

    coffea_executor._hash = _utf8_hash


@contextlib.contextmanager
def _quiet_coffea_console():
    """coffea's executors draw their rich progress bar even with ``status=False``: silence its console."""
    from coffea.util import coffea_console

    before = coffea_console.quiet
    coffea_console.quiet = True
    try:
        yield
    finally:
        coffea_console.quiet = before
