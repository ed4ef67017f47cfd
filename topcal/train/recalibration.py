"""Recalibration of the predictive widths: a factor c(pT,j) > 0 per jet that stretches its predictive
distribution about its mean (every component's distance from the mean and every width, so sigma_stoch,
sigma_pred, sigma_tot and the intervals scale by c), fitted on calibration jets so that their 68% intervals
hold 68% of their labels.

* :func:`needed_stretch`: per calibration jet, the smallest factor whose 68% interval (of the stretched
  density, truncated to the label window as :func:`topcal.train.likelihood.summarize` does) holds its label.
  A jet's interval holds its label for every factor at or above it, so a factor c holds the labels of the
  jets that need at most c.
* :func:`calibration_in_bins` (what training fits, ``TrainConfig.recalibrate_bins``): the 68% quantile of
  those needs per pT,j bin of equal numbers of calibration jets, at the bins' median pT,j, joined linearly;
  :func:`global_calibration`: one quantile for all jets; :func:`edge_aware_calibration`: one for each end of
  the pT,j window and one for its middle (``benchmarks/bench_recalibration.py`` compares them).
* :class:`WidthCalibration`: c(pT,j), linear between those points and constant beyond the first and the
  last (``model.json`` ``calibration``: ``width_factor``, the global factor, and, when fitted in bins,
  ``width_factor_pt`` = ``{"pt_jet_gev": [...], "factor": [...]}``; a model with only the scalar applies it
  to every jet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

COVERAGE = 0.68
MIN_JETS_PER_BIN = 400  # binomial error of a bin's coverage 0.023: the fit in fewer bins when jets are scarce
STRETCH_RANGE = (0.2, 5.0)  # the factors needed_stretch searches
MIN_JETS_PER_EDGE = 50  # an end of the pT,j window with fewer calibration jets takes the middle's factor


@dataclass(frozen=True)
class WidthCalibration:
    """The width factor as a function of pT,j: ``factors`` at ``pt_jet_gev`` (increasing, GeV), linear in
    between, constant beyond the ends; one point: the same factor for every jet."""

    pt_jet_gev: tuple[float, ...]
    factors: tuple[float, ...]

    def __call__(self, pt_jet) -> np.ndarray:
        """The factor of each jet of pT,j ``pt_jet`` (GeV)."""
        pt_jet = np.asarray(pt_jet, dtype=np.float64)
        return np.interp(pt_jet, self.pt_jet_gev, self.factors) if len(self.factors) > 1 else \
            np.full(pt_jet.shape, self.factors[0])

    @property
    def is_identity(self) -> bool:
        return all(f == 1.0 for f in self.factors)

    @classmethod
    def from_calibration(cls, calibration: dict | None) -> WidthCalibration:
        """From ``model.json``'s ``calibration`` record: ``width_factor_pt`` when present, else the scalar
        ``width_factor`` (1 when neither is there)."""
        calibration = calibration or {}
        binned = calibration.get("width_factor_pt")
        if binned:
            return cls(tuple(float(x) for x in binned["pt_jet_gev"]), tuple(float(f) for f in binned["factor"]))
        return cls((0.0,), (float(calibration.get("width_factor", 1.0)),))

    def to_record(self) -> dict:
        """``width_factor_pt`` of ``model.json``."""
        return {"pt_jet_gev": list(self.pt_jet_gev), "factor": list(self.factors)}


def factors_by_pt(record: dict) -> str:
    """A ``width_factor_pt`` record in words: ``x0.81 at pT,j 430 GeV, x0.96 at 460 GeV, ...``."""
    return ", ".join(f"x{f:.3f} at {'pT,j ' if i == 0 else ''}{x:.0f} GeV"
                     for i, (x, f) in enumerate(zip(record["pt_jet_gev"], record["factor"])))


def check_record(record) -> str | None:
    """What is wrong with a ``width_factor_pt`` record (None when it is valid)."""
    if not isinstance(record, dict) or not isinstance(record.get("pt_jet_gev"), list) or \
            not isinstance(record.get("factor"), list):
        return "must hold the lists pt_jet_gev and factor"
    x, f = record["pt_jet_gev"], record["factor"]
    if not x or len(x) != len(f):
        return "pt_jet_gev and factor must be non-empty lists of the same length"
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in [*x, *f]):
        return "must hold finite numbers"
    if any(v <= 0 for v in f) or any(b <= a for a, b in zip(x, x[1:])):
        return "factors must be > 0 and pt_jet_gev increasing"
    return None


def stretch(weights: np.ndarray, means: np.ndarray, sigmas: np.ndarray, factor) -> tuple:
    """Mixture parameters ``(T, n_jets, K)`` with each jet's predictive distribution stretched about its mean
    (the average over the T samples of the mixture means) by ``factor`` (a number or one per jet)."""
    f = np.broadcast_to(np.asarray(factor, dtype=np.float64), means.shape[1:2])[None, :, None]
    centre = np.sum(weights * means, axis=-1, keepdims=True).mean(axis=0, keepdims=True)
    return weights, centre + f * (means - centre), sigmas * f


def needed_stretch(weights: np.ndarray, means: np.ndarray, sigmas: np.ndarray, truth: np.ndarray,
                   window: tuple[float, float] | None = None, lowest: float = STRETCH_RANGE[0],
                   highest: float = STRETCH_RANGE[1], steps: int = 11) -> np.ndarray:
    """Per jet, the smallest factor in ``lowest``..``highest`` by which its predictive distribution (mixture
    parameters ``(T, n_jets, K)``, GeV) must be stretched for its 68% interval to hold ``truth`` (GeV):
    bisection in log(factor), ``steps`` halvings (0.2..5 in 11: to 0.16% in the factor). The interval is the one
    :func:`topcal.train.likelihood.summarize` gives with ``window``: the stretched density truncated to it,
    as prediction truncates it, so jets next to the window's ends need what they will be given."""
    from topcal.train.likelihood import summarize

    lo = np.full(len(truth), math.log(lowest))
    hi = np.full(len(truth), math.log(highest))
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        s = summarize(*stretch(weights, means, sigmas, np.exp(mid)), window=window)
        inside = (truth >= s["low"]) & (truth <= s["high"])
        hi, lo = np.where(inside, mid, hi), np.where(inside, lo, mid)
    return np.exp(hi)


def global_calibration(need: np.ndarray, coverage: float = COVERAGE) -> WidthCalibration:
    """One factor for every jet: the ``coverage`` quantile of the calibration jets' ``need``
    (:func:`needed_stretch`)."""
    return WidthCalibration((0.0,), (float(np.quantile(need, coverage)),))


def calibration_in_bins(pt_jet: np.ndarray, need: np.ndarray, bins: int,
                        coverage: float = COVERAGE) -> WidthCalibration:
    """The factor that holds ``coverage`` of the calibration jets in each of ``bins`` pT,j bins of equal
    numbers of jets (fewer bins when a bin would hold fewer than ``MIN_JETS_PER_BIN``): the ``coverage``
    quantile of their ``need`` (:func:`needed_stretch`) per bin, placed at the bin's median pT,j (GeV). A bin
    whose ``coverage`` no stretch reaches (its quantile at the top of ``STRETCH_RANGE``: labels that no
    interval of the stretched density holds, as between the peaks of a two-peaked density) takes the global
    factor."""
    pt_jet, need = np.asarray(pt_jet, dtype=np.float64), np.asarray(need, dtype=np.float64)
    bins = max(1, min(int(bins), len(need) // MIN_JETS_PER_BIN))
    if bins == 1:
        return global_calibration(need, coverage)
    parts = np.array_split(np.argsort(pt_jet, kind="stable"), bins)
    overall = global_calibration(need, coverage).factors[0]
    factors = [float(np.quantile(need[p], coverage)) for p in parts]
    return WidthCalibration(tuple(float(np.median(pt_jet[p])) for p in parts),
                            tuple(overall if f >= 0.999 * STRETCH_RANGE[1] else f for f in factors))


def edge_aware_calibration(pt_jet: np.ndarray, need: np.ndarray, window: tuple[float, float], edge_gev: float,
                           coverage: float = COVERAGE) -> WidthCalibration:
    """Factors for the two ends of the pT,j ``window`` (GeV) and for its middle: the ``coverage`` quantile of
    the calibration jets' ``need`` (:func:`needed_stretch`) in pT,j < window[0] + ``edge_gev``, in
    pT,j > window[1] - ``edge_gev`` and in between. The factor is an end's from the window's end to the
    middle of its zone, the middle's from the zone's inner end on, linear in between. An end whose zone holds
    fewer than ``MIN_JETS_PER_EDGE`` calibration jets takes the middle's factor; without a finite window, or
    with ``edge_gev`` 0, one factor for every jet.

    Next to the ends of the window the network's predictive densities are truncated (the labels lie in the
    window) and cover more than in the middle at the same global factor."""
    pt_jet, need = np.asarray(pt_jet, dtype=np.float64), np.asarray(need, dtype=np.float64)
    lo, hi = (float(w) for w in window)
    if edge_gev <= 0 or not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo <= 2 * edge_gev:
        return global_calibration(need, coverage)
    low, high = pt_jet < lo + edge_gev, pt_jet > hi - edge_gev
    middle = ~(low | high)
    if middle.sum() < MIN_JETS_PER_EDGE:
        return global_calibration(need, coverage)
    f_mid = float(np.quantile(need[middle], coverage))
    f_low, f_high = (float(np.quantile(need[zone], coverage)) if zone.sum() >= MIN_JETS_PER_EDGE else f_mid
                     for zone in (low, high))
    return WidthCalibration((lo + edge_gev / 2, lo + edge_gev, hi - edge_gev, hi - edge_gev / 2),
                            (f_low, f_mid, f_mid, f_high))
