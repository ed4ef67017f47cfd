"""Benchmark of the detector variations' fixed subjet members against clustering the shifted copies again.

A shifted copy of a jet (:mod:`topcal.predict.detector_systematics`) keeps the nominal jet's
exclusive-kT subjet members and the constituents the network reads; the alternative clusters every shifted
copy again with fastjet (``variations(..., recluster=True)``). On the fat jets of ``EVENTS`` (a DELPHES
file) and a trained model, with the default sources and draws, per source and direction over the jets in
the training range (GeV): the RMS of the shift ptPred_<source><dir> - ptPred (reclustered), the per-jet
difference fixed - reclustered (RMS, 99% quantile of its size, largest, share of jets above 1 GeV, mean),
and the largest mean difference in a 100 GeV bin of pT,j, with the mean shift in that bin; and the CPU
seconds of the variations both ways (one core, the best of two).

    python benchmarks/bench_variation_subjets.py MODEL EVENTS.root --samples 50 --seed 0 --json subjets.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detector_systematics import _network_jets, best_of  # noqa: E402
from bench_json import write_json  # noqa: E402

import topcal  # noqa: E402
from topcal.io.delphes_reader import open_events  # noqa: E402
from topcal.predict import detector_systematics as dsys  # noqa: E402
from topcal.predict.calibrator import cached_model  # noqa: E402

BINS = np.arange(400.0, 1001.0, 100.0)


def compare(fixed: np.ndarray, again: np.ndarray, nominal: np.ndarray, pt: np.ndarray) -> dict:
    """The differences of one variation (module docstring), GeV."""
    diff, shift = fixed - again, again - nominal
    size = np.abs(diff)
    row = {"shift_rms": np.sqrt(np.mean(shift**2)), "shift_mean": shift.mean(), "rms": np.sqrt(np.mean(diff**2)),
           "q99": np.quantile(size, 0.99), "max": size.max(), "above_1gev": np.mean(size > 1.0), "mean": diff.mean()}
    which = np.digitize(pt, BINS) - 1
    worst = max((k for k in range(len(BINS) - 1) if np.any(which == k)),
                key=lambda k: abs(diff[which == k].mean()))
    row.update(bin_low=BINS[worst], bin_mean=diff[which == worst].mean(), bin_shift=shift[which == worst].mean())
    return {k: float(v) for k, v in row.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("events", type=Path)
    ap.add_argument("--samples", type=int, default=50, help="weight samples T of the nominal prediction")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for the CPU seconds

    cal = topcal.Calibrator(args.model, samples=args.samples, seed=args.seed, systematics=False)
    events = open_events(args.events)
    _, table, _ = cal.flat(events)
    jets, sums = _network_jets(events, cal)
    model = cached_model(cal.model_dir)
    run = {}
    for name, recluster in (("fixed", False), ("reclustered", True)):
        run[name] = best_of(2, dsys.variations, model, jets, table["ptPred"], dsys.DEFAULT_SIZES, args.seed,
                              sums=sums, recluster=recluster)
    use = np.asarray(table["inTrainingRange"], bool)
    rows = {f"{source}{d}": compare(*(run[k][1][f"ptPred_{source}{d}"][use] for k in ("fixed", "reclustered")),
                                    table["ptPred"][use], table["pt"][use])
            for source in dsys.SOURCES for d in dsys.DIRECTIONS}
    figures = {"events": str(args.events), "jets": int(use.sum()), "samples": args.samples, "seed": args.seed,
               "draws": dsys.DEFAULT_DRAWS, "cpu_s": {k: round(v[0], 2) for k, v in run.items()}, "variations": rows}

    print(f"{args.events}: {use.sum()} jets in the training range, T = {args.samples}, seed {args.seed}, "
          f"{dsys.DEFAULT_DRAWS} draws for the shifts; GeV\n")
    print("| variation | shift RMS | difference RMS | 99% | largest | > 1 GeV | mean | worst bin: mean (shift) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for key, r in rows.items():
        print(f"| {key} | {r['shift_rms']:.2f} | {r['rms']:.3f} | {r['q99']:.3f} | {r['max']:.1f} | "
              f"{100 * r['above_1gev']:.2f}% | {r['mean']:+.4f} | {r['bin_low']:.0f}-{r['bin_low'] + 100:.0f}: "
              f"{r['bin_mean']:+.3f} ({r['bin_shift']:+.2f}) |")
    c = figures["cpu_s"]
    print(f"\nCPU seconds of the variations: {c['fixed']} with the fixed members, {c['reclustered']} clustered again "
          f"(x{c['reclustered'] / c['fixed']:.2f})")
    if args.json:
        write_json(args.json, figures)


if __name__ == "__main__":
    main()
