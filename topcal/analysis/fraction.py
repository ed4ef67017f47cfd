"""The fraction of tops with pT,t above a threshold, from a binned profile-likelihood fit (pyhf) of a calibrated pT.

The observable is a per-jet calibrated pT in GeV: topcal's ``ptPred``, or the fat jet's pT with a linear
correction a + b pT,j (:func:`linear_observable`). Simulated jets (the "MC", never seen by the network) give,
with ``hist``, two templates of the observable: jets whose matched top has pT,t above ``threshold`` ("high")
and the others ("low"). The model (:func:`build_model`):

* ``high`` x ``norm`` x ``ratio`` + ``low`` x ``norm``; ``ratio`` (the parameter of interest) scales the high
  component against the low one, ``norm`` (free) the total;
* the fraction is f = ratio H / (ratio H + L), H and L the MC's selected jets of each component: monotone in
  ``ratio``, so the 68% interval of ``ratio`` (:func:`fit`: HESSE, or MINOS) maps to f's;
* one ``histosys`` nuisance parameter per variation (Gaussian constraint, fully correlated across jets and bins):
  every field pair of the observable (:class:`Observable`: the detector sources, the statistical
  eigen-variations ``stat<k>``, the label shift sources), each template filled with the varied value of every jet;
* ``staterror``: the MC's own statistics per bin.

The bins (``EDGES_GEV``) are 100 GeV wide from 400 to 900 GeV, and the last holds every jet above 900 GeV:
the flat-prior ptPred piles up just below the upper edge of the training labels (1000 GeV), so a narrower bin
there empties under a coherent shift of a few per cent, which a histosys template, extrapolated linearly beyond
+-1 sigma, cannot follow (the yield goes negative, and the Poisson likelihood of an empty data bin has no
maximum there). Bins are merged with their neighbours (:func:`merge_edges`) until each holds ``min_count`` MC
jets (:func:`templates`), and each nuisance parameter is bounded where its variation alone keeps every bin
positive (:func:`nuisance_bounds`). A fit whose expected yields are not all positive counts as failed
(:func:`fit`).

``independent=True`` treats every uncertainty as independent per jet instead: no histosys; per bin, the
variance of the count when each jet moves on its own, sum over jets and variations of the squared change of the
jet's bin indicator (the mean of up and down). It is a sum over jets, so for ``expected_jets`` data jets it is
the MC's sum times ``expected_jets`` / (MC jets), added in quadrature to the staterror.

Pseudo-experiments (:func:`pseudo_experiments`) draw, per experiment, a true value theta ~ N(0, 1) for every
nuisance parameter and Poisson weights for the jets of a pool (other events than the MC's). A detector source
moves each pool jet by theta times its change in a sample generated with the source's scale at +1 sigma
(same events: :func:`topcal.analysis.jets.paired`); a variation without such a sample (stat<k>, label shifts)
by theta times its own half up-down difference. The truth is the pool's fraction of selected jets above the
threshold; the coverage is the fraction of experiments whose 68% interval contains it. The pool's jets get
independent Poisson weights: use one jet per event (:func:`topcal.analysis.jets.selected`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import hist
import numpy as np

THRESHOLD_GEV = 800.0
EDGES_GEV = (400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 5000.0)  # the last bin: every jet above 900 GeV
MIN_EXPECTED_PER_BIN = 10.0  # data jets expected in a bin at the least (:func:`min_count`)
STAT = re.compile(r"ptPred_(stat\d+)\Z")
UP = re.compile(r"ptPred_(\w+)Up\Z")


@dataclass
class Observable:
    """A per-jet calibrated pT (GeV) and its variations ``{name: (up, down)}`` (GeV per jet)."""

    values: np.ndarray
    variations: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def take(self, mask: np.ndarray) -> Observable:
        return Observable(self.values[mask], {k: (u[mask], d[mask]) for k, (u, d) in self.variations.items()})


def topcal_observable(table: dict[str, np.ndarray]) -> Observable:
    """``ptPred`` with every variation the table holds: ``stat<k>`` (ptPred +- ptPred_stat<k>) and each
    ``ptPred_<name>Up``/``Down`` pair (detector sources, label shift sources)."""
    x = np.asarray(table["ptPred"], np.float64)
    out = {}
    for key, value in table.items():
        if m := STAT.match(key):
            s = np.asarray(value, np.float64)
            out[m.group(1)] = (x + s, x - s)
        elif (m := UP.match(key)) and f"ptPred_{m.group(1)}Down" in table:
            out[m.group(1)] = (np.asarray(value, np.float64),
                               np.asarray(table[f"ptPred_{m.group(1)}Down"], np.float64))
    return Observable(x, out)


def linear_observable(table: dict[str, np.ndarray], a: float, b: float) -> Observable:
    """The fat jet's pT with the linear correction a + b pT,j (GeV), varied by the detector sources
    (``pt_<source>Up``/``Down``) and by the label shift sources as relative shifts (the ratio of the table's
    ``ptPred_<name>Up``/``Down`` to ``ptPred`` for names without a ``pt_<name>Up``)."""
    x = a + b * np.asarray(table["pt"], np.float64)
    out = {}
    for key, value in table.items():
        if (m := UP.match(key)) and f"ptPred_{m.group(1)}Down" in table:
            name = m.group(1)
            if f"pt_{name}Up" in table:
                out[name] = (a + b * np.asarray(table[f"pt_{name}Up"]), a + b * np.asarray(table[f"pt_{name}Down"]))
            else:
                pred = np.asarray(table["ptPred"], np.float64)
                out[name] = (x * value / pred, x * table[f"ptPred_{name}Down"] / pred)
    return Observable(x, out)


def merge_edges(values: np.ndarray, edges, min_count: int) -> tuple[float, ...]:
    """``edges`` (GeV) with adjacent bins merged, from low to high pT, until each bin holds at least
    ``min_count`` of ``values``; a short last bin joins the one before it. Bins stay contiguous, the outer
    edges are kept."""
    counts = np.histogram(values, edges)[0]
    out, filled = [edges[0]], 0
    for count, hi in zip(counts, edges[1:]):
        filled += count
        if filled >= max(min_count, 1):
            out.append(hi)
            filled = 0
    if len(out) == 1:
        return (float(edges[0]), float(edges[-1]))
    out[-1] = edges[-1]  # what is left after the last full bin joins it
    return tuple(float(e) for e in out)


def min_count(mc_jets: int, expected_jets: float, per_bin: float = MIN_EXPECTED_PER_BIN) -> int:
    """The MC jets a bin needs so that ``per_bin`` data jets are expected in it, out of ``expected_jets``
    selected data jets and ``mc_jets`` selected MC jets."""
    return int(np.ceil(per_bin * mc_jets / expected_jets))


def histogram(values: np.ndarray, edges, weights: np.ndarray | None = None) -> np.ndarray:
    """Counts of ``values`` (GeV) in the bins ``edges`` (under- and overflow dropped), with ``hist``."""
    h = hist.Hist(hist.axis.Variable(edges, name="pt", label="calibrated $p_T$ [GeV]"), storage=hist.storage.Weight())
    h.fill(values, weight=weights)
    return h.values()


@dataclass
class Templates:
    """MC templates per component ("high", "low"): nominal counts, (up, down) counts per variation, the per-jet
    independent variance per bin, and the selected jets of each component (H, L)."""

    nominal: dict[str, np.ndarray]
    variations: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
    independent_var: dict[str, np.ndarray]
    totals: dict[str, int]
    edges: tuple[float, ...]

    def fraction(self, ratio):
        """f = ratio H / (ratio H + L) for the fit parameter ``ratio``."""
        h, lo = self.totals["high"], self.totals["low"]
        return ratio * h / (ratio * h + lo)


def components(truth: np.ndarray, threshold: float = THRESHOLD_GEV) -> dict[str, np.ndarray]:
    """The jets of each component by pT,t(truth) (GeV)."""
    high = np.asarray(truth) > threshold
    return {"high": high, "low": ~high}


def templates(obs: Observable, truth: np.ndarray, threshold: float = THRESHOLD_GEV, edges=EDGES_GEV,
              min_count: int = 0) -> Templates:
    """The MC templates of ``obs`` (selected jets only) split by pT,t(truth) ``truth`` at ``threshold`` (GeV),
    in ``edges`` merged until each bin holds ``min_count`` MC jets (:func:`merge_edges`)."""
    edges = merge_edges(obs.values, edges, min_count)
    nominal, variations, indep, totals = {}, {}, {}, {}
    n_bins = len(edges) - 1
    for comp, mask in components(truth, threshold).items():
        o = obs.take(mask)
        nominal[comp] = histogram(o.values, edges)
        totals[comp] = int(mask.sum())
        variations[comp] = {k: (histogram(u, edges), histogram(d, edges)) for k, (u, d) in o.variations.items()}
        var = np.zeros(n_bins)
        b0 = _bin(o.values, edges)
        for u, d in o.variations.values():
            for moved in (_bin(u, edges), _bin(d, edges)):
                change = (moved != b0)
                var += 0.5 * (np.bincount(b0[change & (b0 >= 0)], minlength=n_bins)
                              + np.bincount(moved[change & (moved >= 0)], minlength=n_bins))[:n_bins]
        indep[comp] = var
    return Templates(nominal, variations, indep, totals, tuple(edges))


def _bin(values: np.ndarray, edges) -> np.ndarray:
    """The bin index of each value, -1 outside the edges."""
    i = np.searchsorted(edges, values, side="right") - 1
    return np.where((i >= 0) & (i < len(edges) - 1), i, -1)


def build_model(t: Templates, expected_jets: float, independent: bool = False):
    """The pyhf model (see the module docstring) with the templates scaled to ``expected_jets`` selected jets
    and bins without MC jets dropped; returns ``(model, bins)`` (the kept bin mask)."""
    import pyhf

    total = t.totals["high"] + t.totals["low"]
    scale = expected_jets / total
    keep = (t.nominal["high"] + t.nominal["low"]) > 0
    samples = []
    for comp in ("high", "low"):
        nom = t.nominal[comp][keep]
        # MC statistics scale as scale^2 x counts; per-jet independent variations of the data as scale x counts
        var = scale**2 * nom + (scale * t.independent_var[comp][keep] if independent else 0.0)
        mods = [{"name": "norm", "type": "normfactor", "data": None},
                {"name": "mcstat", "type": "staterror", "data": list(np.sqrt(var))}]
        if comp == "high":
            mods.append({"name": "ratio", "type": "normfactor", "data": None})
        if not independent:
            for name, (up, down) in t.variations[comp].items():
                mods.append({"name": name, "type": "histosys",
                             "data": {"hi_data": list(scale * up[keep]), "lo_data": list(scale * down[keep])}})
        samples.append({"name": comp, "data": list(scale * nom), "modifiers": mods})
    parameters = [{"name": "ratio", "bounds": [[0.0, 10.0]], "inits": [1.0]},
                  {"name": "norm", "bounds": [[0.0, 10.0]], "inits": [1.0]}]
    if not independent:
        parameters += [{"name": name, "bounds": [list(bounds)]}
                       for name, bounds in nuisance_bounds(t, keep).items()]
    spec = {"channels": [{"name": "calibrated_pt", "samples": samples}], "parameters": parameters}
    return pyhf.Model(spec, poi_name="ratio"), keep


def nuisance_bounds(t: Templates, keep: np.ndarray, limit: float = 5.0, margin: float = 0.9) -> dict:
    """Per variation, the range of its nuisance parameter (at most +-``limit``) within which it alone keeps
    ``margin`` of the way to a zero MC yield in every kept bin: beyond +-1 histosys extrapolates linearly,
    nominal + |theta| (varied - nominal), which reaches zero where a bin loses jets. There a data bin with
    counts has no finite likelihood and MIGRAD loses its way."""
    nom = sum(t.nominal[c][keep] for c in t.nominal)
    out = {}
    for name in t.variations["high"]:
        sides = []
        for side in (0, 1):  # up, down
            varied = sum(t.variations[c][name][side][keep] for c in t.nominal)
            loss = nom - varied
            reach = np.min(nom[loss > 0] / loss[loss > 0]) if np.any(loss > 0) else np.inf
            sides.append(float(min(limit, margin * reach)))
        out[name] = (-sides[1], sides[0])
    return out


class FitFailed(RuntimeError):
    """The minimiser found no valid minimum, or one with a non-positive expected yield."""


def fit(model, counts: np.ndarray, minos: bool = False) -> tuple[float, float, float]:
    """The fitted ``ratio`` and its 68% interval for the observed ``counts``: from the curvature of the profile
    likelihood at its minimum (HESSE), or, with ``minos``, where twice the profiled NLL rises by 1 (MINOS; on
    the toys of ``tests/test_analysis.py`` the two agree to a few per cent of the width, at twice the cost).
    See :func:`fit_detail`."""
    r = fit_detail(model, counts, minos)
    return r["ratio"], r["low"], r["high"]


def fit_detail(model, counts: np.ndarray, minos: bool = False, max_calls: int = 20_000) -> dict:
    """:func:`fit` with the way that succeeded: ``{"ratio", "low", "high", "strategy"}``. MIGRAD strategy 0
    first (``strategy`` 0); when it fails, strategy 1 (a more careful MIGRAD, 1); when that fails too, strategy 1
    started from a fit with the histosys nuisance parameters fixed at 0 (2). At most ``max_calls`` likelihood
    calls each. Raises :class:`FitFailed` when all fail or the minimum has a non-positive expected yield in a
    bin (the likelihood of linearly extrapolated templates is unbounded there)."""
    import pyhf

    data = np.concatenate([counts, model.config.auxdata])
    init = model.config.suggested_init()
    errors = []
    for attempt in (0, 1, 2):
        pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(verbose=0, tolerance=0.01, strategy=min(attempt, 1),
                                                                  maxiter=max_calls))
        try:
            if attempt == 2:
                fixed = list(model.config.suggested_fixed())
                for name, kind in model.config.modifiers:
                    if kind == "histosys":
                        fixed[model.config.par_slice(name)] = [True]
                init = list(pyhf.infer.mle.fit(data, model, fixed_params=fixed))
            pars, res = pyhf.infer.mle.fit(data, model, init_pars=init, return_result_obj=True)
        except (AssertionError, pyhf.exceptions.FailedMinimization) as exc:
            errors.append(f"{attempt}: {str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__}")
            continue
        if np.all(model.expected_actualdata(pars) > 0):
            break
        errors.append(f"{attempt}: non-positive expected yield at the minimum")
    else:
        raise FitFailed("; ".join(errors))
    strategy = attempt
    m = res.minuit
    poi = model.config.poi_index
    value = float(m.values[poi])
    if not minos:
        m.hesse()
        err = float(m.errors[poi])
        return {"ratio": value, "low": value - err, "high": value + err, "strategy": strategy}
    m.minos(poi)
    err = m.merrors[m.parameters[poi]]
    return {"ratio": value, "low": value + float(err.lower), "high": value + float(err.upper), "strategy": strategy}


@dataclass
class Experiment:
    """The pool of a pseudo-experiment study: the selected pool jets' observable, their pT,t(truth) (GeV),
    and for each detector source with a shifted sample the jets' observable there (``truly_shifted``)."""

    obs: Observable
    truth: np.ndarray
    truly_shifted: dict[str, np.ndarray] = field(default_factory=dict)

    def shifted_values(self, theta: dict[str, float]) -> np.ndarray:
        """The observable with every nuisance parameter at ``theta`` (see the module docstring)."""
        x = self.obs.values.copy()
        for name, th in theta.items():
            if name in self.truly_shifted:
                x += th * (self.truly_shifted[name] - self.obs.values)
            else:
                up, down = self.obs.variations[name]
                x += th * 0.5 * (up - down)
        return x


def pseudo_experiments(analyses: dict[str, tuple[Experiment, Templates, bool]], n: int, expected_jets: float,
                       seed: int = 0, threshold: float = THRESHOLD_GEV, first: int = 0,
                       shifts: bool = True) -> dict[str, dict]:
    """``n`` pseudo-experiments of about ``expected_jets`` selected jets each, the same draws for every analysis
    ``{name: (pool, MC templates, independent)}`` (the pools must hold the same jets in the same order).
    ``shifts=False``: every true theta at 0 (the nominal pool with Poisson weights only), the same weights.

    Per analysis: the truth fraction, per experiment the fitted fraction and its 68% interval (or the reason the
    fit failed: it counts as not covering), and :func:`summarise`'s figures."""
    pool0 = next(iter(analyses.values()))[0]
    names = sorted({k for pool, _, _ in analyses.values() for k in pool.obs.variations})
    truth_f = float(np.mean(components(pool0.truth, threshold)["high"]))
    models = {a: build_model(t, expected_jets, independent) for a, (_, t, independent) in analyses.items()}
    out = {a: {"truth": truth_f, "fits": []} for a in analyses}
    for i in range(first, first + n):
        rng = np.random.default_rng([seed, i])  # experiment i is the same in any split of the study
        theta = dict(zip(names, rng.standard_normal(len(names))))
        weights = rng.poisson(expected_jets / len(pool0.truth), len(pool0.truth)).astype(float)
        for a, (pool, t, _) in analyses.items():
            model, keep = models[a]
            x = pool.shifted_values({k: v for k, v in theta.items() if shifts and k in pool.obs.variations})
            counts = histogram(x, t.edges, weights)[keep]
            try:
                r = fit_detail(model, counts)
            except (FitFailed, ValueError) as exc:  # counts as not covering, and is reported
                out[a]["fits"].append({"experiment": i, "failed": str(exc)[:200]})
                continue
            out[a]["fits"].append({"experiment": i, "f": float(t.fraction(r["ratio"])),
                                   "low": float(t.fraction(r["low"])), "high": float(t.fraction(r["high"])),
                                   "strategy": r["strategy"]})
    return {a: summarise(res) for a, res in out.items()}


def summarise(res: dict) -> dict:
    """Coverage (failed fits count as not covering), its binomial error, the failed fits, the fits that needed
    MIGRAD strategy 1, the mean and median half-width of the interval on the fraction, the mean fitted fraction
    and the pull width of one analysis's ``{"truth": f, "fits": [...]}`` (fits of several runs may be
    concatenated first)."""
    ok = [f for f in res["fits"] if "f" in f]
    covered = np.array([f["low"] <= res["truth"] <= f["high"] for f in ok] + [False] * (len(res["fits"]) - len(ok)))
    res["experiments"] = len(res["fits"])
    res["failed"] = len(res["fits"]) - len(ok)
    res["retried"] = sum(f.get("strategy", 0) > 0 for f in ok)
    res["staged"] = sum(f.get("strategy", 0) > 1 for f in ok)
    res["mean_half_width"] = float(np.mean([(f["high"] - f["low"]) / 2 for f in ok])) if ok else float("nan")
    res["coverage"] = float(covered.mean()) if len(covered) else float("nan")
    res["coverage_error"] = float(np.sqrt(res["coverage"] * (1 - res["coverage"]) / max(len(covered), 1)))
    res["half_width"] = float(np.median([(f["high"] - f["low"]) / 2 for f in ok])) if ok else float("nan")
    res["mean_f"] = float(np.mean([f["f"] for f in ok])) if ok else float("nan")
    res["pull_width"] = float(np.std([(f["f"] - res["truth"]) / max((f["high"] - f["low"]) / 2, 1e-12)
                                      for f in ok])) if ok else float("nan")
    return res
