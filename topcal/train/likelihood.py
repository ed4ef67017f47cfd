"""Likelihood heads: a Gaussian or a K-component Gaussian mixture on top of the network's raw outputs.

Raw output layout per jet: Gaussian ``[mu, s]``; mixture ``[a_1..a_K, mu_1..mu_K, s_1..s_K]``. Weights are
``softmax(a)``, widths ``softplus(s) + floor``. The loss is the mean negative log-likelihood of the label,
computed with log-sum-exp. Everything is in the units of the standardised label; :mod:`topcal.train.model`
converts to GeV. The numpy half turns T weight samples of mixture parameters into the per-jet summaries of
docs/design.md section 3 (mean, sigma_stoch, sigma_pred, sigma_tot, mode, 68% interval).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def n_outputs(components: int) -> int:
    return 2 if components == 1 else 3 * components


def mixture_params_tf(raw, components: int, sigma_floor: float):
    """(weights, means, sigmas), each ``(batch, K)``, from raw outputs (TensorFlow)."""
    import tensorflow as tf

    if components == 1:
        weights = tf.ones_like(raw[:, :1])
        return weights, raw[:, :1], tf.nn.softplus(raw[:, 1:2]) + sigma_floor
    k = components
    return tf.nn.softmax(raw[:, :k], axis=-1), raw[:, k:2 * k], tf.nn.softplus(raw[:, 2 * k:]) + sigma_floor


def nll_loss(components: int, sigma_floor: float):
    """Keras loss: mean over the batch of -log p(y | mixture)."""
    import tensorflow as tf

    def loss(y_true, raw):
        w, mu, sigma = mixture_params_tf(raw, components, sigma_floor)
        y = tf.reshape(tf.cast(y_true, raw.dtype), (-1, 1))
        z = (y - mu) / sigma
        log_comp = tf.math.log(w + 1e-12) - 0.5 * z * z - tf.math.log(sigma) - LOG_SQRT_2PI
        return -tf.reduce_logsumexp(log_comp, axis=-1)

    return loss


def mixture_params_np(raw: np.ndarray, components: int, sigma_floor: float):
    """The numpy twin of :func:`mixture_params_tf` for ``raw`` of shape ``(..., n_outputs)``."""
    if components == 1:
        return np.ones_like(raw[..., :1]), raw[..., :1], _softplus(raw[..., 1:2]) + sigma_floor
    k = components
    a = raw[..., :k]
    w = np.exp(a - a.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)
    return w, raw[..., k:2 * k], _softplus(raw[..., 2 * k:]) + sigma_floor


def _softplus(x):
    return np.logaddexp(0.0, x)


MIN_MASS_INSIDE = 0.1  # draw_moments truncates a jet's mixtures when they hold this much inside the window


def draw_moments(weights: np.ndarray, means: np.ndarray, sigmas: np.ndarray,
                 window: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mean and variance ``(T, n_jets)`` (GeV, GeV^2) of each of the T mixtures ``(T, n_jets, K)``; with
    ``window`` (GeV) those of each mixture truncated to it and normalised again (every Gaussian component
    truncated in closed form: with a = (lo - mu) / sigma, b = (hi - mu) / sigma and Z = Phi(b) - Phi(a), its
    mass is Z, its mean mu + sigma (phi(a) - phi(b)) / Z). A jet whose mixtures hold on average less than
    ``MIN_MASS_INSIDE`` of their probability inside the window (a jet predicted outside the training range)
    keeps the untruncated moments of every draw, so that its draws are treated alike."""
    weights, means, sigmas = (np.asarray(x, dtype=np.float64) for x in (weights, means, sigmas))
    m_t = np.sum(weights * means, axis=-1)
    v_t = np.sum(weights * (sigmas**2 + means**2), axis=-1) - m_t**2
    if window is None:
        return m_t, v_t
    a, b = (window[0] - means) / sigmas, (window[1] - means) / sigmas
    phi_a, phi_b = np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi), np.exp(-0.5 * b * b) / math.sqrt(2 * math.pi)
    with np.errstate(invalid="ignore"):  # inf * 0 at an open end of the window
        pdf_term_a = np.where(np.isfinite(a), a * phi_a, 0.0)
        pdf_term_b = np.where(np.isfinite(b), b * phi_b, 0.0)
    mass = weights * (ndtr(b) - ndtr(a))
    first = weights * (means * (ndtr(b) - ndtr(a)) + sigmas * (phi_a - phi_b))
    second = weights * ((means**2 + sigmas**2) * (ndtr(b) - ndtr(a))
                        + 2 * means * sigmas * (phi_a - phi_b) + sigmas**2 * (pdf_term_a - pdf_term_b))
    z = mass.sum(axis=-1)
    inside = np.broadcast_to(z.mean(axis=0) >= MIN_MASS_INSIDE, z.shape)
    safe = np.where(inside, z, 1.0)
    m_w = first.sum(axis=-1) / safe
    v_w = second.sum(axis=-1) / safe - m_w**2
    return np.where(inside, m_w, m_t), np.where(inside, np.maximum(v_w, 0.0), v_t)


def summarize(weights: np.ndarray, means: np.ndarray, sigmas: np.ndarray, grid_points: int = 161,
              interval: float = 0.68, grid_sigmas: float = 4.0, outer_interval: float = 0.95,
              window: tuple[float, float] | None = None,
              moments_window: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """Per-jet summaries from T samples of K-component mixtures, arrays shaped ``(T, n_jets, K)``.

    ``mean`` = average over samples of the mixture mean; ``sigma_stoch``^2 = average of the mixture
    variance; ``sigma_pred``^2 = variance over samples of the mixture mean; ``sigma_tot`` their quadrature
    sum. ``mode`` and the ``interval`` band (``low``, ``high``: the shortest interval holding ``interval``
    of the probability, so with equal density at both ends; the highest-density interval when the density
    is unimodal) come from the predictive density, the average of the T mixtures, on a grid of
    ``grid_points`` over mean +- ``grid_sigmas`` sigma_tot, refined between the grid points (the vertex of
    a parabola through the density at the peak, and through the band's length at its shortest; with the
    default grid, 0.05 sigma_tot apart, within 0.005 sigma_tot of the exact values for a Gaussian);
    ``low95``, ``high95`` the same for ``outer_interval``. With ``window`` (GeV, the label window the network
    was trained in) the mode and the bands come from the predictive density truncated to it: the labels of
    the training jets all lie inside, so probability outside is no interval's (without it, the intervals
    of jets next to the window's ends over-cover).

    With ``moments_window`` (GeV, the label window of a model that records ``mean_in_label_window``) the
    moments ``mean``, ``sigma_stoch`` and ``sigma_pred`` are those of each draw's mixture truncated to it
    (:func:`draw_moments`): no label lies outside, and the untruncated mean of a jet next to an end of the
    window is pulled outwards by the probability beyond it (pT,j 900..1000 GeV at 2k training jets: 15 GeV
    above pT,t(truth) on average, 5 GeV below when truncated). The grid of the mode and the bands stays
    centred on the untruncated moments, so the bands do not depend on it. ``mean_untruncated`` and
    ``sigma_stoch_untruncated`` are always those of the untruncated mixtures (:func:`untruncated`).
    """
    m_t, v_t = draw_moments(weights, means, sigmas)                           # (T, n)
    centre, width = m_t.mean(axis=0), np.hypot(np.sqrt(np.maximum(v_t.mean(axis=0), 0.0)), m_t.std(axis=0))
    mode, (low, high), (low95, high95) = _mode_and_interval(weights, means, sigmas, centre, width, grid_points,
                                                            (interval, outer_interval), grid_sigmas, window)
    untruncated = {"mean_untruncated": m_t.mean(axis=0),
                   "sigma_stoch_untruncated": np.sqrt(np.maximum(v_t.mean(axis=0), 0.0))}
    if moments_window is not None:
        m_t, v_t = draw_moments(weights, means, sigmas, moments_window)
    sigma_stoch = np.sqrt(np.maximum(v_t.mean(axis=0), 0.0))
    sigma_pred = m_t.std(axis=0)
    return {"mean": m_t.mean(axis=0), "sigma_stoch": sigma_stoch, "sigma_pred": sigma_pred,
            "sigma_tot": np.hypot(sigma_stoch, sigma_pred),
            "mode": mode, "low": low, "high": high, "low95": low95, "high95": high95, **untruncated}


def untruncated(pred: dict, key: str) -> np.ndarray:
    """``pred[key]`` (``"mean"`` or ``"sigma_stoch"``) of the untruncated mixtures (:func:`summarize`'s
    ``<key>_untruncated``; ``pred[key]`` itself for summaries without them). Comparisons between models of
    which only some truncate to a label window (``sigma_cal`` between a nominal and a smeared-label model,
    label-shift trainings) take these, so both sides are alike."""
    return pred.get(f"{key}_untruncated", pred[key])


def sigma_cal(sigma_stoch: np.ndarray, sigma_stoch_reference: np.ndarray) -> np.ndarray:
    """Calibration uncertainty sqrt(sigma_stoch^2 - sigma_stoch,0^2), zero where the reference is wider."""
    return np.sqrt(np.maximum(sigma_stoch**2 - sigma_stoch_reference**2, 0.0))


def predictive_density(x: np.ndarray, weights: np.ndarray, means: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Density of the sample-averaged mixture at points ``x`` (n_jets, G); parameters (T, n_jets, K)."""
    w, mu, s = _per_jet(weights), _per_jet(means), _per_jet(sigmas)
    z = ((x[:, :, None] - mu[:, None, :]) / s[:, None, :]).astype(np.float32)
    return _mixture_sum(z, w / s, weights.shape[0])


def grid_density(centre: np.ndarray, width: np.ndarray, u: np.ndarray, weights: np.ndarray, means: np.ndarray,
                 sigmas: np.ndarray) -> np.ndarray:
    """:func:`predictive_density` on the grids ``centre + u x width`` (one per jet, ``u`` shared): each
    component's standardised distance is ``a + u b``, two float64 numbers per jet and component, so the
    (jets, G, T x K) block is built in float32 directly."""
    w, mu, s = _per_jet(weights), _per_jet(means), _per_jet(sigmas)
    a = ((centre[:, None] - mu) / s).astype(np.float32)
    b = (width[:, None] / s).astype(np.float32)
    z = u.astype(np.float32)[None, :, None] * b[:, None, :]
    z += a[:, None, :]
    return _mixture_sum(z, w / s, weights.shape[0])


def _per_jet(p: np.ndarray) -> np.ndarray:
    """(T, n_jets, K) -> (n_jets, T x K): every jet's T x K mixture components in a row."""
    return np.moveaxis(p, 0, 1).reshape(p.shape[1], -1)


def _mixture_sum(z: np.ndarray, w_over_s: np.ndarray, samples: int) -> np.ndarray:
    """sum_k w_k / s_k phi(z_k) / T for standardised distances ``z`` (n, G, T x K), overwritten. float32
    (relative precision 1e-7, far below the grid spacing) halves the cost of the exponentials."""
    coef = (w_over_s / (math.sqrt(2 * math.pi) * samples)).astype(np.float32)
    np.square(z, out=z)
    z *= -0.5
    np.exp(z, out=z)
    return np.einsum("ngk,nk->ng", z, coef).astype(np.float64)


def _mode_and_interval(weights, means, sigmas, centre, width, grid_points, intervals, grid_sigmas, window=None,
                       jets_per_block=256):
    """The mode and, for each probability in ``intervals``, the shortest band (low, high) holding it; with
    ``window`` (low, high), of the density truncated to it (a grid wholly outside: not truncated)."""
    n = centre.shape[0]
    mode = np.empty(n)
    bands = [(np.empty(n), np.empty(n)) for _ in intervals]
    # jets whose grid reaches at least one grid-sigma into the window (others, far outside: extrapolations
    # whose density is not truncated)
    truncated = np.zeros(n, dtype=bool)
    u = np.linspace(-grid_sigmas, grid_sigmas, grid_points)
    for start in range(0, n, jets_per_block):
        sl = slice(start, start + jets_per_block)
        x = centre[sl, None] + u[None, :] * width[sl, None]
        p = grid_density(centre[sl], width[sl], u, weights[:, sl], means[:, sl], sigmas[:, sl])
        if window is not None:
            inside = (x >= window[0]) & (x <= window[1])
            truncated[sl] = inside.sum(axis=1) > (grid_points - 1) / (2 * grid_sigmas)
            p = np.where(inside | ~truncated[sl, None], p, 0.0)
        mode[sl], *found = grid_mode_and_bands(x, p, intervals)
        for (low, high), band in zip(bands, found):
            low[sl], high[sl] = band
    if window is not None:  # the interpolation between grid points stops at the window's ends
        for low, high in bands:
            np.clip(low, window[0], None, out=low, where=truncated & (low < window[1]))
            np.clip(high, None, window[1], out=high, where=truncated & (high > window[0]))
    return mode, *bands


def grid_mode_and_bands(x: np.ndarray, p: np.ndarray, intervals) -> tuple:
    """The mode and, for each probability in ``intervals``, the shortest band ``(low, high)`` of densities
    ``p`` on equally spaced grids ``x`` (one row per jet), refined between the grid points."""
    peak = np.argmax(p, axis=1)
    mode = x[np.arange(x.shape[0]), peak] + _vertex(p, peak) * (x[:, 1] - x[:, 0])
    return (mode, *(_shortest_band(x, p, interval) for interval in intervals))


def _shortest_band(x: np.ndarray, p: np.ndarray, interval: float) -> tuple[np.ndarray, np.ndarray]:
    """The shortest band [low, high] holding ``interval`` of the probability of densities ``p`` on grids
    ``x`` (rows). Its two ends have equal density (the condition for the shortest band), and for a unimodal
    density it is the HPD interval. The upper end is interpolated in the cumulative distribution, so the
    width is accurate beyond the grid spacing."""
    rows, g = x.shape
    step = x[:, 1] - x[:, 0]
    mass = p / p.sum(axis=1, keepdims=True)
    cdf = np.cumsum(mass, axis=1) - 0.5 * mass                      # cdf at the grid points
    offset = 2.0 * np.arange(rows)[:, None]                         # rows apart: one batched search
    target = cdf + interval
    end = np.searchsorted((cdf + offset).ravel(), (target + offset).ravel()).reshape(rows, g)
    end -= g * np.arange(rows)[:, None]
    valid = (end < g) & (end > 0)
    j = np.clip(end, 1, g - 1)
    c0 = np.take_along_axis(cdf, j - 1, axis=1)
    c1 = np.take_along_axis(cdf, j, axis=1)
    frac = np.clip((target - c0) / np.maximum(c1 - c0, 1e-300), 0.0, 1.0)
    upper = np.take_along_axis(x, j - 1, axis=1) + frac * step[:, None]
    span = np.where(valid, upper - x, np.inf)
    start = np.argmin(span, axis=1)
    r = np.arange(rows)
    # between grid points: the vertex of the parabola through the span at the best start and its neighbours
    shift = _vertex(-np.where(np.isfinite(span), span, np.nan), start)
    side = np.clip(start + np.sign(shift).astype(int), 0, g - 1)
    frac = np.abs(shift)
    low = x[r, start] + shift * step
    high = upper[r, start] + frac * (upper[r, side] - upper[r, start])
    return low, high


def _vertex(y: np.ndarray, i: np.ndarray) -> np.ndarray:
    """The offset (in grid steps, within +-0.5) of the maximum of the parabola through ``y`` at columns
    ``i - 1``, ``i``, ``i + 1`` of each row; 0 at the edges, where a neighbour is missing, or when not a
    maximum."""
    rows, g = y.shape
    r = np.arange(rows)
    inner = (i > 0) & (i < g - 1)
    j = np.clip(i, 1, g - 2)
    y0, y1, y2 = y[r, j - 1], y[r, j], y[r, j + 1]
    curv = y0 - 2.0 * y1 + y2
    with np.errstate(invalid="ignore", divide="ignore"):
        off = 0.5 * (y0 - y2) / curv
    ok = inner & np.isfinite(off) & (curv < 0)
    return np.where(ok, np.clip(off, -0.5, 0.5), 0.0)
