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

``independent=True`` treats every uncertainty as independent per jet instead: no histosys; per bin, the
variance of the count when each jet moves on its own, sum over jets and variations of the squared change of the
jet's bin indicator (the mean of up and down), added to the staterror.

Pseudo-experiments (:func:`pseudo_experiments`) draw, per experiment, a true value theta ~ N(0, 1) for every
nuisance parameter and Poisson weights for the jets of a pool (other events than the MC's). A detector source
moves each pool jet by theta times its change in a sample generated with the source's scale at +1 sigma
(same events: :func:`topcal.analysis.jets.paired`); a variation without such a sample (stat<k>, label shifts)
by theta times its own half up-down difference. The truth is the pool's fraction of selected jets above the
threshold; the coverage is the fraction of experiments whose 68% interval contains it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import hist
import numpy as np

THRESHOLD_GEV = 800.0
EDGES_GEV = tuple(float(e) for e in range(400, 1101, 50))
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


def templates(obs: Observable, truth: np.ndarray, threshold: float = THRESHOLD_GEV, edges=EDGES_GEV) -> Templates:
    """The MC templates of ``obs`` (selected jets only) split by pT,t(truth) ``truth`` at ``threshold`` (GeV)."""
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
        var = nom + (t.independent_var[comp][keep] if independent else 0.0)
        mods = [{"name": "norm", "type": "normfactor", "data": None},
                {"name": "mcstat", "type": "staterror", "data": list(scale * np.sqrt(var))}]
        if comp == "high":
            mods.append({"name": "ratio", "type": "normfactor", "data": None})
        if not independent:
            for name, (up, down) in t.variations[comp].items():
                mods.append({"name": name, "type": "histosys",
                             "data": {"hi_data": list(scale * up[keep]), "lo_data": list(scale * down[keep])}})
        samples.append({"name": comp, "data": list(scale * nom), "modifiers": mods})
    spec = {"channels": [{"name": "calibrated_pt", "samples": samples}],
            "parameters": [{"name": "ratio", "bounds": [[0.0, 10.0]], "inits": [1.0]},
                           {"name": "norm", "bounds": [[0.0, 10.0]], "inits": [1.0]}]}
    return pyhf.Model(spec, poi_name="ratio"), keep


def fit(model, counts: np.ndarray, minos: bool = False) -> tuple[float, float, float]:
    """The fitted ``ratio`` and its 68% interval for the observed ``counts``: from the curvature of the profile
    likelihood at its minimum (HESSE), or, with ``minos``, where twice the profiled NLL rises by 1 (MINOS; on
    the toys of ``tests/test_analysis.py`` the two agree to a few per cent of the width, at twice the cost)."""
    import pyhf

    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(verbose=0, tolerance=0.01, strategy=0))
    data = np.concatenate([counts, model.config.auxdata])
    _, res = pyhf.infer.mle.fit(data, model, return_result_obj=True)
    m = res.minuit
    poi = model.config.poi_index
    value = float(m.values[poi])
    if not minos:
        m.hesse()
        err = float(m.errors[poi])
        return value, value - err, value + err
    m.minos(poi)
    err = m.merrors[m.parameters[poi]]
    return value, value + float(err.lower), value + float(err.upper)


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
                       seed: int = 0, threshold: float = THRESHOLD_GEV, first: int = 0) -> dict[str, dict]:
    """``n`` pseudo-experiments of about ``expected_jets`` selected jets each, the same draws for every analysis
    ``{name: (pool, MC templates, independent)}`` (the pools must hold the same jets in the same order).

    Per analysis: the truth fraction, per experiment the fitted fraction and its 68% interval, the coverage and
    its binomial error, the median interval half-width and the mean fitted fraction."""
    import pyhf

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
            x = pool.shifted_values({k: v for k, v in theta.items() if k in pool.obs.variations})
            counts = histogram(x, t.edges, weights)[keep]
            try:
                r, lo, hi = fit(model, counts)
            except (AssertionError, RuntimeError, ValueError, pyhf.exceptions.FailedMinimization) as exc:
                # counts as not covering, and is reported
                out[a]["fits"].append({"failed": str(exc)[:200]})
                continue
            out[a]["fits"].append({"f": float(t.fraction(r)), "low": float(t.fraction(lo)),
                                   "high": float(t.fraction(hi))})
    return {a: summarise(res) for a, res in out.items()}


def summarise(res: dict) -> dict:
    """Coverage, its binomial error, median half-width, mean fitted fraction and pull width of one analysis's
    ``{"truth": f, "fits": [...]}`` (fits of several runs may be concatenated first)."""
    ok = [f for f in res["fits"] if "f" in f]
    covered = np.array([f["low"] <= res["truth"] <= f["high"] for f in ok] + [False] * (len(res["fits"]) - len(ok)))
    res["experiments"] = len(res["fits"])
    res["failed"] = len(res["fits"]) - len(ok)
    res["coverage"] = float(covered.mean()) if len(covered) else float("nan")
    res["coverage_error"] = float(np.sqrt(res["coverage"] * (1 - res["coverage"]) / max(len(covered), 1)))
    res["half_width"] = float(np.median([(f["high"] - f["low"]) / 2 for f in ok])) if ok else float("nan")
    res["mean_f"] = float(np.mean([f["f"] for f in ok])) if ok else float("nan")
    res["pull_width"] = float(np.std([(f["f"] - res["truth"]) / max((f["high"] - f["low"]) / 2, 1e-12)
                                      for f in ok])) if ok else float("nan")
    return res
