"""Physics benchmark: topcal's network and the paper's against the yardsticks, on jets no network saw.

One run:
  1. generates a fresh ttbar sample (no ISR; with ``--isr``, initial-state radiation) with ``--seed`` and
     ``--events`` (skipped with ``--dataset``),
  2. processes it with ``topcal process``'s defaults (the paper's data set, flattened in pT,t(truth)), with
     the label ``--top-label``,
  3. trains topcal's default network and the paper's network (``topcal.config.paper_train_config``) on the
     trainable part of the dataset, timing each,
  4. fits the yardsticks on the same training jets: the fat-jet pT with a linear response correction
     (pT = a + b pT,j, least squares) and gradient-boosted trees (scikit-learn's
     HistGradientBoostingRegressor, the ``[bench]`` extra) on the jet-level features the default network
     sees (:func:`topcal.train.inputs.jet_features`: with the charged, photon and neutral-hadron pT
     fractions when the dataset says what each constituent is, as the network then reads it) with the
     response pT,t / pT,j as target,
  5. evaluates everything on the same held-out test jets (the dataset's last 20%, never trained on) and
     prints one table: sqrt(MSE) on all test jets, in pT,j 600..620 GeV with its bootstrap error, and per
     100 GeV pT,j bin; 68% and 95% coverage and pull width (std of (pT,t - <pT>) / sigma_tot) for the
     networks (the yardsticks have no per-jet error), and the training time; then the networks' 68%
     coverage per 40 GeV pT,j bin with its binomial standard error. The ratios to the linear
     baseline are measured in the same run, and each network's sqrt(MSE) minus the trees' comes with a
     paired bootstrap error (both resampled with the same jets, so the fluctuations of the test jets that
     both see cancel: json ``rmse_minus_trees_gev``, ``rmse_minus_trees_err_gev``); last, each network's
     mean sigma_pred and sigma_stoch over the test jets. Each network also has a row "(raw)": the same
     network without its width recalibration.

``--point-phi`` also trains the default deep set with a point-estimate per-constituent map and a Bayesian head
(``TrainConfig.phi_posterior = "point"``); ``--ensemble M`` also trains a frequentist ensemble of M default
deep sets (deterministic, each on its own ``--train-size`` jets), whose spread of the means is the
sigma_pred the Bayesian networks' is compared with (the paper's figure 7).

    python benchmarks/bench_physics.py --seed 4242 --events 90000 --json physics.json
    python benchmarks/bench_physics.py --dataset jets/ --json physics.json     # an existing dataset
    python benchmarks/bench_physics.py --dataset jets/ --train-size 2000 --skip-paper --point-phi --ensemble 5
    python benchmarks/bench_physics.py --dataset jets_isr/ --train-size 10000 --skip-paper --config net.toml
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from topcal.config import TOP_LABELS, ProcessConfig, RunConfig, TrainConfig, paper_train_config
from topcal.train.metrics import (
    NARROW_SLICE_GEV,
    PT_BINS_GEV,
    bootstrap_rmse,
    linear_response,
    paired_rmse_difference,
    summary_row,
)

BINS_GEV = (400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0)
COVERAGE_BINS_GEV = PT_BINS_GEV  # 40 GeV bins of pT,j
COVERAGE_TARGET = (0.63, 0.73)  # 68% coverage wanted in every 40 GeV bin
TREES = "gradient-boosted trees"


def make_dataset(base: Path, seed: int, events: int, workers: int, isr: bool = False,
                 top_label: str = "hard-process") -> Path:
    from topcal.generate.run import generate
    from topcal.process.run import process

    cfg = RunConfig(seed=seed)
    cfg.generator.isr = isr
    cfg.output.truth = "compact"
    cfg.output.collections = ["Event", "Particle", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron"]
    cfg.output.compression = "lz4"
    sample = base / f"ttbar_{'isr_' if isr else ''}seed{seed}.root"
    generate(sample, events, cfg, workers=workers, progress=False)
    process([sample], base / "dataset", ProcessConfig(top_label=top_label),
            executor="futures" if workers > 1 else "iterative", workers=workers, progress=False, figures=False)
    return base / "dataset"


def yardsticks(train_arrays, test_arrays, seed: int) -> dict[str, dict]:
    """Predictions of the linear response correction and of gradient-boosted trees on the test jets."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from topcal.train.inputs import jet_features

    a, b, _ = linear_response(train_arrays.pt_jet, train_arrays.pt_truth)
    out = {"linear pT,j": {"mean": a + b * test_arrays.pt_jet}}
    t0 = time.perf_counter()
    gbt = HistGradientBoostingRegressor(max_iter=1000, learning_rate=0.05, early_stopping=True,
                                        validation_fraction=0.2, n_iter_no_change=30, random_state=seed)
    typed = train_arrays.jets.typed  # the features the default network gets from this dataset
    gbt.fit(jet_features(train_arrays.jets, typed=typed), train_arrays.pt_truth / train_arrays.pt_jet)
    out[TREES] = {"mean": gbt.predict(jet_features(test_arrays.jets, typed=typed)) * test_arrays.pt_jet,
                  "train_seconds": time.perf_counter() - t0}
    return out


def network(dataset: Path, out: Path, cfg: TrainConfig, test_arrays, samples: int) -> dict:
    from topcal.train.fit import train
    from topcal.train.model import load_model

    t0 = time.perf_counter()
    summary = train(dataset, out, cfg, progress=False)
    seconds = time.perf_counter() - t0
    model = load_model(out)
    pred = model.predict(test_arrays.jets, samples=samples, seed=1)
    pred["train_seconds"] = seconds
    pred["epochs"] = summary.members[0]["epochs"]
    pred["n_train"] = summary.n_train
    pred["raw"] = model.predict(test_arrays.jets, samples=samples, seed=1, raw=True)  # without the recalibration
    return pred


def figures(truth: np.ndarray, pt_jet: np.ndarray, pred: dict, seed: int) -> dict:
    lo, hi = NARROW_SLICE_GEV
    sl = (pt_jet >= lo) & (pt_jet < hi)
    row = summary_row(pt_jet, truth, {k: v for k, v in pred.items() if isinstance(v, np.ndarray)})
    out = {"rmse_gev": row["rmse"], "rmse_err_gev": bootstrap_rmse(truth, pred["mean"], seed=seed),
           "slice_jets": int(sl.sum()),
           "slice_rmse_gev": float(np.sqrt(np.mean((truth[sl] - pred["mean"][sl]) ** 2))) if sl.any() else None,
           "slice_rmse_err_gev": bootstrap_rmse(truth[sl], pred["mean"][sl], seed=seed) if sl.any() else None,
           "bins": {}}
    for a, b in zip(BINS_GEV[:-1], BINS_GEV[1:]):
        sel = (pt_jet >= a) & (pt_jet < b)
        rmse = float(np.sqrt(np.mean((truth[sel] - pred["mean"][sel]) ** 2))) if sel.any() else None
        out["bins"][f"{a:.0f}-{b:.0f}"] = rmse
    for key in ("coverage68", "coverage95", "pull_width", "pull_iqr", "sigma_pred", "sigma_stoch"):
        if key in row:
            out[key] = row[key]
    if "low" in pred:  # 68% coverage per 40 GeV pT,j bin, with its binomial standard error
        inside = (truth >= pred["low"]) & (truth <= pred["high"])
        out["coverage68_bins"] = {}
        for a, b in zip(COVERAGE_BINS_GEV[:-1], COVERAGE_BINS_GEV[1:]):
            sel = (pt_jet >= a) & (pt_jet < b)
            n = int(sel.sum())
            cov = float(inside[sel].mean()) if n else None
            out["coverage68_bins"][f"{a:.0f}-{b:.0f}"] = {
                "jets": n, "coverage68": cov, "binomial_err": float(np.sqrt(0.68 * 0.32 / n)) if n else None}
        covs = [v["coverage68"] for v in out["coverage68_bins"].values() if v["coverage68"] is not None]
        out["coverage68_bins_outside_target"] = int(sum(not COVERAGE_TARGET[0] <= c <= COVERAGE_TARGET[1]
                                                        for c in covs))
    for key in ("train_seconds", "epochs", "n_train"):
        if key in pred:
            out[key] = pred[key]
    return out


def print_table(results: dict, n_test: int) -> None:
    base = results["linear pT,j"]
    print(f"\n{n_test} test jets (never trained on); sqrt(MSE) in GeV; ratio = / linear pT,j in the same run\n")
    head = (f"{'method':<24s} {'all':>12s} {'ratio':>6s} {'600..620':>13s} {'ratio':>6s} "
            + " ".join(f"{k:>8s}" for k in base["bins"])
            + f" {'cov68':>6s} {'cov95':>6s} {'pull':>5s} {'train s':>8s}")
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        bins = " ".join(f"{v:8.1f}" if v is not None else f"{'':>8s}" for v in r["bins"].values())
        extra = "".join(f" {r[k]:6.3f}" if k in r else f" {'':>6s}" for k in ("coverage68", "coverage95"))
        extra += f" {r['pull_width']:5.2f}" if "pull_width" in r else f" {'':>5s}"
        extra += f" {r['train_seconds']:8.0f}" if "train_seconds" in r else f" {'':>8s}"
        sl = f"{r['slice_rmse_gev']:6.1f}+-{r['slice_rmse_err_gev']:4.1f}" if r["slice_rmse_gev"] else f"{'':>13s}"
        sl_ratio = r["slice_rmse_gev"] / base["slice_rmse_gev"] if r["slice_rmse_gev"] else float("nan")
        print(f"{name:<24s} {r['rmse_gev']:6.1f}+-{r['rmse_err_gev']:3.1f} {r['rmse_gev'] / base['rmse_gev']:6.3f} "
              f"{sl} {sl_ratio:6.3f} {bins}{extra}")
    print("\nper-bin columns: sqrt(MSE) in 100 GeV bins of pT,j; pull: std of (pT,t - <pT>) / sigma_tot")
    for name, r in results.items():
        if "rmse_minus_trees_gev" in r:
            print(f"{name}: sqrt(MSE) minus the trees' {r['rmse_minus_trees_gev']:+.2f} +- "
                  f"{r['rmse_minus_trees_err_gev']:.2f} GeV (paired bootstrap: the same resampled jets)")
    nets = {name: r for name, r in results.items() if "coverage68_bins" in r}
    if nets:
        first = next(iter(nets.values()))["coverage68_bins"]
        print(f"\n68% coverage per 40 GeV pT,j bin (binomial standard error in the last row; target "
              f"{COVERAGE_TARGET[0]}..{COVERAGE_TARGET[1]})\n")
        print(f"{'pT,j bin (GeV)':<24s} " + " ".join(f"{k:>8s}" for k in first))
        for name, r in nets.items():
            covs = " ".join(f"{v['coverage68']:8.3f}" if v["coverage68"] is not None else f"{'':>8s}"
                            for v in r["coverage68_bins"].values())
            print(f"{name:<24s} {covs}   outside: {r['coverage68_bins_outside_target']}")
        print(f"{'+- (binomial)':<24s} " + " ".join(f"{v['binomial_err']:8.3f}" if v["binomial_err"] else f"{'':>8s}"
                                                   for v in first.values()))
        print(f"\nmean over the test jets (GeV)\n\n{'network':<24s} {'sigma_pred':>10s} {'sigma_stoch':>11s}")
        for name, r in nets.items():
            print(f"{name:<24s} {r['sigma_pred']:10.2f} {r['sigma_stoch']:11.2f}")


def main() -> None:
    from topcal.config import load_card
    from topcal.io.dataset import open_dataset
    from topcal.train.data import load_rows, split_rows

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=4242, help="Seed of the fresh sample and of the trainings.")
    ap.add_argument("--events", type=int, default=90_000, help="ttbar events to generate (no ISR unless --isr).")
    ap.add_argument("--isr", action="store_true", help="Generate the fresh sample with initial-state radiation.")
    ap.add_argument("--top-label", choices=TOP_LABELS, default="hard-process",
                    help="The label of the fresh sample's dataset (`topcal process --top-label`) [hard-process].")
    ap.add_argument("--dataset", type=Path, default=None, help="Use this dataset instead of a fresh sample.")
    ap.add_argument("--train-size", type=int, default=None, help="Training jets per network [all trainable].")
    ap.add_argument("--workers", type=int, default=2, help="Worker processes for generation and processing.")
    ap.add_argument("--samples", type=int, default=50, help="Weight samples per jet.")
    ap.add_argument("--skip-paper", action="store_true", help="Do not train the paper's network.")
    ap.add_argument("--calibration-jets", default=None, choices=("apart", "validation"),
                    help="TrainConfig.calibration_jets of the default network [the card's, else apart]; "
                         "'validation' gives what a dataset of --train-size jets in all gives.")
    ap.add_argument("--point-phi", action="store_true",
                    help="Also train the deep set with a point-estimate per-constituent map (phi_posterior point).")
    ap.add_argument("--ensemble", type=int, default=0, help="Also train a frequentist ensemble of this many deep sets.")
    ap.add_argument("--config", type=Path, default=None,
                    help="A TrainConfig TOML card for topcal's network (as `topcal train --config`) [defaults].")
    ap.add_argument("--workdir", type=Path, default=None, help="Keep samples and models here [a temporary one].")
    ap.add_argument("--json", type=Path, default=None, help="Write the table's figures to this JSON file.")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = args.workdir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        dataset = args.dataset or make_dataset(base, args.seed, args.events, args.workers, args.isr,
                                                args.top_label)
        sample_seconds = time.perf_counter() - t0
        ds = open_dataset(dataset)
        trainable, test = split_rows(ds.n_jets, TrainConfig().test_fraction)
        test_arrays, _ = load_rows(ds, test)
        train_rows = trainable if args.train_size is None else \
            np.sort(np.random.default_rng([args.seed, 0x7A1]).permutation(trainable)[:args.train_size])
        train_arrays, _ = load_rows(ds, train_rows)
        print(f"dataset {dataset}: {ds.n_jets} jets, {len(trainable)} trainable, {len(test)} test "
              f"(sample made in {sample_seconds:.0f} s); constituent types as inputs: "
              f"{'yes' if test_arrays.jets.typed else 'no (the dataset has none)'}")

        preds = yardsticks(train_arrays, test_arrays, args.seed)
        given = {"train_size": args.train_size, "seed": args.seed, "calibration_jets": args.calibration_jets}
        card = load_card(args.config, {k: v for k, v in given.items() if v is not None or k == "train_size"},
                         cls=TrainConfig)
        configs = {"topcal default" if args.config is None else f"topcal {args.config.stem}": card}
        if args.point_phi:
            configs["point-estimate phi"] = TrainConfig(train_size=args.train_size, seed=args.seed,
                                                        phi_posterior="point")
        if args.ensemble:
            configs[f"ensemble of {args.ensemble}"] = TrainConfig(train_size=args.train_size, seed=args.seed,
                                                                  ensemble=args.ensemble)
        if not args.skip_paper:
            configs["paper network"] = paper_train_config(train_size=args.train_size, seed=args.seed)
        for name, cfg in configs.items():
            preds[name] = network(dataset, base / name.replace(" ", "_"), cfg, test_arrays, args.samples)
        for name in configs:  # the same networks without the width recalibration, after the recalibrated ones
            preds[f"{name} (raw)"] = preds[name].pop("raw")
        truth, pt_jet = test_arrays.pt_truth, test_arrays.pt_jet
        results = {name: figures(truth, pt_jet, pred, args.seed) for name, pred in preds.items()}
        for name in configs:  # the networks against the stronger yardstick, on the same resampled jets
            d, err = paired_rmse_difference(truth, preds[name]["mean"], preds[TREES]["mean"], seed=args.seed)
            results[name].update(rmse_minus_trees_gev=d, rmse_minus_trees_err_gev=err)
        print_table(results, len(test))
        if args.json:
            args.json.write_text(json.dumps({"dataset": str(dataset), "seed": args.seed, "events": args.events,
                                             "n_trainable": len(trainable), "n_test": len(test),
                                             "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
