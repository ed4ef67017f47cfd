"""Per-jet summaries of sampled mixtures against closed forms; the TensorFlow and numpy heads agree."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from topcal.train.likelihood import MIN_MASS_INSIDE, draw_moments, mixture_params_np, summarize


def test_single_gaussian_moments_mode_and_interval():
    w = np.ones((1, 3, 1))
    mu = np.array([600.0, 700.0, 800.0]).reshape(1, 3, 1)
    s = np.array([20.0, 50.0, 80.0]).reshape(1, 3, 1)
    out = summarize(w, mu, s)
    np.testing.assert_allclose(out["mean"], [600, 700, 800])
    np.testing.assert_allclose(out["sigma_stoch"], [20, 50, 80])
    np.testing.assert_allclose(out["sigma_pred"], 0)
    sigma = np.array([20.0, 50.0, 80.0])
    # the default grid (161 points over +-4 sigma_tot, 0.05 sigma apart), refined between its points
    centre = np.array([600.0, 700.0, 800.0])
    assert np.all(np.abs(out["mode"] - centre) < 0.002 * sigma)
    for (lo, hi), p in ((("low", "high"), 0.68), (("low95", "high95"), 0.95)):
        z = stats.norm.ppf(0.5 + p / 2)
        assert np.all(np.abs(out[lo] - (centre - z * sigma)) < 0.005 * sigma), (lo, out[lo])
        assert np.all(np.abs(out[hi] - (centre + z * sigma)) < 0.005 * sigma), (hi, out[hi])


def test_sigma_pred_is_the_spread_of_the_sampled_means():
    rng = np.random.default_rng(0)
    means = 650 + 10 * rng.standard_normal((2000, 1, 1))
    out = summarize(np.ones_like(means), means, np.full_like(means, 30.0))
    assert out["sigma_pred"][0] == pytest.approx(10, rel=0.05)
    assert out["sigma_stoch"][0] == pytest.approx(30)
    assert out["sigma_tot"][0] == pytest.approx(np.hypot(30, out["sigma_pred"][0]))


def test_bimodal_mixture_mode_and_equal_density_band():
    w = np.array([0.7, 0.3]).reshape(1, 1, 2)
    mu = np.array([600.0, 750.0]).reshape(1, 1, 2)
    s = np.array([25.0, 25.0]).reshape(1, 1, 2)
    out = summarize(w, mu, s)
    mean = 0.7 * 600 + 0.3 * 750
    assert out["mean"][0] == pytest.approx(mean)
    assert out["sigma_stoch"][0] == pytest.approx(np.sqrt(0.7 * (625 + 600**2) + 0.3 * (625 + 750**2) - mean**2))
    assert out["mode"][0] == pytest.approx(600, abs=0.2)
    # equal density at both ends and 68% inside
    dens = lambda x: 0.7 * stats.norm.pdf(x, 600, 25) + 0.3 * stats.norm.pdf(x, 750, 25)  # noqa: E731
    lo, hi = out["low"][0], out["high"][0]
    assert dens(lo) == pytest.approx(dens(hi), rel=0.05)  # ends within 0.02 sigma of equal density
    mass = 0.7 * (stats.norm.cdf(hi, 600, 25) - stats.norm.cdf(lo, 600, 25)) + \
        0.3 * (stats.norm.cdf(hi, 750, 25) - stats.norm.cdf(lo, 750, 25))
    assert mass == pytest.approx(0.68, abs=0.005)


def test_numpy_and_tensorflow_heads_agree():
    import tensorflow as tf

    import topcal.train.backend  # noqa: F401  (TensorFlow set up before use)
    from topcal.train.likelihood import mixture_params_tf, nll_loss

    raw = np.random.default_rng(1).standard_normal((5, 9))
    for k in (1, 3):
        r = raw[:, :2] if k == 1 else raw
        for a, b in zip(mixture_params_np(r, k, 1e-3), mixture_params_tf(tf.constant(r), k, 1e-3)):
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-6)
    # the loss is the negative log of the mixture density
    y = np.array([0.3, -1.0, 2.0, 0.0, 0.5])
    w, mu, s = mixture_params_np(raw, 3, 1e-3)
    expected = -np.log(np.sum(w * stats.norm.pdf(y[:, None], mu, s), axis=1))
    np.testing.assert_allclose(nll_loss(3, 1e-3)(tf.constant(y), tf.constant(raw)).numpy(), expected, rtol=1e-6)


def test_intervals_stay_in_the_label_window():
    """Next to the window's upper end (1000 GeV) the bands are those of the truncated density: they end at
    the window, hold 68% (95%) of the truncated Gaussian's probability, and are narrower; the mean and the
    widths do not change, and jets far from the ends keep their bands."""
    shape = (1, 2, 1)
    w, mu, s = np.ones(shape), np.array([990.0, 700.0]).reshape(shape), np.full(shape, 40.0)
    plain, cut = summarize(w, mu, s), summarize(w, mu, s, window=(400.0, 1000.0))
    for key in ("mean", "sigma_tot"):
        np.testing.assert_array_equal(plain[key], cut[key])
    np.testing.assert_allclose([cut["low"][1], cut["high"][1]], [plain["low"][1], plain["high"][1]], atol=1e-9)
    truncated = stats.truncnorm(-np.inf, (1000.0 - 990.0) / 40.0, loc=990.0, scale=40.0)
    for lo, hi, p in (("low", "high", 0.68), ("low95", "high95", 0.95)):
        assert cut[hi][0] == pytest.approx(1000.0, abs=0.6)  # the density is largest at the window's end
        # within 0.015: the grid (2 GeV apart here) counts half a step's probability at the cut
        assert truncated.cdf(cut[hi][0]) - truncated.cdf(cut[lo][0]) == pytest.approx(p, abs=0.015)
        assert cut[hi][0] - cut[lo][0] < plain[hi][0] - plain[lo][0]


def test_truncated_moments_are_those_of_the_mixture_inside_the_window():
    """draw_moments with a window: each draw's mixture truncated to it and normalised again, checked against
    a numerical integral; without a window, the plain mixture moments. summarize's moments_window moves the
    mean of a jet next to the window's end inside it and leaves the bands alone."""
    rng = np.random.default_rng(1)
    w = rng.dirichlet([1.0, 1.0, 1.0], size=(4, 5))
    mu, s = rng.uniform(300, 1100, (4, 5, 3)), rng.uniform(20, 200, (4, 5, 3))
    m, v = draw_moments(w, mu, s, (400.0, 1000.0))
    x = np.linspace(400.0, 1000.0, 60001)
    p = (w[..., None] * stats.norm.pdf(x, mu[..., None], s[..., None])).sum(axis=2)
    m_num = (p * x).sum(-1) / p.sum(-1)
    m0, v0 = draw_moments(w, mu, s)
    np.testing.assert_allclose(m0, (w * mu).sum(-1))
    held = (w * (stats.norm.cdf((1000.0 - mu) / s) - stats.norm.cdf((400.0 - mu) / s))).sum(-1).mean(0)
    inside = held >= MIN_MASS_INSIDE
    assert inside.sum() >= 3  # most of these jets are truncated; the others keep their plain moments
    np.testing.assert_allclose(m[:, inside], m_num[:, inside], atol=0.01)
    np.testing.assert_allclose(v[:, inside], ((p * x * x).sum(-1) / p.sum(-1) - m_num**2)[:, inside], rtol=1e-3)
    np.testing.assert_array_equal(m[:, ~inside], m0[:, ~inside])
    # one Gaussian at 990 GeV, sigma 50 GeV: the untruncated mean lies at 990, the truncated one well below
    one = (np.ones((3, 1, 1)), np.full((3, 1, 1), 990.0), np.full((3, 1, 1), 50.0))
    plain = summarize(*one, window=(400.0, 1000.0))
    cut = summarize(*one, window=(400.0, 1000.0), moments_window=(400.0, 1000.0))
    assert plain["mean"][0] == pytest.approx(990.0)
    assert cut["mean"][0] == pytest.approx(990.0 - 50.0 * stats.norm.pdf(0.2) / stats.norm.cdf(0.2), abs=0.01)
    assert cut["sigma_stoch"][0] < plain["sigma_stoch"][0]
    np.testing.assert_array_equal(cut["low"], plain["low"])
    np.testing.assert_array_equal(cut["high"], plain["high"])
    assert cut["sigma_stoch_untruncated"][0] == pytest.approx(plain["sigma_stoch"][0])
    assert cut["mean_untruncated"][0] == pytest.approx(990.0)


def test_a_jet_predicted_outside_the_label_window_keeps_its_untruncated_moments():
    """A jet predicted at 1250 +- 60 GeV (window 400..1000 GeV, a jet outside the training range) is not
    pinned to the window's end with a tiny width; every draw of a jet is treated alike, so draws on either
    side of the rule do not inflate sigma_pred; float32 inputs give the float64 answer."""
    window = (400.0, 1000.0)
    out = (np.ones((4, 1, 1)), np.full((4, 1, 1), 1250.0), np.full((4, 1, 1), 60.0))
    pred = summarize(*out, window=window, moments_window=window)
    assert pred["mean"][0] == pytest.approx(1250.0) and pred["sigma_stoch"][0] == pytest.approx(60.0)
    # two draws either side of 50% inside: the jet's average decides for both
    mixed = (np.ones((2, 1, 1)), np.array([960.0, 1020.0]).reshape(2, 1, 1), np.full((2, 1, 1), 50.0))
    m, _ = draw_moments(*mixed, window)
    assert m[0, 0] < 960.0 and m[1, 0] < 1000.0  # 0.79 and 0.35 inside: both truncated
    far = (np.ones((2, 1, 1)), np.array([1060.0, 1200.0]).reshape(2, 1, 1), np.full((2, 1, 1), 50.0))
    np.testing.assert_array_equal(draw_moments(*far, window)[0], [[1060.0], [1200.0]])  # 0.06 inside on average
    low = tuple(np.full((1, 1, 1), v, np.float32) for v in (1.0, 250.0, 20.0))
    m32, v32 = draw_moments(*low, (200.0, np.inf))
    m64, v64 = draw_moments(*(x.astype(np.float64) for x in low), (200.0, np.inf))
    assert m32[0, 0] == pytest.approx(m64[0, 0]) and v32[0, 0] == pytest.approx(v64[0, 0])
