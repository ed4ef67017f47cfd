"""The analysis's own pT,t spectrum as a prior on each jet's predictive density.

Training flattens pT,t(truth): the network's predictive density of a jet is, up to normalisation, the
likelihood of pT,t times the training spectrum (:mod:`topcal.train.spectrum`), nearly flat over the training
window. Without a prior, topcal's outputs are therefore the likelihood of pT,t over the training window (a
flat training prior): unbiased per bin of pT,t, but biased per bin of pT,j on a falling spectrum. With a
prior pi(pT,t) every weight draw's density p_t is multiplied by pi / (training spectrum) and normalised,

    p_t'(y) = p_t(y) r(y) / Z_t,     r = pi / pi_train,

and the predictive density is the average of the T reweighted densities. Its mean, mode, 68% and 95% shortest
intervals, sigma_stoch^2 (the average variance of the p_t'), sigma_pred^2 (the variance of their means) and
sigma_tot follow, and the per-draw means carry the statistical variations, as without a prior.

The prior is the pT,t spectrum (GeV) of top jets in the model's pT,j and |eta| window (the training spectrum
is made of such jets, so the acceptance cancels in r), as a 1-D histogram: ``FILE.root:HIST`` (read with
uproot), a ``hist`` histogram, ``(values, edges)`` or a :class:`Prior`. Both spectra are read as densities,
linear between bin centres; the prior is zero outside its edges, the training spectrum is held at its edge
values beyond its own and floored at 1e-3 of its maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from topcal.errors import InputFileError
from topcal.train.likelihood import draw_moments, grid_mode_and_bands, summarize

GRID_POINTS = 201  # per jet, over the flat-prior mean +- GRID_SIGMAS sigma_tot (0.05 sigma_tot apart)
GRID_SIGMAS = 5.0
TRAINING_FLOOR = 1e-3


@dataclass(frozen=True)
class Prior:
    """A 1-D spectrum of pT,t: bin ``values`` (any normalisation) and ``edges`` in GeV; ``source``: where
    it came from (recorded in friend files)."""

    values: np.ndarray
    edges: np.ndarray
    source: str = "(values, edges)"

    def __post_init__(self):
        values, edges = np.asarray(self.values, np.float64), np.asarray(self.edges, np.float64)
        if values.ndim != 1 or edges.shape != (len(values) + 1,):
            raise InputFileError(f"prior {self.source}: needs 1-D values and one more edge than values "
                                 f"(got {values.shape} values, {edges.shape} edges)")
        if not (np.all(np.isfinite(values)) and np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)):
            raise InputFileError(f"prior {self.source}: values and edges must be finite, edges increasing")
        if np.any(values < 0) or values.sum() <= 0:
            raise InputFileError(f"prior {self.source}: values must be >= 0 with a positive sum")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "edges", edges)

    @classmethod
    def from_input(cls, prior) -> Prior:
        """A :class:`Prior` from ``FILE.root:HIST``, a ``hist`` histogram, ``(values, edges)`` or a Prior."""
        if isinstance(prior, Prior):
            return prior
        if isinstance(prior, str):
            return _from_root(prior)
        if hasattr(prior, "axes") and hasattr(prior, "values"):
            if len(prior.axes) != 1:
                raise InputFileError(f"prior: a {len(prior.axes)}-D histogram, a 1-D one of pT,t is needed")
            return cls(prior.values(), prior.axes[0].edges, "hist histogram")
        try:
            values, edges = prior
        except (TypeError, ValueError):
            raise InputFileError(f"prior: {type(prior).__name__} is not FILE.root:HIST, a hist histogram or "
                                 f"(values, edges)") from None
        return cls(values, edges)

    def density(self, x: np.ndarray) -> np.ndarray:
        """The normalised density (1/GeV) at ``x`` (GeV): linear between bin centres, zero outside the edges."""
        d = _bin_density(self.values, self.edges)
        centres = 0.5 * (self.edges[1:] + self.edges[:-1])
        out = np.interp(x, centres, d)
        return np.where((x >= self.edges[0]) & (x <= self.edges[-1]), out, 0.0)

    def to_dict(self) -> dict:
        return {"source": self.source, "unit": "GeV", "edges": self.edges.tolist(), "values": self.values.tolist()}


def _from_root(spec: str) -> Prior:
    import uproot

    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name:
        raise InputFileError(f"--prior: {spec!r} is not FILE.root:HIST")
    try:
        with uproot.open(file) as f:
            obj = f[name]
            values, edges = obj.to_numpy()[:2] if hasattr(obj, "to_numpy") else (None, None)
    except FileNotFoundError:
        raise InputFileError(f"{file}: prior file not found") from None
    except KeyError:
        raise InputFileError(f"{spec}: no histogram {name!r} in {file}") from None
    except Exception as exc:  # uproot raises many types for files that are not ROOT
        raise InputFileError(f"{file}: cannot read the prior ({exc})") from None
    if values is None or np.ndim(values) != 1:
        raise InputFileError(f"{spec}: not a 1-D histogram")
    return Prior(values, edges, spec)


def _bin_density(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return values / np.diff(edges) / values.sum()


def training_density(counts: np.ndarray, edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The training spectrum's density at ``x``: linear between bin centres, held beyond them, floored at
    ``TRAINING_FLOOR`` of its maximum."""
    d = _bin_density(counts, edges)
    out = np.interp(x, 0.5 * (edges[1:] + edges[:-1]), d)
    return np.maximum(out, TRAINING_FLOOR * d.max())


def summaries(weights: np.ndarray, means: np.ndarray, sigmas: np.ndarray, prior: Prior | None = None,
              spectrum: tuple[np.ndarray, np.ndarray] | None = None, jets_per_block: int = 128,
              window: tuple[float, float] | None = None, moments_window: tuple[float, float] | None = None) -> dict:
    """Per-jet summaries (:func:`topcal.train.likelihood.summarize`'s keys, GeV) of T mixtures
    ``(T, n_jets, K)``, with ``draw_means`` ``(T, n_jets)``: under the flat training prior, or reweighted by
    ``prior`` over the training ``spectrum`` ``(counts, edges)`` (see the module docstring). ``window``: the
    model's label window (:attr:`topcal.train.model.TrainedModel.label_window`), which bounds the flat-prior
    mode and intervals as in :meth:`~topcal.train.model.TrainedModel.predict`; ``moments_window``
    (:attr:`~topcal.train.model.TrainedModel.moments_window`) truncates the flat-prior moments and draw means."""
    if prior is None:
        out = summarize(weights, means, sigmas, window=window, moments_window=moments_window)
        out["draw_means"] = draw_moments(weights, means, sigmas, moments_window)[0]
        return out
    if spectrum is None:
        raise ValueError("a prior needs the model's training spectrum")
    t, n = weights.shape[:2]
    keys = ("mean", "sigma_stoch", "sigma_pred", "sigma_tot", "mode", "low", "high", "low95", "high95")
    out = {k: np.empty(n) for k in keys}
    out["draw_means"] = np.empty((t, n))
    m_t = np.sum(weights * means, axis=-1)
    v_t = np.sum(weights * (sigmas**2 + means**2), axis=-1) - m_t**2
    centre = m_t.mean(axis=0)
    width = np.sqrt(np.maximum(v_t.mean(axis=0) + m_t.var(axis=0), 1e-12))
    u = np.linspace(-GRID_SIGMAS, GRID_SIGMAS, GRID_POINTS)
    for start in range(0, n, jets_per_block):
        sl = slice(start, start + jets_per_block)
        x = centre[sl, None] + u[None, :] * width[sl, None]                                  # (b, G)
        ratio = prior.density(x) / training_density(*spectrum, x)
        z = (x[None, :, :, None] - means[:, sl, None, :]) / sigmas[:, sl, None, :]         # (T, b, G, K)
        p = np.einsum("tbgk,tbk->tbg", np.exp(-0.5 * z * z), weights[:, sl] / sigmas[:, sl]) / math.sqrt(2 * math.pi)
        q = p * ratio[None]
        norm = q.sum(axis=-1, keepdims=True)
        q = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), p / p.sum(axis=-1, keepdims=True))
        mt = np.einsum("tbg,bg->tb", q, x)
        vt = np.einsum("tbg,bg->tb", q, x * x) - mt**2
        out["draw_means"][:, sl] = mt
        out["mean"][sl] = mt.mean(axis=0)
        out["sigma_stoch"][sl] = np.sqrt(np.maximum(vt.mean(axis=0), 0.0))
        out["sigma_pred"][sl] = mt.std(axis=0)
        mode, (low, high), (low95, high95) = grid_mode_and_bands(x, q.mean(axis=0), (0.68, 0.95))
        out["mode"][sl], out["low"][sl], out["high"][sl], out["low95"][sl], out["high95"][sl] = \
            mode, low, high, low95, high95
    out["sigma_tot"] = np.hypot(out["sigma_stoch"], out["sigma_pred"])
    return out
