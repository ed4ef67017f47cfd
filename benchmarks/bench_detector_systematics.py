"""Benchmark of the detector variations: closure against shifted samples, the error of the cheap shift
evaluation, and the cost of ``topcal predict`` with and without the variations.

1. A model: topcal's default network trained for ``--epochs`` on the embedded sample (2000 ttbar events).
2. Fresh samples of ``--events`` ttbar events, seed ``--seed``: the nominal one and, per source, one with
   that source's ``[detector.energy_flow]`` scale at 1 + its default size (same seed: the same events).
3. Closure per source and 100 GeV bin of pT,j (:func:`topcal.predict.detector_closure.closure_table`):
   the mean ptPred change of the shifted sample against the nominal sample's Up variation.
4. The shift of ptPred from ``draws`` = 1, 2, 5, 10 weight draws (paired with the nominal on the same
   draws) against the full evaluation (all T draws): RMS and largest difference per source, GeV.
5. Cost: CPU seconds (the machine may be shared: wall times count the other users too) of ``topcal
   predict`` (library call, one core, warm, best of two) on the nominal sample, T samples, with the
   default sources and with ``--no-systematics``; and of the Calibrator alone.

    python benchmarks/bench_detector_systematics.py --seed 27 --events 2000 --epochs 10 --json detsys.json --figures DIR
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_json import write_json  # noqa: E402
from bench_process import SAMPLE  # noqa: E402

import topcal  # noqa: E402
from topcal.config import ProcessConfig, RunConfig, TrainConfig  # noqa: E402
from topcal.generate.run import generate  # noqa: E402
from topcal.io.delphes_reader import open_events  # noqa: E402
from topcal.predict import detector_systematics as dsys  # noqa: E402
from topcal.predict.detector_closure import closure_table  # noqa: E402
from topcal.predict.run import predict  # noqa: E402
from topcal.process.run import process  # noqa: E402

CARD_KEYS = {"trackPtScale": "track_pt_scale", "photonEnergyScale": "photon_energy_scale",
             "neutralHadronEnergyScale": "neutral_hadron_energy_scale"}
DRAWS = (1, 2, 5, 10)
REPEATS = 2  # cost timings: the best of two


def timed(fn, *a, **k):
    t0 = time.perf_counter()
    result = fn(*a, **k)
    return time.perf_counter() - t0, result


def cpu_timed(fn, *a, **k):
    """CPU seconds of this process (all threads) spent in ``fn``, and its result: on a shared machine the
    cost, where the wall time also counts the other users' load."""
    t0 = time.process_time()
    result = fn(*a, **k)
    return time.process_time() - t0, result


def best_of(repeats: int, fn, *a, **k):
    """The shortest of ``repeats`` CPU timings (:func:`cpu_timed`) and the last result."""
    runs = [cpu_timed(fn, *a, **k) for _ in range(repeats)]
    return min(t for t, _ in runs), runs[-1][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=27)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=50, help="weight samples T")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--figures", type=Path, default=None, help="directory for the two figures")
    args = ap.parse_args()
    start = time.perf_counter()
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # one core: the cost ratio on the same footing
    from topcal.train.fit import train

    figures: dict = {"seed": args.seed, "events": args.events, "samples": args.samples,
                     "sizes": dict(dsys.DEFAULT_SIZES), "draws_default": dsys.DEFAULT_DRAWS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t_train, _ = timed(lambda: (process([SAMPLE], tmp / "jets", ProcessConfig(flatten=False), progress=False,
                                            figures=False),
                                    train(tmp / "jets", tmp / "model", TrainConfig(epochs=args.epochs),
                                          progress=False)))
        files = {"nominal": tmp / "nominal.root"}
        t_gen = 0.0
        for name in ("nominal", *dsys.SOURCES):
            cfg = RunConfig(seed=args.seed)
            if name != "nominal":
                setattr(cfg.detector.energy_flow, CARD_KEYS[name], 1.0 + dsys.DEFAULT_SIZES[name])
                files[name] = tmp / f"{name}.root"
            t, _ = timed(generate, files[name], args.events, cfg, workers=1, progress=False)
            t_gen += t
        figures.update(train_s=round(t_train, 1), generate_s=round(t_gen, 1))

        model = tmp / "model"
        cal = topcal.Calibrator(model, samples=args.samples, seed=args.seed)
        plain = topcal.Calibrator(model, samples=args.samples, seed=args.seed, systematics=False)
        events = {name: open_events(path) for name, path in files.items()}
        import awkward as ak

        figures["objects_per_event"] = {name: {c: float(ak.mean(ak.num(ev[c]))) for c in dsys.ORIGINS if c != "Tower"}
                                        for name, ev in events.items()}
        plain.flat(events["nominal"])  # TensorFlow start-up outside the timing
        t_plain = best_of(REPEATS, plain.flat, events["nominal"])[0]
        t_sys, nominal = best_of(REPEATS, cal.flat, events["nominal"])
        figures["calibrator_cpu_s"] = {"without": round(t_plain, 2), "with": round(t_sys, 2),
                                   "ratio": round(t_sys / t_plain, 2)}

        # closure
        closure = {}
        for source in dsys.SOURCES:
            closure[source] = closure_table(nominal, plain.flat(events[source]), source)
        figures["closure"] = closure

        # the cheap shift against the full evaluation
        from topcal.predict.calibrator import cached_model

        _, table, _ = nominal
        network_jets, sums = _network_jets(events["nominal"], cal)
        m = cached_model(cal.model_dir)
        full_t, full = cpu_timed(dsys.variations, m, network_jets, table["ptPred"], dsys.DEFAULT_SIZES, args.seed,
                             draws=args.samples, sums=sums)
        use = np.asarray(table["inTrainingRange"], bool)
        accuracy = {"full": {"cpu_s": round(full_t, 2)}}
        for draws in DRAWS:
            t, cheap = cpu_timed(dsys.variations, m, network_jets, table["ptPred"], dsys.DEFAULT_SIZES, args.seed,
                                 draws=draws, sums=sums)
            row = {"cpu_s": round(t, 2)}
            for source in dsys.SOURCES:
                key = f"ptPred_{source}Up"
                diff = (cheap[key] - full[key])[use]
                shift = (full[key] - table["ptPred"])[use]
                row[source] = {"rms_gev": float(np.sqrt(np.mean(diff**2))), "max_gev": float(np.abs(diff).max()),
                               "mean_gev": float(diff.mean()), "shift_rms_gev": float(np.sqrt(np.mean(shift**2)))}
            accuracy[draws] = row
        figures["cheap_vs_full"] = accuracy

        # topcal predict, with and without the variations
        predict(model, [files["nominal"]], tmp / "warm", samples=2, progress=False)
        t0, _ = best_of(REPEATS, predict, model, [files["nominal"]], tmp / "f0", samples=args.samples,
                        seed=args.seed, progress=False, systematics=False, overwrite=True)
        t1, summary = best_of(REPEATS, predict, model, [files["nominal"]], tmp / "f1", samples=args.samples,
                              seed=args.seed, progress=False, overwrite=True)
        figures["predict_cpu_s"] = {"without": round(t0, 2), "with": round(t1, 2), "ratio": round(t1 / t0, 2),
                                "jets": summary.jets}

        if args.figures:
            from topcal.plot.detector_figures import closure as closure_figure
            from topcal.plot.detector_figures import variation_shifts

            variation_shifts(table, dsys.DEFAULT_SIZES, args.figures)
            closure_figure(closure, dsys.DEFAULT_SIZES, args.figures)
    figures["wall_s"] = round(time.perf_counter() - start, 1)
    _print(figures)
    if args.json:
        write_json(args.json, figures)


def _network_jets(events, cal):
    """The nominal jets as the Calibrator gives them to the network, and their origin sums."""
    import awkward as ak

    from topcal.predict.calibrator import cached_model
    from topcal.process.fatjets import cluster, eflow_inputs, padded_jets
    from topcal.train.inputs import Jets

    cfg = cal.config
    jets, constituents = cluster(eflow_inputs(events, use_towers=cfg.use_towers, leptons=cfg.jet_leptons),
                                 cfg.jet_radius, cfg.cluster_pt_min_gev)
    flat, per_jet = ak.flatten(jets), ak.flatten(constituents, axis=1)
    x, info = padded_jets(per_jet, cached_model(cal.model_dir).n_constituents, cfg.input_scale_gev)
    kin = [ak.to_numpy(getattr(flat, k)) for k in ("rho", "eta", "phi", "tau")]
    return Jets(x, *kin, ak.to_numpy(ak.num(per_jet)), cfg.input_scale_gev, **info), dsys.origin_sums(per_jet)


def _print(f: dict) -> None:
    print(f"seed {f['seed']}, {f['events']} events per sample, T = {f['samples']}; sizes {f['sizes']}")
    print(f"model trained in {f['train_s']} s; 4 samples generated in {f['generate_s']} s")
    print("energy-flow objects per event: " + "; ".join(
        f"{name} " + ", ".join(f"{c} {v:.2f}" for c, v in counts.items())
        for name, counts in f["objects_per_event"].items()))
    print("\nclosure: mean ptPred change (GeV), shifted sample vs nominal Up variation, per pT,j bin")
    print(f"{'source':<26s}{'bin':>10s}{'jets':>6s}{'sample':>14s}{'variation':>10s}{'ratio':>7s}"
          f"{'pT,j sample':>12s}{'pT,j var':>10s}  agrees")
    for source, rows in f["closure"].items():
        for r in rows:
            ratio = r["sample"] / r["variation"] if r["variation"] else float("nan")
            print(f"{source:<26s}{r['pt_low']:5.0f}-{r['pt_high']:<4.0f}{r['jets']:6d}"
                  f"{r['sample']:8.2f} +-{r['sample_error']:4.2f}{r['variation']:10.2f}{ratio:7.2f}"
                  f"{r['pt_sample']:12.2f}{r['pt_variation']:10.2f}  {r['agrees']}")
    print("\nshift of ptPred from few draws vs all T draws (jets in range, CPU seconds): RMS / max / mean "
          "difference, GeV (RMS of the full shift in brackets)")
    for draws, row in f["cheap_vs_full"].items():
        if draws == "full":
            print(f"  all {f['samples']} draws: {row['cpu_s']} s")
            continue
        parts = [f"{s}: {row[s]['rms_gev']:.3f} / {row[s]['max_gev']:.2f} / {row[s]['mean_gev']:+.3f} "
                 f"({row[s]['shift_rms_gev']:.2f})" for s in dsys.SOURCES]
        print(f"  {draws:>2d} draws ({row['cpu_s']} s): " + "; ".join(parts))
    c, p = f["calibrator_cpu_s"], f["predict_cpu_s"]
    print(f"\nwhole benchmark: {f['wall_s']} s wall")
    print(f"\nCPU seconds, Calibrator.flat on the nominal sample: {c['without']} without, {c['with']} with the "
          f"variations (x{c['ratio']})")
    print(f"CPU seconds, topcal predict on the nominal sample ({p['jets']} jets): {p['without']} without, "
          f"{p['with']} with (x{p['ratio']})")


if __name__ == "__main__":
    main()
