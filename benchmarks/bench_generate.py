"""Benchmark of ``topcal generate``: cost of the detector simulation and ROOT writing against PYTHIA itself.

For the same events (same seeds) in one run, prints events/s of
  1. PYTHIA alone: ``next()`` plus reading the event record into Python,
  2. + detector simulation (and the conversion to DELPHES collections),
  3. + writing the DELPHES-format ROOT file (the full ``generate`` on one core),
  4. the full ``generate`` with 2 worker processes,
and the peak resident memory of a one-core 10k-event ``generate`` (``--memory-events``).

Targets (issue 2): full chain >= 0.5 x PYTHIA alone; 2 workers >= 1.7 x one worker.

    python benchmarks/bench_generate.py --events 2000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from topcal.config import RunConfig
from topcal.generate import detector
from topcal.generate.pythia import event_info, final_state, gen_particles, run_pythia
from topcal.generate.run import chunk_seeds, generate


def _chunks(cfg: RunConfig, n_events: int):
    return [(k, min(cfg.chunk_events, n_events - k * cfg.chunk_events))
            for k in range((n_events + cfg.chunk_events - 1) // cfg.chunk_events)]


def time_pythia(cfg: RunConfig, n_events: int) -> tuple[float, float]:
    """Seconds for PYTHIA alone, and for PYTHIA + detector + conversion (same chunks, same seeds)."""
    t_pythia = t_total = 0.0
    for k, n in _chunks(cfg, n_events):
        seed, rng = chunk_seeds(cfg.seed, k)
        t0 = time.perf_counter()
        chunk = run_pythia(cfg.generator, seed, n)
        t1 = time.perf_counter()
        cols = {"Event": event_info(chunk), "Particle": gen_particles(chunk)}
        cols.update(detector.simulate(final_state(chunk), n, cfg.detector, rng))
        t2 = time.perf_counter()
        t_pythia += t1 - t0
        t_total += t2 - t0
    return t_pythia, t_total


def time_generate(cfg: RunConfig, n_events: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate(Path(tmp) / "bench.root", n_events, cfg, workers=workers, progress=False)
        return time.perf_counter() - t0


def peak_memory_mb(n_events: int) -> float:
    """Peak RSS (MB) of a separate one-core ``topcal generate`` of n_events."""
    with tempfile.TemporaryDirectory() as tmp:
        code = (
            "import resource;from topcal.generate.run import generate;"
            f"generate('{tmp}/m.root', {n_events}, progress=False);"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--memory-events", type=int, default=10000, help="0 skips the memory measurement")
    args = ap.parse_args()
    cfg = RunConfig(seed=7)
    n = args.events

    t_py, t_det = time_pythia(cfg, n)
    t_full1 = time_generate(cfg, n, 1)
    t_full2 = time_generate(cfg, n, 2)
    rate = {k: n / v for k, v in
            {"pythia": t_py, "detector": t_det, "full1": t_full1, "full2": t_full2}.items()}

    print(f"topcal generate benchmark: {n} ttbar events (no ISR), chunk {cfg.chunk_events}, same seeds\n")
    print("| step | events/s | ratio to reference |")
    print("|---|---:|---|")
    print(f"| PYTHIA alone (next + event record), 1 core | {rate['pythia']:.1f} | 1.00 (reference) |")
    print(f"| + detector simulation, 1 core | {rate['detector']:.1f} | {rate['detector'] / rate['pythia']:.2f} x PYTHIA |")
    print(f"| + ROOT writing = full generate, 1 core | {rate['full1']:.1f} | {rate['full1'] / rate['pythia']:.2f} x PYTHIA (target >= 0.5) |")
    print(f"| full generate, 2 workers | {rate['full2']:.1f} | {rate['full2'] / rate['full1']:.2f} x 1 worker (target >= 1.7) |")
    if args.memory_events:
        print(f"\npeak RSS, one-core generate of {args.memory_events} events: {peak_memory_mb(args.memory_events):.0f} MB")
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
