"""Benchmark of ``topcal process`` against the floor: reading the needed branches with uproot plus fastjet.

The input is the embedded sample repeated ``--copies`` times into one DELPHES-format file (zlib), so the
events are real topcal events. In one run it prints events/s of
  1. the floor: uproot reads the energy-flow and truth branches, awkward builds (px, py, pz, E), fastjet
     clusters anti-kT R = 1.2 and returns jets and constituents (no matching, no output);
  2. the whole processor (``topcal process``, iterative executor, one core): reading through coffea
     NanoEvents, clustering, truth matching, padding, histograms, Parquet parts, flattening, manifest;
  3. the processor on dask.distributed with 1 and with 2 single-threaded workers of a running cluster
     (``--scheduler``), and with the LocalCluster that ``topcal process`` starts itself;
and the peak resident memory of one worker processing one chunk of ``--memory-events`` events
(the sample is repeated until it has that many).

Targets: processor >= 0.5 x the floor's rate; 2 dask workers >= 1.7 x one.

    python benchmarks/bench_process.py --copies 10 --memory-events 100000 --json process.json
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import fastjet
import numpy as np
import uproot
from dask.distributed import LocalCluster

from topcal.config import ProcessConfig
from topcal.data import EMBEDDED_SAMPLE
from topcal.io.delphes_writer import delphes_file
from topcal.process.run import process

SAMPLE = EMBEDDED_SAMPLE
COLLECTIONS = ("Event", "Particle", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron")
FLOOR_BRANCHES = {
    "EFlowTrack": ("PT", "Eta", "Phi", "PID", "Mass"),
    "EFlowPhoton": ("ET", "Eta", "Phi"),
    "EFlowNeutralHadron": ("ET", "Eta", "Phi"),
    "Particle": ("PID", "D1", "D2", "PT", "Eta", "Phi", "Mass"),
    "Event": ("Weight",),
}


def make_input(path: Path, copies: int) -> int:
    """The embedded sample written ``copies`` times into one file; returns the event count."""
    tree = uproot.open(SAMPLE)["Delphes"]
    cols = {}
    for name in COLLECTIONS:
        leaves = [k for k in tree.keys() if k.startswith(f"{name}.")]
        arr = tree.arrays(leaves)
        cols[name] = ak.zip({k.split(".", 1)[1]: arr[k] for k in leaves})
    with delphes_file(path, {}, overwrite=True, compression="zlib", level=1) as writer:
        for _ in range(copies):
            writer.write(cols)
    return copies * tree.num_entries


def floor(path: Path) -> int:
    """Read the needed branches with uproot and cluster with fastjet; returns the number of jets."""
    tree = uproot.open(path)["Delphes"]
    arr = tree.arrays([f"{c}.{f}" for c, fs in FLOOR_BRANCHES.items() for f in fs])
    parts = []
    trk_pt, trk_eta, trk_phi = arr["EFlowTrack.PT"], arr["EFlowTrack.Eta"], arr["EFlowTrack.Phi"]
    keep = (abs(arr["EFlowTrack.PID"]) != 11) & (abs(arr["EFlowTrack.PID"]) != 13) & (trk_pt > 0)
    trk_e = np.sqrt((trk_pt * np.cosh(trk_eta)) ** 2 + arr["EFlowTrack.Mass"] ** 2)
    parts.append((trk_pt[keep], trk_eta[keep], trk_phi[keep], trk_e[keep]))
    for c in ("EFlowPhoton", "EFlowNeutralHadron"):
        et, eta, phi = arr[f"{c}.ET"], arr[f"{c}.Eta"], arr[f"{c}.Phi"]
        parts.append((et, eta, phi, et * np.cosh(eta)))
    p4 = ak.concatenate([ak.zip({"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "E": e})
                         for pt, eta, phi, e in parts], axis=1)
    p4 = ak.values_astype(p4, np.float64)
    seq = fastjet.ClusterSequence(p4, fastjet.JetDefinition(fastjet.antikt_algorithm, 1.2))
    jets = seq.inclusive_jets(min_pt=100.0)
    seq.constituents(min_pt=100.0)
    return int(ak.sum(ak.num(jets)))


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def run_process(path: Path, out: Path, **kwargs) -> None:
    process([path], out, ProcessConfig(), progress=False, figures=False, overwrite=True, **kwargs)


def peak_memory_mb(path: Path, chunk: int) -> float:
    """Peak RSS (MB) of a separate process running the processor on one chunk of ``chunk`` events."""
    code = (
        "import sys; from pathlib import Path; from topcal.process.run import process; "
        f"process([Path({str(path)!r})], Path(sys.argv[1]), chunksize={chunk}, progress=False, figures=False)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run([sys.executable, "-c", code, str(Path(tmp) / "ds")], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(before, after) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=10, help="times the 2000-event sample is repeated [10]")
    ap.add_argument("--memory-events", type=int, default=100_000, help="events in the memory test's chunk")
    ap.add_argument("--json", type=Path, default=None, help="write the table's figures and ratios here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "bench.root"
        n = make_input(path, args.copies)
        floor(path)  # warm the page cache and the libraries
        t_floor = timed(floor, path)
        t_proc = timed(run_process, path, tmp / "ds", chunksize=n)
        chunk = max(1, n // 8)
        t_dask = {}
        for workers in (1, 2):
            # started outside the timed region, as a batch cluster would be, then used through --scheduler
            with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster:
                run_process(path, tmp / "ds", executor="dask", scheduler=cluster.scheduler_address, chunksize=chunk)
                t_dask[workers] = timed(run_process, path, tmp / "ds", executor="dask",
                                        scheduler=cluster.scheduler_address, chunksize=chunk)
        t_local2 = timed(run_process, path, tmp / "ds", executor="dask", workers=2, chunksize=chunk)

        big = tmp / "memory.root"
        n_big = make_input(big, max(1, -(-args.memory_events // 2000)))
        memory = peak_memory_mb(big, n_big)

    rows = [
        ("floor: uproot read + fastjet, 1 core", n / t_floor, "1.00"),
        ("topcal process, iterative, 1 core", n / t_proc, f"{t_floor / t_proc:.2f} x floor (target >= 0.5)"),
        ("topcal process, dask, 1 worker", n / t_dask[1], "1.00"),
        ("topcal process, dask, 2 workers", n / t_dask[2], f"{t_dask[1] / t_dask[2]:.2f} x 1 worker (target >= 1.7)"),
        ("... 2 workers, LocalCluster start included", n / t_local2, f"{t_dask[1] / t_local2:.2f} x 1 worker"),
    ]
    print(f"{n} events ({args.copies} x the embedded sample); dask chunks of {chunk} events\n")
    print(f"| {'step':<40s} | {'events/s':>9s} | ratio |")
    print(f"|{'-' * 42}|{'-' * 11}|---|")
    for name, rate, ratio in rows:
        print(f"| {name:<40s} | {rate:9.1f} | {ratio} |")
    print(f"\npeak RSS of one worker, one chunk of {n_big} events: {memory:.0f} MB")
    if args.json:
        from bench_json import write_json

        write_json(args.json, {"events": n, "events_per_s": {"floor": n / t_floor, "process": n / t_proc,
                                                             "dask_1": n / t_dask[1], "dask_2": n / t_dask[2]},
                               "ratios": {"process_vs_floor": t_floor / t_proc,
                                          "dask_2_vs_1_workers": t_dask[1] / t_dask[2],
                                          "dask_2_with_start_vs_1_worker": t_dask[1] / t_local2},
                               "peak_rss_mb": memory, "memory_events": n_big})


if __name__ == "__main__":
    main()
