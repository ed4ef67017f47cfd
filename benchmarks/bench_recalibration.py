"""Width recalibrations compared on trained models: raw, one global factor, factors per pT,j.

For each model directory (trained by ``topcal train`` or ``bench_physics.py --workdir`` on ``--dataset``):

  1. its calibration jets are the ones its training used (:func:`topcal.train.fit.calibration_rows`: jets
     apart from training, or the validation jets topped up with training jets to 2,000), predicted raw
     with the training's posterior (T = 50, the training seed), and each jet's needed stretch computed
     (:func:`topcal.train.recalibration.needed_stretch`);
  2. the recalibrations are fitted on those jets only: ``raw`` (factor 1), ``global`` (one factor, the 68%
     quantile of the needs), ``global val`` (the same on the validation jets alone, when they are among
     the calibration jets), ``bins K`` (one factor
     per pT,j bin of equal numbers of calibration jets, at the bins' median pT,j, linear in between) and
     ``edges E`` (factors for the E GeV next to each end of the pT,j window and for its middle,
     :func:`topcal.train.recalibration.edge_aware_calibration`);
  3. each is applied to the dataset's test jets (its last 20%, never trained on; T = 50, seed 1, as
     ``bench_physics.py``) through :func:`topcal.train.recalibration.stretch` and the same summaries as
     prediction, and the table gives the overall 68% and 95% coverage, sqrt(MSE) (the recalibration leaves
     the means alone), the 68% coverage per 40 GeV pT,j bin, how many of the 15 bins lie outside
     0.63..0.73 and chi2/15 = mean over the bins of ((coverage - 0.68) / binomial error)^2 (about 1 for a
     calibration whose per-bin deviations are binomial noise alone); with ``--unseen`` also on the trainable
     jets that neither the model's training nor its calibration used (at 2k training jets of a large
     dataset, many more than the test jets: an independent check drawn like the calibration jets).

    python benchmarks/bench_recalibration.py --dataset jets/ work/b2k/topcal_default work/b2k_2/topcal_default \\
        --json recalibration.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from topcal.train.metrics import PT_BINS_GEV

TARGET = (0.63, 0.73)


def variants(cal_pt: np.ndarray, need: np.ndarray, window: tuple[float, float], bins: list[int],
             edges: list[float]) -> dict:
    from topcal.train.recalibration import (
        WidthCalibration,
        calibration_in_bins,
        edge_aware_calibration,
        global_calibration,
    )

    out = {"raw": WidthCalibration((0.0,), (1.0,)), "global": global_calibration(need)}
    out.update({f"bins {k}": calibration_in_bins(cal_pt, need, k) for k in bins})
    out.update({f"edges {e:g}": edge_aware_calibration(cal_pt, need, window, e) for e in edges})
    return out


def figures(pt_jet: np.ndarray, truth: np.ndarray, pred: dict) -> dict:
    inside = (truth >= pred["low"]) & (truth <= pred["high"])
    edges = np.asarray(PT_BINS_GEV)
    which = np.digitize(pt_jet, edges) - 1
    n = np.bincount(which[(which >= 0) & (which < len(edges) - 1)], minlength=len(edges) - 1)
    per = np.array([inside[which == i].mean() if n[i] else np.nan for i in range(len(edges) - 1)])
    err = np.sqrt(0.68 * 0.32 / np.maximum(n, 1))
    ok = n > 0
    return {"coverage68": float(inside.mean()),
            "coverage95": float(np.mean((truth >= pred["low95"]) & (truth <= pred["high95"]))),
            "rmse_gev": float(np.sqrt(np.mean((truth - pred["mean"]) ** 2))),
            "coverage68_bins": [None if np.isnan(c) else float(c) for c in per],
            "binomial_err": [float(e) for e in err],
            "bins_outside": int(np.sum(ok & ((per < TARGET[0]) | (per > TARGET[1])))),
            "chi2_per_bin": float(np.mean(((per[ok] - 0.68) / err[ok]) ** 2))}


def one_model(model_dir: Path, dataset: Path, samples: int, bins: list[int], edges: list[float],
              unseen: bool) -> dict:
    from topcal.io.dataset import open_dataset
    from topcal.train.data import load_rows, split_rows
    from topcal.train.fit import _plan_subsamples, calibration_rows
    from topcal.train.likelihood import summarize
    from topcal.train.model import load_model
    from topcal.train.recalibration import global_calibration, needed_stretch, stretch

    t0 = time.perf_counter()
    model = load_model(model_dir)
    cfg = model.config
    ds = open_dataset(dataset)
    rows = calibration_rows(dataset, cfg)  # the validation jets first, then the training jets topping them up
    cal, _ = load_rows(ds, np.sort(rows))
    window = model.label_window
    need = needed_stretch(*model.sample(cal.jets, samples, cfg.seed, raw=True), cal.pt_truth, window)
    validation = np.isin(cal.rows, rows[:model.meta["calibration"]["validation_jets"]])
    validity = model.meta.get("validity", {})
    jet_window = tuple(float(validity.get(k) or np.inf) for k in ("jet_pt_min_gev", "jet_pt_max_gev"))
    trainable, test = split_rows(ds.n_jets, cfg.test_fraction)
    sets = {"test": test}
    if unseen:  # trainable jets that neither the training nor the calibration used
        used = np.concatenate([*_plan_subsamples(ds, dataset, cfg).subsamples, rows])
        sets["unseen"] = np.setdiff1d(trainable, used)
    out = {"model": str(model_dir), "seed": cfg.seed, "train_size": cfg.train_size, "calibration_jets": len(need),
           "validation_jets": int(validation.sum()),
           "raw_coverage68_validation": float(np.mean(need[validation] <= 1)) if validation.any() else None,
           "raw_coverage68_topped_up": float(np.mean(need[~validation] <= 1)) if (~validation).any() else None}
    fitted = variants(cal.pt_jet, need, jet_window, bins, edges)
    if validation.any():  # none when the calibration jets were kept apart from training
        fitted["global val"] = global_calibration(need[validation])  # the validation jets alone
    for set_name, set_rows in sets.items():
        arrays, _ = load_rows(ds, set_rows)
        mixture = model.sample(arrays.jets, samples, 1, raw=True)
        out[f"{set_name}_jets"] = len(set_rows)
        out[set_name] = {}
        for name, calibration in fitted.items():
            pred = summarize(*stretch(*mixture, calibration(arrays.pt_jet)), window=window,
                             moments_window=model.moments_window)
            out[set_name][name] = {"pt_jet_gev": list(calibration.pt_jet_gev), "factor": list(calibration.factors),
                                   **figures(arrays.pt_jet, arrays.pt_truth, pred)}
    out["seconds"] = time.perf_counter() - t0
    return out


def print_table(result: dict, set_name: str) -> None:
    v = result[set_name]
    print(f"\n{result['model']} (seed {result['seed']}, {result['train_size']} training jets): "
          f"{result['calibration_jets']} calibration jets, {result[set_name + '_jets']} {set_name} jets")
    topped = result["raw_coverage68_topped_up"]
    if result["raw_coverage68_validation"] is None:
        print(f"raw 68% coverage of the calibration jets (apart from training): {topped:.3f}")
    else:
        print(f"raw 68% coverage of the calibration jets: {result['raw_coverage68_validation']:.3f} on the "
              f"{result['validation_jets']} validation jets"
              + (f", {topped:.3f} on the training jets topping them up" if topped is not None else ""))
    print(f"{'variant':<10s} {'cov68':>6s} {'cov95':>6s} {'rmse':>6s} {'out':>3s} {'chi2/15':>7s} | 68% coverage per "
          f"40 GeV pT,j bin {PT_BINS_GEV[0]:.0f}..{PT_BINS_GEV[-1]:.0f}")
    for name, r in v.items():
        per = " ".join(f"{c:.3f}" if c is not None else "  -  " for c in r["coverage68_bins"])
        print(f"{name:<10s} {r['coverage68']:6.3f} {r['coverage95']:6.3f} {r['rmse_gev']:6.1f} {r['bins_outside']:3d} "
              f"{r['chi2_per_bin']:7.2f} | {per}")
    err = next(iter(v.values()))["binomial_err"]
    print(f"{'+- binom.':<41s} | " + " ".join(f"{e:.3f}" for e in err))
    for name, r in v.items():
        if len(r["factor"]) > 1 or name.startswith("global"):
            print(f"  {name}: factor " + ", ".join(f"{f:.3f}" + (f" at {x:.0f}" if len(r["factor"]) > 1 else "")
                                             for x, f in zip(r["pt_jet_gev"], r["factor"])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+", help="Model directories trained on --dataset.")
    ap.add_argument("--dataset", type=Path, required=True, help="The dataset the models were trained on.")
    ap.add_argument("--samples", type=int, default=50, help="Weight samples per jet.")
    ap.add_argument("--bins", type=int, nargs="*", default=[3, 5], help="Equal-count pT,j bins to compare.")
    ap.add_argument("--edges", type=float, nargs="*", default=[40, 60, 80], help="Edge zones (GeV) to compare.")
    ap.add_argument("--unseen", action="store_true",
                    help="Also evaluate on the trainable jets that neither the training nor the calibration used.")
    ap.add_argument("--json", type=Path, default=None, help="Write the figures to this JSON file.")
    args = ap.parse_args()
    results = []
    for model_dir in args.models:
        results.append(one_model(model_dir, args.dataset, args.samples, args.bins, args.edges, args.unseen))
        for set_name in ("test", "unseen")[:1 + args.unseen]:
            print_table(results[-1], set_name)
    for set_name in ("test", "unseen")[:1 + args.unseen]:
        print(f"\n{set_name} jets, over the {len(results)} models: overall 68% coverage, bins outside 0.63..0.73 "
              f"(sum) and mean chi2/15")
        for name in results[0][set_name]:
            rows = [r[set_name][name] for r in results]
            covs = " ".join(f"{r['coverage68']:.3f}" for r in rows)
            print(f"{name:<10s} cov68 {covs}  outside "
                  f"{[r['bins_outside'] for r in rows]} sum {sum(r['bins_outside'] for r in rows):2d}  mean chi2/15 "
                  f"{np.mean([r['chi2_per_bin'] for r in rows]):.2f}")
    if args.json:
        args.json.write_text(json.dumps({"dataset": str(args.dataset), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
