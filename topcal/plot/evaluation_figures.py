"""Figures of an evaluation: the predictive distribution of single jets (paper figure 2) and the
calibration summary (sqrt(MSE) and the mean uncertainties against pT,j, with coverage and pull width)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from topcal.plot.style import COLOURS, SYMBOLS, headroom, label, new_figure, save
from topcal.train.likelihood import predictive_density
from topcal.train.metrics import NARROW_SLICE_GEV, keyed_rows


def predictive_distribution(model, jets, pt_truth: np.ndarray, out_dir: str | Path,
                            seed: int = 0, samples: int = 50, n_jets: int = 3, shown_samples: int = 15) -> list[Path]:
    """For a few jets (from the 600..620 GeV slice when there are any): the predicted density of individual
    weight samples (thin) and their average (thick), with pT,t(truth) marked."""
    lo, hi = NARROW_SLICE_GEV
    pt_jet = jets.pt
    pick = np.flatnonzero((pt_jet >= lo) & (pt_jet < hi))[:n_jets]
    if len(pick) < n_jets:
        pick = np.arange(min(n_jets, len(jets)))
    w, mu, s = model.sample(jets.take(pick), samples, seed)
    fig, ax = new_figure()
    lo_gev = float(np.min(mu) - 4 * np.max(s)) if len(pick) else 300.0
    hi_gev = float(np.max(mu) + 4 * np.max(s)) if len(pick) else 1200.0
    grid = np.linspace(max(lo_gev, 0.0), hi_gev, 901)  # where the densities are
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    peak = 0.0  # the highest curve drawn, thin ones included
    for j in range(len(pick)):
        c = colors[j % len(colors)]
        xs = np.broadcast_to(grid, (1, len(grid)))
        for t in range(min(shown_samples, samples)):
            thin = predictive_density(xs, w[t:t + 1, j:j + 1], mu[t:t + 1, j:j + 1], s[t:t + 1, j:j + 1])[0]
            ax.plot(grid, thin, color=c, lw=0.5, alpha=0.4)
            peak = max(peak, float(thin.max()))
        ax.plot(grid, predictive_density(xs, w[:, j:j + 1], mu[:, j:j + 1], s[:, j:j + 1])[0], color=c, lw=2.5,
                label=rf"jet {j + 1}: $p_{{T,j}}$ = {pt_jet[pick[j]]:.0f} GeV")
        ax.axvline(pt_truth[pick[j]], color=c, ls="--", lw=1.5)
    ax.set_xlabel(r"$p_{T,t}$ [GeV]")
    ax.set_ylabel(r"$p(p_{T,t})$ [1/GeV]")
    if len(pick):  # show where the averaged densities are, not their far tails
        dens = predictive_density(np.broadcast_to(grid, (len(pick), len(grid))), w, mu, s)
        seen = grid[np.any(dens > 0.005 * dens.max(axis=1, keepdims=True), axis=0)]
        ax.set_xlim(seen.min() - 20, seen.max() + 20)
        headroom(ax, max(float(dens.max()), peak), 1.45)  # the legend above the curves
    ax.legend(loc="upper right", fontsize="x-small", title="thin: weight samples, dashed: truth",
              title_fontsize="x-small")
    label(ax)
    return save(fig, out_dir, "predictive_distribution")


def calibration_summary(network: dict, baseline: dict, out_dir: str | Path) -> list[Path]:
    """sqrt(MSE) of the network and of the baseline, and the network's mean sigmas, in pT,j bins (``network``
    and ``baseline``: a report's rows, :func:`topcal.train.metrics.keyed_rows`)."""
    network, baseline = keyed_rows(network), keyed_rows(baseline)
    rows = [r for r in network["bins"] if r.get("jets", 0) > 0]
    base = {(r["pt_jet_lo"], r["pt_jet_hi"]): r for r in baseline["bins"] if r.get("jets", 0) > 0}
    centre = np.array([(r["pt_jet_lo"] + r["pt_jet_hi"]) / 2 for r in rows])
    half = np.array([(r["pt_jet_hi"] - r["pt_jet_lo"]) / 2 for r in rows])
    fig, ax = new_figure()
    for key, style in (("rmse", "o"), ("sigma_tot", "s"), ("sigma_stoch", "^"), ("sigma_pred", "v")):
        name = "√MSE network" if key == "rmse" else SYMBOLS[key]
        ax.errorbar(centre, [r[key] for r in rows], xerr=half, fmt=style, color=COLOURS[key], label=name)
    ax.errorbar(centre, [base[(r["pt_jet_lo"], r["pt_jet_hi"])]["rmse"] for r in rows], xerr=half, fmt="x",
                color=COLOURS["baseline"], label=r"√MSE linear fit of $p_{T,j}$")
    ax.set_xlabel(r"$p_{T,j}$ [GeV]")
    ax.set_ylabel(r"√MSE, $\langle\sigma\rangle$ [GeV]")
    values = [r[key] for r in rows for key in ("rmse", "sigma_tot")] + \
        [base[(r["pt_jet_lo"], r["pt_jet_hi"])]["rmse"] for r in rows]
    ax.set_ylim(0, 2.1 * max(values, default=1.0))  # the legend above the points
    allj = network["all"]
    nan = float("nan")
    note = f"all jets: 68% coverage {allj.get('coverage68', nan):.2f}, pull width {allj.get('pull_width', nan):.2f}"
    ax.legend(loc="upper right", fontsize="x-small", title=note, title_fontsize="x-small")
    label(ax)
    return save(fig, out_dir, "calibration_summary")
