"""Width recalibration: the needed stretch per jet, the factor as a function of pT,j, the model.json record."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from topcal.train.likelihood import summarize
from topcal.train.recalibration import (
    WidthCalibration,
    calibration_in_bins,
    check_record,
    edge_aware_calibration,
    global_calibration,
    needed_stretch,
    stretch,
)

Z68 = stats.norm.ppf(0.84)


def _gaussians(mean: np.ndarray, sigma: np.ndarray):
    """Mixture parameters (T = 2 identical samples, K = 1) of Gaussian predictive densities."""
    shape = (2, len(mean), 1)
    return (np.ones(shape), np.broadcast_to(mean[None, :, None], shape).copy(),
            np.broadcast_to(sigma[None, :, None], shape).copy())


def test_needed_stretch_is_the_distance_in_interval_half_widths():
    """For a Gaussian the 68% interval is mean +- 0.994 sigma: a label at distance d needs d / (0.994 sigma)
    (within the searched 0.2..5)."""
    rng = np.random.default_rng(3)
    mean, sigma = rng.uniform(500, 900, 200), rng.uniform(20, 60, 200)
    truth = mean + sigma * rng.uniform(-2.5, 2.5, 200)
    need = needed_stretch(*_gaussians(mean, sigma), truth)
    np.testing.assert_allclose(need, np.clip(np.abs(truth - mean) / (Z68 * sigma), 0.2, 5.0), rtol=0.01)


def test_needed_stretch_next_to_a_window_end_is_the_one_prediction_gives():
    """With the density truncated to the label window the interval is not a stretch of the raw one; the
    needed factor is still the smallest whose (truncated) interval holds the label."""
    mean, sigma = np.array([420.0, 430.0, 990.0, 700.0]), np.array([40.0, 50.0, 45.0, 40.0])
    truth = np.array([470.0, 405.0, 960.0, 740.0])
    window = (400.0, 1000.0)
    need = needed_stretch(*_gaussians(mean, sigma), truth, window)
    for scale, held in ((1.01, True), (0.99, False)):
        s = summarize(*stretch(*_gaussians(mean, sigma), need * scale), window=window)
        assert np.all(((truth >= s["low"]) & (truth <= s["high"])) == held)
    assert not np.allclose(need[:3], np.abs(truth - mean)[:3] / (Z68 * sigma[:3]), rtol=0.02)  # truncation matters


def _toy(n: int, seed: int, true_width):
    """Jets of pT,j 400..1000 GeV whose predicted width (30 GeV) is too narrow by ``true_width(pT,j) / 30``."""
    rng = np.random.default_rng(seed)
    pt = rng.uniform(400.0, 1000.0, n)
    mean, sigma = pt.copy(), np.full(n, 30.0)
    truth = mean + true_width(pt) * rng.standard_normal(n)
    return pt, truth, mean, sigma


def _coverage_per_bin(pt, truth, mean, sigma, factor, edges):
    inside = np.abs(truth - mean) <= factor * Z68 * sigma
    which = np.digitize(pt, edges) - 1
    return np.array([inside[which == i].mean() for i in range(len(edges) - 1)])


def test_a_pt_dependent_miscalibration_is_recovered():
    """Widths too narrow by 1 + (pT,j - 400) / 600 (1 at 400 GeV, 2 at 1000 GeV): the factors per pT,j bin
    follow it, and on fresh jets every 100 GeV bin then covers 68%, where one global factor over-covers the
    low bins and under-covers the high ones."""
    truth_factor = lambda pt: 1.0 + (pt - 400.0) / 600.0  # noqa: E731
    pt, truth, mean, sigma = _toy(4000, 1, lambda p: 30.0 * truth_factor(p))
    need = needed_stretch(*_gaussians(mean, sigma), truth)
    by_pt = calibration_in_bins(pt, need, 5)
    assert len(by_pt.factors) == 5
    np.testing.assert_allclose(by_pt.factors, truth_factor(np.array(by_pt.pt_jet_gev)), rtol=0.06)
    one = global_calibration(need)
    assert one.factors[0] == pytest.approx(np.quantile(need, 0.68))

    pt, truth, mean, sigma = _toy(60_000, 2, lambda p: 30.0 * truth_factor(p))
    edges = np.arange(400.0, 1000.1, 100.0)
    per_bin = _coverage_per_bin(pt, truth, mean, sigma, by_pt(pt), edges)
    assert np.all(np.abs(per_bin[1:-1] - 0.68) < 0.03), per_bin  # the end bins: flat beyond the outer knots
    assert np.all(np.abs(per_bin - 0.68) < 0.05), per_bin
    glob = _coverage_per_bin(pt, truth, mean, sigma, one(pt), edges)
    assert glob[0] > 0.80 and glob[-1] < 0.58, glob


def test_edge_aware_factors_recover_narrower_ends():
    """Widths right in the middle of the pT,j window and 0.7 of the predicted ones within 60 GeV of its ends:
    three factors, joined linearly, recover it."""
    width = lambda pt: 30.0 * np.where((pt < 460) | (pt > 940), 0.7, 1.0)  # noqa: E731
    pt, truth, mean, sigma = _toy(6000, 4, width)
    need = needed_stretch(*_gaussians(mean, sigma), truth)
    cal = edge_aware_calibration(pt, need, (400.0, 1000.0), 60.0)
    assert cal.pt_jet_gev == (430.0, 460.0, 940.0, 970.0)
    np.testing.assert_allclose(cal.factors, [0.7, 1.0, 1.0, 0.7], rtol=0.08)
    assert cal(np.array([400.0, 445.0, 700.0, 1000.0])) == pytest.approx([cal.factors[0], 0.5 * sum(cal.factors[:2]),
                                                                          cal.factors[1], cal.factors[3]])
    # no finite window, or no edge zone: one factor
    assert len(edge_aware_calibration(pt, need, (400.0, np.inf), 60.0).factors) == 1
    assert len(edge_aware_calibration(pt, need, (400.0, 1000.0), 0.0).factors) == 1


def test_model_json_records_round_trip_and_an_old_scalar_still_applies():
    old = WidthCalibration.from_calibration({"width_factor": 0.9, "coverage68_raw": 0.7})
    np.testing.assert_array_equal(old(np.array([400.0, 700.0, 5000.0])), 0.9)
    assert WidthCalibration.from_calibration(None).is_identity and WidthCalibration.from_calibration({}).is_identity
    cal = WidthCalibration((430.0, 460.0, 940.0, 970.0), (0.8, 0.95, 0.95, 0.75))
    again = WidthCalibration.from_calibration({"width_factor": 0.93, "width_factor_pt": cal.to_record()})
    assert again == cal and check_record(cal.to_record()) is None
    assert "increasing" in check_record({"pt_jet_gev": [500, 400], "factor": [1, 1]})
    assert "> 0" in check_record({"pt_jet_gev": [400, 500], "factor": [1, -1]})
    assert "same length" in check_record({"pt_jet_gev": [400], "factor": [1, 1]})


def test_stretch_scales_every_width_and_keeps_the_mean():
    rng = np.random.default_rng(5)
    w = rng.dirichlet(np.ones(3), size=(4, 6))
    mu, sigma = rng.normal(700, 30, (4, 6, 3)), rng.uniform(10, 40, (4, 6, 3))
    factor = np.linspace(0.5, 2.0, 6)
    raw, stretched = summarize(w, mu, sigma), summarize(*stretch(w, mu, sigma, factor))
    np.testing.assert_allclose(stretched["mean"], raw["mean"])
    for key in ("sigma_stoch", "sigma_pred", "sigma_tot"):
        np.testing.assert_allclose(stretched[key], factor * raw[key], rtol=1e-9)
    np.testing.assert_allclose(stretched["high"] - stretched["mean"], factor * (raw["high"] - raw["mean"]), rtol=0.01)


def test_a_bin_whose_coverage_no_stretch_reaches_takes_the_global_factor():
    """Labels that no stretched interval holds need the top of the searched range; a bin where more than 32%
    of the jets are such takes the global factor instead of the cap."""
    pt = np.linspace(400.0, 1000.0, 2000)  # 5 bins of 400 jets, 120 GeV each
    need = np.random.default_rng(6).uniform(0.8, 1.2, 2000)
    third = (pt >= 640) & (pt < 760)
    need[third & (np.arange(2000) % 2 == 0)] = 5.0  # half the jets of the third bin
    cal = calibration_in_bins(pt, need, 5)
    assert cal.factors[2] == pytest.approx(global_calibration(need).factors[0]) and cal.factors[2] < 1.3
    assert cal.factors[0] == pytest.approx(np.quantile(need[pt < 520], 0.68)) != cal.factors[2]
