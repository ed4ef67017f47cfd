"""The fraction of tops above 800 GeV from a pyhf fit with topcal's variations (topcal.analysis, docs example)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from topcal.analysis import fraction as fr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))


def toy_table(n: int, seed: int, scale: float = 1.0) -> dict:
    """Jets with pT,t(truth) flat in 400..1000 GeV, ptPred = truth + 40 GeV noise, times ``scale`` (a detector
    miscalibration); a 2% detector source, a 3 GeV statistical variation and the fat jet's pT = 0.9 ptPred."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(400, 1000, n)
    x = (truth + rng.normal(0, 40, n)) * scale
    return {"ptPred": x, "ptPred_detUp": 1.02 * x, "ptPred_detDown": 0.98 * x, "ptPred_stat0": np.full(n, 3.0),
            "pt": 0.9 * x, "pt_detUp": 0.918 * x, "pt_detDown": 0.882 * x, "ptTruth": truth,
            "inTrainingRange": np.ones(n, bool)}


def test_observables_collect_every_variation_pair():
    t = toy_table(10, 0)
    obs = fr.topcal_observable(t)
    assert sorted(obs.variations) == ["det", "stat0"]
    np.testing.assert_allclose(obs.variations["stat0"][0] - obs.values, 3.0)
    lin = fr.linear_observable(t, 10.0, 1.1)
    assert sorted(lin.variations) == ["det"]  # no statistical variation of the linear fit
    np.testing.assert_allclose(lin.variations["det"][0], 10 + 1.1 * t["pt_detUp"])


def test_docs_example_measures_the_fraction_and_the_variation_absorbs_a_miscalibration():
    from analysis_example import measure

    mc = toy_table(20_000, 1)
    truth = float(np.mean(toy_table(4000, 2)["ptTruth"] > 800))
    nominal = measure(mc, toy_table(4000, 2))
    assert nominal["nuisance_parameters"] == ["det", "stat0"]
    assert nominal["low"] < truth < nominal["high"]
    # data measured 2% high (the detector source at +1 sigma): the correlated nuisance parameter absorbs it
    shifted = measure(mc, toy_table(4000, 2, scale=1.02))
    assert shifted["low"] < truth < shifted["high"]
    # treated as independent per jet the same uncertainty barely widens the interval and misses the truth
    independent = measure(mc, toy_table(4000, 2, scale=1.02), independent=True)
    assert not independent["low"] < truth < independent["high"]
    assert independent["fraction"] > shifted["high"]


def test_pseudo_experiments_cover_the_truth_with_the_correlated_variation():
    mc, pool = toy_table(20_000, 1), toy_table(4000, 2)
    obs, truth = fr.topcal_observable(pool), pool["ptTruth"]
    t = fr.templates(fr.topcal_observable(mc), mc["ptTruth"], min_count=fr.min_count(20_000, 1500))
    exp = fr.Experiment(obs, truth, {"det": 1.02 * pool["ptPred"]})  # the "truly shifted" sample at +1 sigma
    res = fr.pseudo_experiments({"topcal": (exp, t, False), "independent": (exp, t, True)}, 12, 1500, seed=4)
    assert res["topcal"]["failed"] == 0 and res["topcal"]["experiments"] == 12
    assert [f["experiment"] for f in res["topcal"]["fits"]] == list(range(12))
    assert res["topcal"]["coverage"] >= 0.5
    assert res["independent"]["coverage"] < res["topcal"]["coverage"]
    # the same experiments in two parts give the same fits
    a = fr.pseudo_experiments({"topcal": (exp, t, False)}, 2, 1500, seed=4, first=5)["topcal"]["fits"]
    assert a == res["topcal"]["fits"][5:7]


def test_selected_keeps_the_highest_pt_jet_of_each_event():
    from topcal.analysis.jets import selected

    table = {"event": np.array([0, 0, 0, 1, 1, 2, 3]), "pt": np.array([500., 900., 700., 450., 600., 800., 1000.]),
             "ptTruth": np.array([480., -1., 690., 470., 610., 790., 990.]),
             "inTrainingRange": np.array([1, 1, 1, 1, 1, 1, 0], bool)}
    # event 0: the 900 GeV jet is unmatched, so the 700 GeV one; event 3: outside the training window
    np.testing.assert_array_equal(selected(table), [0, 0, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(selected(table, one_per_event=False), [1, 0, 1, 1, 1, 1, 0])
    del table["event"]  # a table without events: every jet its own event
    np.testing.assert_array_equal(selected(table), [1, 0, 1, 1, 1, 1, 0])


def test_merge_edges_fills_every_bin_with_the_minimum_count():
    values = np.concatenate([np.full(30, 425.0), np.full(5, 475.0), np.full(6, 525.0), np.full(2, 575.0)])
    edges = (400.0, 450.0, 500.0, 550.0, 600.0)
    assert fr.merge_edges(values, edges, 10) == (400.0, 450.0, 600.0)  # 30 | 5 + 6 + 2
    assert fr.merge_edges(values, edges, 1) == edges
    assert fr.merge_edges(values, edges, 100) == (400.0, 600.0)
    assert fr.min_count(3000, 300) == 100  # 10 expected data jets per bin


def test_independent_variance_scales_with_the_data_jets_not_the_mc_jets():
    """Per-jet independent variations of N data jets add a variance proportional to N, MC statistics one
    proportional to N^2 / (MC jets): with ten times the MC, the model's per-bin uncertainty keeps its
    independent part."""
    mc = toy_table(4000, 1)
    sizes = {}
    for copies in (1, 10):
        big = {k: np.tile(v, copies) for k, v in mc.items()}
        t = fr.templates(fr.topcal_observable(big), big["ptTruth"], min_count=fr.min_count(4000 * copies, 400))
        model, keep = fr.build_model(t, 400, independent=True)
        stat = {s["name"]: next(m["data"] for m in s["modifiers"] if m["type"] == "staterror")
                for s in model.spec["channels"][0]["samples"]}
        nom = {c: 400 / (4000 * copies) * t.nominal[c][keep] for c in ("high", "low")}
        indep = {c: 400 / (4000 * copies) * t.independent_var[c][keep] for c in ("high", "low")}
        assert sum(indep["high"]) > 0.2 * sum(nom["high"])  # the 2% source moves many jets across 50 GeV bins
        np.testing.assert_allclose(np.square(stat["high"]), indep["high"] + 400 / (4000 * copies) * nom["high"])
        sizes[copies] = np.sum(np.square(stat["high"]))
    # the MC statistics shrink tenfold, the independent per-jet part stays: the total falls far less than 10x
    assert sizes[1] / sizes[10] < 1.5


def test_fit_reports_a_minimum_with_negative_yields_as_failed():
    """A sparse bin whose down template is empty: piecewise-linear extrapolation below -1 sigma gives a negative
    yield, and an empty data bin's Poisson likelihood grows without bound there; the fit must not return it."""
    import pyhf

    spec = {"channels": [{"name": "c", "samples": [
        {"name": "s", "data": [50.0, 2.0], "modifiers": [
            {"name": "ratio", "type": "normfactor", "data": None},
            {"name": "syst", "type": "histosys", "data": {"hi_data": [50.0, 4.0], "lo_data": [50.0, 0.0]}}]}]}],
        "parameters": [{"name": "ratio", "bounds": [[0.0, 10.0]], "inits": [1.0]}]}
    model = pyhf.Model(spec, poi_name="ratio")
    with pytest.raises(fr.FitFailed, match="non-positive expected yield"):
        fr.fit(model, np.array([50.0, 0.0]))
    ratio, low, high = fr.fit(model, np.array([50.0, 2.0]))
    assert low < 1.0 < high


def test_nuisance_bounds_keep_every_bin_positive_for_each_variation_alone():
    nominal = {"high": np.array([10.0, 40.0]), "low": np.array([30.0, 0.0])}
    # up takes 30 of the first bin's 40 jets, down takes 10 of the second bin's 40
    variations = {"high": {"s": (np.array([0.0, 50.0]), np.array([10.0, 30.0]))},
                  "low": {"s": (np.array([10.0, 0.0]), np.array([30.0, 0.0]))}}
    t = fr.Templates(nominal, variations, {c: np.zeros(2) for c in nominal}, {"high": 50, "low": 30},
                     (400.0, 800.0, 1100.0))
    low, high = fr.nuisance_bounds(t, np.ones(2, bool))["s"]
    assert high == pytest.approx(0.9 * 40 / 30)
    assert low == pytest.approx(-3.6)
    model, _ = fr.build_model(t, 80)
    assert model.config.suggested_bounds()[model.config.par_slice("s")][0] == pytest.approx((-3.6, 1.2))


def test_pseudo_experiments_without_shifts_keep_the_weights_and_move_no_jet():
    mc, pool = toy_table(20_000, 1), toy_table(4000, 2)
    t = fr.templates(fr.topcal_observable(mc), mc["ptTruth"], min_count=fr.min_count(20_000, 1500))
    obs = fr.topcal_observable(pool)
    exp = fr.Experiment(obs, pool["ptTruth"], {"det": 1.02 * pool["ptPred"]})
    still = fr.Observable(obs.values, {k: (obs.values, obs.values) for k in obs.variations})
    unmoved = fr.Experiment(still, pool["ptTruth"], {"det": pool["ptPred"]})
    a = fr.pseudo_experiments({"topcal": (exp, t, False)}, 3, 1500, seed=4, shifts=False)["topcal"]["fits"]
    b = fr.pseudo_experiments({"topcal": (unmoved, t, False)}, 3, 1500, seed=4)["topcal"]["fits"]
    assert a == b
    assert a != fr.pseudo_experiments({"topcal": (exp, t, False)}, 3, 1500, seed=4)["topcal"]["fits"]
