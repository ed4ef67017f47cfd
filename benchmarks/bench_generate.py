"""Benchmark of ``topcal generate``: cost of the detector simulation and ROOT writing against PYTHIA itself.

For the same events (same seeds) in one run, prints events/s of
  1. PYTHIA alone: ``next()`` plus reading the event record into Python,
  2. + detector simulation (and the conversion to DELPHES collections),
  3. + writing the DELPHES-format ROOT file (the full ``generate`` on one core),
  4. the full ``generate`` with 2 worker processes,
and the peak resident memory of a one-core 10k-event ``generate`` (``--memory-events``).

Targets: full chain >= 0.5 x PYTHIA alone; 2 workers >= 1.7 x one worker.

    python benchmarks/bench_generate.py --events 2000
    python benchmarks/bench_generate.py --events 2000 --slim --json generate.json
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from topcal.config import RunConfig, slim_output
from topcal.generate import detector
from topcal.generate.pythia import event_info, final_state, gen_particles, run_pythia
from topcal.generate.run import chunk_seeds, generate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_json import write_json


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
    ap.add_argument("--slim", action="store_true", help="time the files of `topcal generate --slim`")
    ap.add_argument("--memory-events", type=int, default=10000, help="0 skips the memory measurement")
    ap.add_argument("--json", type=Path, default=None, help="write the table's figures and ratios here")
    args = ap.parse_args()
    cfg = RunConfig(seed=7, output=slim_output()) if args.slim else RunConfig(seed=7)
    n = args.events

    t_py, t_det = time_pythia(cfg, n)
    t_full1 = time_generate(cfg, n, 1)
    t_full2 = time_generate(cfg, n, 2)
    rate = {k: n / v for k, v in
            {"pythia": t_py, "detector": t_det, "full1": t_full1, "full2": t_full2}.items()}
    tag = "slim" if args.slim else "full"
    ratios = {"detector_vs_pythia": rate["detector"] / rate["pythia"],
              f"{tag}_1_worker_vs_pythia": rate["full1"] / rate["pythia"],
              f"{tag}_2_vs_1_workers": rate["full2"] / rate["full1"],
              f"{tag}_2_workers_vs_pythia": rate["full2"] / rate["pythia"]}
    out = cfg.output
    print(f"topcal generate benchmark: {n} ttbar events (no ISR), chunk {cfg.chunk_events}, same seeds; output "
          f"{'--slim' if args.slim else 'full'} ({out.compression} {out.compression_level})\n")
    print("| step | events/s | ratio to reference |")
    print("|---|---:|---|")
    print(f"| PYTHIA alone (next + event record), 1 core | {rate['pythia']:.1f} | 1.00 (reference) |")
    print(f"| + detector simulation, 1 core | {rate['detector']:.1f} | {ratios['detector_vs_pythia']:.2f} x PYTHIA |")
    print(f"| + ROOT writing = full generate, 1 worker | {rate['full1']:.1f} | "
          f"{ratios[f'{tag}_1_worker_vs_pythia']:.2f} x PYTHIA (target >= 0.5) |")
    print(f"| full generate, 2 workers | {rate['full2']:.1f} | {ratios[f'{tag}_2_vs_1_workers']:.2f} x 1 worker "
          f"(target >= 1.7) |")
    memory = peak_memory_mb(args.memory_events) if args.memory_events else None
    if memory is not None:
        print(f"\npeak RSS, one-core generate of {args.memory_events} events: {memory:.0f} MB")
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    if args.json:
        write_json(args.json, {"events": n, "output": tag, "compression": f"{out.compression} {out.compression_level}",
                               "events_per_s": rate, "ratios": ratios, "peak_rss_mb": memory})


if __name__ == "__main__":
    main()
