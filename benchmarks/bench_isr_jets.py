"""Where the ISR penalty comes from: the jet against the label, on datasets with and without ISR.

For each dataset (``topcal process`` output; give the ISR one and the one without):

* the fraction of jets with pT,j more than 10% above / below the label pT,t(truth), and the jet-mass
  quantiles (16, 50, 84%) in GeV: hard initial-state partons inside the jet push pT,j and m_j up;
* the spread (GeV) of the label for pT 600..620 GeV and the rms (GeV) of a linear fit of the label, for pT
  summed over the stored constituents within Delta R < r of the jet axis (r = 0.5 .. 1.3; 1.3 is the whole
  stored jet): does a smaller cone leave the radiation out?
* the share of pT,j the stored (network) constituents keep (1 without grooming; below 1 for a trimmed
  dataset);
* gradient-boosted trees (the ``[bench]`` extra, as in ``bench_physics.py``, on ``--train-size`` jets of
  the trainable part, evaluated on the test part) on the network's jet features, and on them plus
  four-subjet features (exclusive-kT, 4 subjets: the two softest subjets' pT fractions, the softest's
  mass, the triplet closest to the top mass: its mass and pT fraction, and the four subjets' mass).

    python benchmarks/bench_isr_jets.py jets_isr/ jets_noisr/ --json isr.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import warnings
from pathlib import Path

import numpy as np

TOP_MASS_GEV = 172.5
CONES = (0.5, 0.6, 0.8, 1.0, 1.3)


def _four_momenta(jets) -> np.ndarray:
    return jets.constituents.astype(np.float64) * jets.input_scale_gev  # (n, N, 4): E, px, py, pz in GeV


def _mass(p: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(p[..., 0] ** 2 - p[..., 1] ** 2 - p[..., 2] ** 2 - p[..., 3] ** 2, 0.0))


def _pt(p: np.ndarray) -> np.ndarray:
    return np.hypot(p[..., 1], p[..., 2])


def exclusive_subjets(c: np.ndarray, n: int) -> np.ndarray:
    """``(jets, n, 4)`` exclusive-kT subjets (E, px, py, pz) of each jet's stored constituents, with fastjet,
    by falling pT."""
    import awkward as ak
    import fastjet

    mask = c[..., 0] > 0
    parts = ak.unflatten(ak.zip({k: c[..., i][mask] for i, k in enumerate(("E", "px", "py", "pz"))}), mask.sum(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub = fastjet.ClusterSequence(parts, fastjet.JetDefinition(fastjet.kt_algorithm, 1.2)).exclusive_jets(n_jets=n)
    out = np.stack([ak.to_numpy(sub[k]).reshape(-1, n) for k in ("E", "px", "py", "pz")], -1)
    order = np.argsort(-_pt(out), axis=1)
    return np.take_along_axis(out, order[..., None], axis=1)


def four_subjet_features(jets) -> np.ndarray:
    """``(n, 6)`` per jet: the pT fractions of the softest and the second softest of four exclusive-kT
    subjets, the softest's mass (TeV), the mass (TeV) and pT fraction of the triplet closest to the top
    mass, and the four subjets' mass (TeV). Jets need at least four stored constituents."""
    s4 = exclusive_subjets(_four_momenta(jets), 4)
    triplets = np.stack([s4[:, list(ix)].sum(1) for ix in itertools.combinations(range(4), 3)], 1)
    best = np.argmin(np.abs(_mass(triplets) - TOP_MASS_GEV), axis=1)
    top = triplets[np.arange(len(s4)), best]
    pt = jets.pt
    return np.stack([_pt(s4[:, 3]) / pt, _pt(s4[:, 2]) / pt, _mass(s4[:, 3]) / 1000, _mass(top) / 1000,
                     _pt(top) / pt, _mass(s4.sum(1)) / 1000], axis=-1)


def diagnose(path: Path, train_size: int, seed: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from topcal.config import TrainConfig
    from topcal.io.dataset import open_dataset
    from topcal.train.data import load_rows, split_rows
    from topcal.train.inputs import jet_features

    ds = open_dataset(path)
    every, _ = load_rows(ds, np.arange(ds.n_jets))
    jets, label = every.jets, every.pt_truth
    response = jets.pt / label
    c = _four_momenta(jets)
    pt_c = _pt(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta_c = np.arcsinh(np.where(pt_c > 0, c[..., 3] / np.where(pt_c > 0, pt_c, 1.0), 0.0))
    dphi = (np.arctan2(c[..., 2], c[..., 1]) - jets.phi[:, None] + np.pi) % (2 * np.pi) - np.pi
    dr = np.hypot(eta_c - jets.eta[:, None], dphi)
    cones = {}
    for r in CONES:
        inside = (dr < r) & (pt_c > 0)
        pt_r = np.hypot((c[..., 1] * inside).sum(1), (c[..., 2] * inside).sum(1))
        narrow = (pt_r >= 600) & (pt_r < 620)
        design = np.vstack([np.ones_like(pt_r), pt_r]).T
        residual = label - design @ np.linalg.lstsq(design, label, rcond=None)[0]
        cones[str(r)] = {"slice_spread_gev": float(np.std(label[narrow])), "linear_rms_gev": float(np.std(residual))}
    stored = np.hypot(c[..., 1].sum(1), c[..., 2].sum(1)) / jets.pt
    trainable, test = split_rows(ds.n_jets, TrainConfig().test_fraction)
    rows = np.sort(np.random.default_rng([seed, 0x7A1]).permutation(trainable)[:train_size])
    train_arrays, _ = load_rows(ds, rows)
    test_arrays, _ = load_rows(ds, test)
    base = (jet_features(train_arrays.jets), jet_features(test_arrays.jets))
    extra = (four_subjet_features(train_arrays.jets), four_subjet_features(test_arrays.jets))
    trees = {}
    for name, (a, b) in {"jet features": base,
                         "+ four subjets": (np.hstack([base[0], extra[0]]), np.hstack([base[1], extra[1]]))}.items():
        gbt = HistGradientBoostingRegressor(max_iter=1000, learning_rate=0.05, early_stopping=True, random_state=seed)
        gbt.fit(a, train_arrays.pt_truth / train_arrays.pt_jet)
        trees[name] = float(np.sqrt(np.mean((gbt.predict(b) * test_arrays.pt_jet - test_arrays.pt_truth) ** 2)))
    return {"jets": int(ds.n_jets), "label": ds.config.top_label,
            "above_10pct": float(np.mean(response > 1.1)), "below_10pct": float(np.mean(response < 0.9)),
            "mass_quantiles_gev": [float(q) for q in np.percentile(jets.mass, [16, 50, 84])],
            "stored_pt_share": float(np.mean(stored)), "cones": cones, "trees_rmse_gev": trees}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", type=Path, nargs="+", help="topcal process outputs (with and without ISR).")
    ap.add_argument("--train-size", type=int, default=10000, help="Training jets for the trees [10000].")
    ap.add_argument("--seed", type=int, default=2931, help="Seed of the training-jet draw and the trees.")
    ap.add_argument("--json", type=Path, default=None, help="Write the figures to this JSON file.")
    args = ap.parse_args()
    results = {str(p): diagnose(p, args.train_size, args.seed) for p in args.datasets}
    for path, r in results.items():
        q = r["mass_quantiles_gev"]
        print(f"{path}: {r['jets']} jets, label {r['label']}")
        print(f"  pT,j > 1.1 x label: {r['above_10pct']:.3f}   < 0.9 x label: {r['below_10pct']:.3f}   "
              f"m_j 16/50/84%: {q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f} GeV   stored constituents' share of pT,j: "
              f"{r['stored_pt_share']:.3f}")
        print("  cone Delta R <        " + "".join(f"{r_:>8s}" for r_ in r["cones"]))
        print("  label spread, 600..620" + "".join(f"{v['slice_spread_gev']:8.1f}" for v in r["cones"].values()))
        print("  linear-fit rms        " + "".join(f"{v['linear_rms_gev']:8.1f}" for v in r["cones"].values()))
        print("  trees sqrt(MSE): " + ", ".join(f"{k} {v:.1f} GeV" for k, v in r["trees_rmse_gev"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
