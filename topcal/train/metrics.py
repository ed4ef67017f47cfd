"""Figures of merit of per-jet predictions, in bins of the fat-jet pT (GeV), pure numpy.

* ``rmse``: sqrt(mean((<pT> - pT,t(truth))^2)), ``rmse_err`` its bootstrap standard error, and
  ``rmse_rel`` = rmse / mean pT,j;
* mean ``sigma_stoch``, ``sigma_pred``, ``sigma_tot`` (and ``sigma_cal``, ``sigma_input`` when given);
* ``coverage68``: fraction of jets whose pT,t(truth) lies inside their 68% interval (ideal 0.68), and
  ``coverage95`` for the 95% interval (ideal 0.95);
* ``pull_width``: standard deviation of the pulls (pT,t(truth) - <pT>) / sigma_tot (ideal 1); ``pull_iqr``:
  their interquartile range / 1.349 (ideal 1; insensitive to far tails);
* ``crps``: mean continuous ranked probability score of the Gaussian N(<pT>, sigma_tot) (GeV, lower is better).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

PT_BINS_GEV = tuple(float(e) for e in np.arange(400.0, 1000.1, 40.0))
NARROW_SLICE_GEV = (600.0, 620.0)


def crps_gaussian(truth: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """CRPS of N(mean, sigma) for the observed ``truth`` (closed form)."""
    z = (truth - mean) / sigma
    cdf = special.ndtr(z)
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return sigma * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def summary_row(pt_jet: np.ndarray, truth: np.ndarray, pred: dict[str, np.ndarray]) -> dict[str, float]:
    """All figures of merit for one set of jets (see the module docstring)."""
    n = len(truth)
    row: dict[str, float] = {"jets": n}
    if n == 0:
        return row
    resid = truth - pred["mean"]
    row["rmse"] = float(np.sqrt(np.mean(resid**2)))
    row["rmse_err"] = bootstrap_rmse(truth, pred["mean"], n_boot=200)
    row["rmse_rel"] = row["rmse"] / float(np.mean(pt_jet))
    row["bias"] = float(np.mean(-resid))
    for name in ("sigma_stoch", "sigma_pred", "sigma_tot", "sigma_cal", "sigma_input"):
        if name in pred:
            row[name] = float(np.mean(pred[name]))
    if "low" in pred:
        row["coverage68"] = float(np.mean((truth >= pred["low"]) & (truth <= pred["high"])))
    if "low95" in pred:
        row["coverage95"] = float(np.mean((truth >= pred["low95"]) & (truth <= pred["high95"])))
    if "sigma_tot" in pred:
        pulls = resid / pred["sigma_tot"]
        row["pull_width"] = float(np.std(pulls))
        q25, q75 = np.percentile(pulls, [25, 75])
        row["pull_iqr"] = float((q75 - q25) / 1.349)
        row["crps"] = float(np.mean(crps_gaussian(truth, pred["mean"], pred["sigma_tot"])))
    return row


def binned(pt_jet: np.ndarray, truth: np.ndarray, pred: dict[str, np.ndarray],
           edges=PT_BINS_GEV) -> dict[str, Any]:
    """:func:`summary_row` per pT,j bin ``[lo, hi)`` (``bins``, a list), in the narrow slice ``NARROW_SLICE_GEV``
    (``slice``) and for all jets in ``edges[0]..edges[-1]`` (``all``)."""

    def row(lo: float, hi: float) -> dict[str, float]:
        sel = (pt_jet >= lo) & (pt_jet < hi)
        return {"pt_jet_lo": lo, "pt_jet_hi": hi,
                **summary_row(pt_jet[sel], truth[sel], {k: v[sel] for k, v in pred.items()})}

    return {"bins": [row(lo, hi) for lo, hi in zip(edges[:-1], edges[1:])], "slice": row(*NARROW_SLICE_GEV),
            "all": row(edges[0], edges[-1])}


def keyed_rows(rows: dict | list) -> dict[str, Any]:
    """A report's rows as :func:`binned` keys them (``bins``, ``slice``, ``all``); a plain list
    ``[bin rows..., slice row, all-jets row]`` (reports written without the keys) is read too."""
    if isinstance(rows, dict):
        return rows
    return {"bins": list(rows[:-2]), "slice": rows[-2], "all": rows[-1]}


def bootstrap_rmse(truth: np.ndarray, mean: np.ndarray, n_boot: int = 1000, seed: int = 0) -> float:
    """Bootstrap standard error (GeV) of sqrt(MSE) of ``mean`` against ``truth`` (jets resampled)."""
    if len(truth) < 2:
        return float("nan")
    return float(np.std(_resampled_rmse(truth, (mean,), n_boot, seed)[0]))


def paired_rmse_difference(truth: np.ndarray, mean: np.ndarray, other: np.ndarray, n_boot: int = 1000,
                           seed: int = 0) -> tuple[float, float]:
    """sqrt(MSE) of ``mean`` minus sqrt(MSE) of ``other`` against the same ``truth`` (GeV), and its paired
    bootstrap standard error: both resampled with the same jets, so the part of their errors that the
    jets share (most of it: both see the same detector fluctuations) cancels. Two methods whose separate
    bootstrap errors overlap can still differ significantly."""
    difference = float(np.sqrt(np.mean((truth - mean) ** 2)) - np.sqrt(np.mean((truth - other) ** 2)))
    if len(truth) < 2:
        return difference, float("nan")
    resampled = _resampled_rmse(truth, (mean, other), n_boot, seed)
    return difference, float(np.std(resampled[0] - resampled[1]))


def _resampled_rmse(truth: np.ndarray, means: tuple[np.ndarray, ...], n_boot: int, seed: int) -> np.ndarray:
    """sqrt(MSE) of each of ``means`` in ``n_boot`` resamplings of the jets, the same jets for all of them
    (drawn from ``seed``): ``(len(means), n_boot)``."""
    sq = np.stack([(truth - mean) ** 2 for mean in means])
    rng, block = np.random.default_rng(seed), max(1, 2**24 // max(len(truth), 1))  # 128 MB of indices at most
    return np.concatenate([np.sqrt(sq[:, rng.integers(0, len(truth), (min(block, n_boot - start), len(truth)))]
                                   .mean(axis=2)) for start in range(0, n_boot, block)], axis=1)


def linear_response(pt_jet: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Baseline calibration pT = a + b pT,j fitted by least squares; returns (a, b, residual rms) in GeV."""
    b, a = np.polyfit(pt_jet, truth, 1)
    rms = float(np.std(truth - (a + b * pt_jet)))
    return float(a), float(b), rms
