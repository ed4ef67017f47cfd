"""Input against label uncertainties: the equivalent label size of a detector variation, its table and figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from topcal.reproduce.input_vs_label import equivalent_size, input_vs_label, write


def test_equivalent_size_interpolates_and_extrapolates_the_label_points():
    # sigma_cal 8 GeV at 4%, 14 GeV at 6%: 4 GeV is 2%, 11 GeV is 5%, 21 GeV (beyond) 6% x 21 / 14 = 9%
    assert equivalent_size(4.0, [0.04, 0.06], [8.0, 14.0]) == pytest.approx(0.02)
    assert equivalent_size(11.0, [0.06, 0.04], [14.0, 8.0]) == pytest.approx(0.05)
    assert equivalent_size(21.0, [0.04, 0.06], [8.0, 14.0]) == pytest.approx(0.09)
    assert np.isnan(equivalent_size(5.0, [0.04, 0.06], [8.0, 7.0]))  # sigma_cal falls with f: no answer


def test_a_variation_as_large_as_a_label_smearing_gets_that_size_per_bin(tmp_path):
    rng = np.random.default_rng(3)
    pt = rng.uniform(400, 1000, 4000)
    # the network's sigma_cal is 0.8 of the injected smearing f pT; a 1% input scale moves ptPred by 3% x 0.8 pT
    label_cal = {0.04: 0.8 * 0.04 * pt, 0.06: 0.8 * 0.06 * pt}
    shift = 0.8 * 0.03 * pt
    detector = {"trackPtScale": (pt + shift, pt - shift), "photonEnergyScale": (pt + shift / 3, pt - shift / 3)}
    rows = input_vs_label(pt, detector, label_cal)
    assert [r["pt_jet_lo"] for r in rows] == [400, 500, 600, 700, 800, 900]
    for r in rows:
        assert r["sources"]["trackPtScale"]["label_equivalent"] == pytest.approx(0.03, rel=1e-6)
        assert r["sources"]["photonEnergyScale"]["label_equivalent"] == pytest.approx(0.01, rel=1e-6)
        assert r["sources"]["trackPtScale"]["relative"] == pytest.approx(0.024)  # half up-down / pT,j
    result = {"sizes": {"trackPtScale": 0.01, "photonEnergyScale": 0.01}, "min_bin_jets": 50, "bins": rows,
              "samples": 4, "seed": 1}
    (tmp_path / "reports" / "input_vs_label").mkdir(parents=True)
    (tmp_path / "reports" / "input_vs_label" / "input_vs_label.json").write_text(json.dumps(result))
    lines = write(tmp_path, tmp_path / "plots", "test")
    assert (tmp_path / "plots" / "input_vs_label_sources.png").stat().st_size > 1000
    table = [line for line in lines if line.startswith("| 400..500")]
    assert table and "| 3.00 (" in table[0] and "| 1.00 (" in table[0]
