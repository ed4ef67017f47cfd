"""coffea runners on the iterative, futures and dask.distributed executors (shared by process and predict).

``dask`` without a scheduler address starts a ``LocalCluster`` of ``workers`` processes (one task slot
each); with ``scheduler="tcp://host:8786"`` it connects to an existing cluster (for example one started with
dask-jobqueue on a batch system), so the same command scales out (:mod:`topcal.workers`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from coffea import processor

from topcal.errors import ConfigError
from topcal.io.delphes_reader import TopcalDelphesSchema
from topcal.workers import check_executor, dask_client


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

    ``chunksize`` is in events. The dask client and local cluster, if any, are closed on exit.
    """
    check_executor(executor, workers, scheduler)
    if chunksize < 1:
        raise ConfigError(f"chunksize: {chunksize} must be >= 1")
    from topcal.console import show_progress

    progress = show_progress(progress)  # coffea's rich bars only on a terminal
    with contextlib.ExitStack() as stack:
        if not progress:
            stack.enter_context(_quiet_coffea_console())
        if executor == "iterative":
            ex = processor.IterativeExecutor(status=progress, desc=desc)
        elif executor == "futures":
            ex = processor.FuturesExecutor(workers=workers, status=progress, desc=desc)
        else:
            ex = processor.DaskExecutor(client=stack.enter_context(dask_client(workers, scheduler)),
                                        status=progress, desc=desc)
        yield processor.Runner(
            executor=ex, schema=TopcalDelphesSchema, chunksize=chunksize, skipbadfiles=skip_bad_files,
        )


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
