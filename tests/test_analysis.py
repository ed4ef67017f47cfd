"""The fraction of tops above 800 GeV from a pyhf fit with topcal's variations (topcal.analysis, docs example)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

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
    t = fr.templates(fr.topcal_observable(mc), mc["ptTruth"])
    exp = fr.Experiment(obs, truth, {"det": 1.02 * pool["ptPred"]})  # the "truly shifted" sample at +1 sigma
    res = fr.pseudo_experiments({"topcal": (exp, t, False), "independent": (exp, t, True)}, 12, 1500, seed=4)
    assert res["topcal"]["failed"] == 0 and res["topcal"]["experiments"] == 12
    assert res["topcal"]["coverage"] >= 0.5
    assert res["independent"]["coverage"] < res["topcal"]["coverage"]
    # the same experiments in two parts give the same fits
    a = fr.pseudo_experiments({"topcal": (exp, t, False)}, 2, 1500, seed=4, first=5)["topcal"]["fits"]
    assert a == res["topcal"]["fits"][5:7]
