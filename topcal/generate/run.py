"""``topcal generate``: PYTHIA 8 + detector simulation -> one DELPHES-format ROOT file.

Events are made in chunks of ``RunConfig.chunk_events``. Chunk ``k`` draws all its random numbers
(PYTHIA's seed and the detector's numpy generator) from ``SeedSequence([seed, k])``, so the output depends
only on the master seed, the event count and the chunk size: never on the number of worker processes.
Chunks come back from the workers in order and are appended to the file as they arrive, so memory stays
bounded by a few chunks whatever the event count.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

import topcal
from topcal.config import RunConfig
from topcal.console import progress_bar
from topcal.errors import ConfigError
from topcal.generate import detector
from topcal.generate.pythia import compact_truth, event_info, final_state, gen_particles, run_pythia
from topcal.io.atomic import check_output
from topcal.io.delphes_writer import EVENT_FILE, delphes_file
from topcal.workers import worker_pool

PYTHIA_MAX_SEED = 900_000_000


def chunk_seeds(master_seed: int, chunk_index: int) -> tuple[int, np.random.Generator]:
    """PYTHIA seed (1..900000000) and the detector's random generator for one chunk."""
    seq = np.random.SeedSequence([int(master_seed), int(chunk_index)])
    pythia_seed = int(seq.generate_state(1, dtype=np.uint32)[0]) % PYTHIA_MAX_SEED + 1
    det_rng = np.random.default_rng(seq.spawn(1)[0])
    return pythia_seed, det_rng


MAX_EVENTS = 1_000_000_000  # events in one file: far beyond any sample; more is a typo

def generate_chunk(cfg: RunConfig, chunk_index: int, n_events: int) -> dict[str, ak.Array]:
    """All DELPHES collections for chunk ``chunk_index`` of ``n_events`` events."""
    pythia_seed, rng = chunk_seeds(cfg.seed, chunk_index)
    chunk = run_pythia(cfg.generator, pythia_seed, n_events, first_number=chunk_index * cfg.chunk_events)
    particles = gen_particles(chunk)
    collections = {"Event": event_info(chunk),
                   "Particle": compact_truth(particles) if cfg.output.truth == "compact" else particles}
    collections.update(detector.simulate(final_state(chunk), n_events, cfg.detector, rng))
    return {name: collections[name] for name in collections if name in cfg.output.collections or
            name in ("Event", "Particle")}


@dataclass
class GenerateSummary:
    """What a generate run produced."""

    path: Path
    events: int
    cross_section_pb: float
    mean_counts: dict[str, float]
    sum_weights: float

    def __str__(self) -> str:
        counts = ", ".join(f"{k} {v:.1f}" for k, v in self.mean_counts.items())
        return (
            f"wrote {self.events} events to {self.path}\n"
            f"  cross section (PYTHIA estimate, biased sample): {self.cross_section_pb:.4g} pb, "
            f"sum of event weights {self.sum_weights:.4g}\n"
            f"  mean objects per event: {counts}"
        )


def generate(
    out: str | Path,
    n_events: int,
    cfg: RunConfig | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    command: str | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
    pool=None,
) -> GenerateSummary:
    """Generate ``n_events`` events with ``cfg`` into the DELPHES-format ROOT file ``out``.

    Chunks are generated on ``executor`` (:mod:`topcal.workers`): ``iterative`` in this process,
    ``futures`` on ``workers`` local processes (the default when ``workers`` > 1), ``dask`` on a
    LocalCluster of ``workers`` or the cluster at ``scheduler``; or on an open ``pool``. This process
    writes them in order. The file is written under a temporary name and renamed at the end; an existing
    ``out`` is replaced only with ``overwrite``. The events do not depend on where the chunks ran.
    """
    cfg = cfg or RunConfig()
    cfg.validate()
    if int(n_events) != n_events or n_events <= 0:
        raise ConfigError(f"--events: {n_events} must be a positive number of events")
    if workers < 1:
        raise ConfigError(f"--workers: {workers} must be >= 1")
    if executor is None:
        executor = "dask" if scheduler else "futures" if workers > 1 else "iterative"
    if n_events > MAX_EVENTS:
        raise ConfigError(f"--events: {n_events} is more than one file should hold ({MAX_EVENTS}); generate "
                          f"several files with different --seed values instead")
    out = check_output(out, overwrite, kind=EVENT_FILE)
    n_chunks = -(-n_events // cfg.chunk_events)
    sizes = _LazySizes(n_events, cfg.chunk_events, n_chunks)
    metadata = {
        "topcal_config": cfg.to_json(),
        "topcal_version": topcal.__version__,
        "topcal_command": command or shlex.join(sys.argv),
    }
    totals: dict[str, float] = {}
    sum_weights = 0.0
    sigma = 0.0
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(worker_pool(executor, workers, scheduler))
        writer = stack.enter_context(delphes_file(out, metadata, overwrite, cfg.output.compression,
                                                  cfg.output.compression_level))
        bar = stack.enter_context(progress_bar(n_events, "generate", "ev", progress))
        for collections in _chunks(cfg, sizes, pool):
            writer.write(collections)
            for name in sorted(set(collections) - {"Event"}):
                totals[name] = totals.get(name, 0.0) + float(ak.sum(ak.num(collections[name])))
            ev = collections["Event"]
            sum_weights += float(ak.sum(ev.Weight))
            sigma = float(ev.CrossSection[-1, 0])
            bar.update(len(ev))
    return GenerateSummary(
        path=out,
        events=n_events,
        cross_section_pb=sigma,
        mean_counts={k: v / n_events for k, v in totals.items()},
        sum_weights=sum_weights,
    )


class _LazySizes:
    """The event count of every chunk, computed on demand (a list would not fit for absurd event counts)."""

    def __init__(self, n_events: int, chunk: int, n_chunks: int):
        self.n_events, self.chunk, self.n_chunks = n_events, chunk, n_chunks

    def __len__(self) -> int:
        return self.n_chunks

    def __getitem__(self, k: int) -> int:
        return min(self.chunk, self.n_events - k * self.chunk)

    def __iter__(self):
        return (self[k] for k in range(self.n_chunks))


def _chunks(cfg: RunConfig, sizes, pool):
    """Yield the chunks in order, generated on ``pool`` with a few chunks in flight per slot."""
    yield from pool.ordered(generate_chunk, ((cfg, k, n) for k, n in enumerate(sizes)))
