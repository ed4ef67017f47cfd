"""Several label-uncertainty sources: the card, the correlated labels, one model directory with per-jet
sigma_cal of each source and of all together, shift variations, friend branches, and closure on toys."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot
from click.testing import CliRunner
from toys import toy_dataset

from topcal.cli import main
from topcal.config import TrainConfig
from topcal.errors import ConfigError
from topcal.train.data import load_rows, split_rows
from topcal.train.label_sources import ALL_SMEAR, parse_label_card, read_label_card
from topcal.train.label_training import LABEL_DIR
from topcal.train.model import load_model

CARD = """
[refResolution]
kind = "smear"
size = 0.04

[refPileup]
kind = "smear"
size = 0.06
correlation = { refResolution = 0.5 }

[refScale]
kind = "shift"
size = 0.02
"""


def test_card_gives_correlated_smearing_of_the_injected_sizes(tmp_path):
    (tmp_path / "card.toml").write_text(CARD)
    card = read_label_card(tmp_path / "card.toml")
    assert [(s.name, s.kind) for s in card.sources] == [("refResolution", "smear"), ("refPileup", "smear"),
                                                        ("refScale", "shift")]
    variations = card.variations()
    assert list(variations) == ["refResolution", "refPileup", ALL_SMEAR]  # a constant shift is scaled, not trained
    assert card.shift[0].method == "scale"
    rows = np.arange(200_000)
    pt = np.full(len(rows), 500.0)
    alone = {name: variations[name].labels(pt, rows, seed=3) / pt - 1 for name in ("refResolution", "refPileup")}
    both = variations[ALL_SMEAR].labels(pt, rows, seed=3) / pt - 1
    assert np.std(alone["refResolution"]) == pytest.approx(0.04, rel=0.01)
    assert np.std(alone["refPileup"]) == pytest.approx(0.06, rel=0.01)
    assert np.std(both) == pytest.approx(np.sqrt(0.04**2 + 0.06**2 + 2 * 0.5 * 0.04 * 0.06), rel=0.01)
    pileup_in_both = (both - alone["refResolution"]) / 0.06  # the first source's draws are its own
    assert np.corrcoef(alone["refResolution"], pileup_in_both)[0, 1] == pytest.approx(0.5, abs=0.01)
    # fixed per dataset row: a subset of the rows gets the same labels
    sub = rows[::7]
    assert np.array_equal(variations[ALL_SMEAR].labels(pt[sub], sub, seed=3) / pt[sub] - 1, both[sub])
    points = parse_label_card({"s": {"kind": "shift", "size": [[400, 0.05], [1000, 0.03]]}}, "c")
    assert points.shift[0].relative(np.array([300.0, 700.0, 1200.0])) == pytest.approx([0.05, 0.04, 0.03])
    assert points.shift[0].method == "train" and list(points.variations()) == ["s-up", "s-down"]
    up = points.variations()["s-up"].labels(np.array([700.0]), np.array([0]), seed=1)
    assert up == pytest.approx([700 * 1.04])


@pytest.mark.parametrize("card, message", [
    ({}, "card.toml: no label sources"),
    ({"a": {"kind": "wiggle", "size": 0.1}}, "card.toml: [a] kind: 'wiggle'"),
    ({"a": {"kind": "smear"}}, "card.toml: [a] size: missing"),
    ({"a": {"kind": "smear", "size": 1.5}}, "card.toml: [a] size: 1.5 must be in (0, 1)"),
    ({"a": {"kind": "smear", "size": [[900, 0.1], [400, 0.2]]}}, "card.toml: [a] size: the points' pT,t"),
    ({"a": {"kind": "smear", "size": 0.1, "sise": 2}}, "card.toml: [a] sise: unknown key"),
    ({"a": {"kind": "shift", "size": 0.1, "correlation": {"b": 0.1}}}, "card.toml: [a] correlation: unknown key"),
    ({"a": {"kind": "smear", "size": 0.1, "correlation": {"b": 0.5}}}, "card.toml: [a] correlation.b: no source"),
    ({"a": {"kind": "smear", "size": 0.1, "correlation": {"b": 0.5}}, "b": {"kind": "shift", "size": 0.1}},
     "card.toml: [a] correlation.b: 'b' is a shift source"),
    ({"a": {"kind": "smear", "size": 0.1, "correlation": {"b": 1.5}}, "b": {"kind": "smear", "size": 0.1}},
     "card.toml: [a] correlation.b: 1.5 must be a number in [-1, 1]"),
    ({"a": {"kind": "smear", "size": 0.1, "correlation": 0.5}}, "card.toml: [a] correlation: 0.5 must be a table"),
    ({"a": {"kind": "smear", "size": 0.1, "correlation": {"b": 0.9, "c": 0.9}}, "b": {"kind": "smear", "size": 0.1,
      "correlation": {"c": -0.9}}, "c": {"kind": "smear", "size": 0.1}}, "not a valid correlation matrix"),
    ({"a": {"kind": "smear", "size": 0.1, "correlation": {"b": 0.2}},
      "b": {"kind": "smear", "size": 0.1, "correlation": {"a": 0.3}}}, "card.toml: [b] correlation.a: 0.3 differs"),
    ({"a-b": {"kind": "smear", "size": 0.1}}, "card.toml: [a-b]: source names"),
    ({"a": {"kind": "shift", "size": 0.1, "method": "guess"}}, "card.toml: [a] method: 'guess'"),
])
def test_card_errors_name_the_card_the_source_and_the_key(card, message):
    with pytest.raises(ConfigError) as err:
        parse_label_card(card, "card.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_a_bad_card_and_smear_with_a_card(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 200, seed=1)
    (tmp_path / "bad.toml").write_text('[refScale]\nkind = "shift"\nsize = -0.02\n')
    result = CliRunner().invoke(main, ["train", str(ds.path), "-o", str(tmp_path / "m"), "--label-systematics",
                                       str(tmp_path / "bad.toml")])
    assert result.exit_code == 2 and "bad.toml: [refScale] size: -0.02" in result.output
    (tmp_path / "card.toml").write_text(CARD)
    result = CliRunner().invoke(main, ["train", str(ds.path), "-o", str(tmp_path / "m"), "--smear", "0.05",
                                       "--label-systematics", str(tmp_path / "card.toml")])
    assert result.exit_code == 2 and "smear: 0.05 cannot be combined" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "card.toml", "ds"]


@pytest.fixture(scope="module")
def label_model(tmp_path_factory):
    """``topcal train --label-systematics`` on toys (tiny network) with two correlated smear sources, a
    constant shift (scaled) and a shift in points (trained pair), on a 2-process pool."""
    base = tmp_path_factory.mktemp("labels")
    ds = toy_dataset(base / "ds", 1500, seed=1)
    (base / "card.toml").write_text(CARD + '\n[refSlope]\nkind = "shift"\nsize = [[500, 0.01], [900, 0.03]]\n')
    (base / "net.toml").write_text("phi_hidden = [16]\nhidden = [16]\n")
    result = CliRunner().invoke(main, ["train", str(ds.path), "-o", str(base / "model"), "--label-systematics",
                                       str(base / "card.toml"), "--config", str(base / "net.toml"), "--epochs", "2",
                                       "--executor", "futures", "--workers", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    return ds, base / "model"


def test_one_model_directory_gives_every_source(label_model, ttbar_file, tmp_path):
    from topcal.predict.label_systematics import label_fields, label_systematics
    from topcal.predict.run import predict

    ds, model_dir = label_model
    assert not (model_dir.parent / "model.labels.partial").exists()
    nominal = load_model(model_dir)
    assert "label_variation" not in nominal.meta  # the top level is the nominal network
    subs = sorted(p.name for p in (model_dir / LABEL_DIR).iterdir() if p.is_dir())
    assert subs == sorted(["refResolution", "refPileup", ALL_SMEAR, "refSlope-up", "refSlope-down"])
    assert load_model(model_dir / LABEL_DIR / "refPileup").meta["label_variation"]["smear"][0]["size"] == 0.06
    fields = label_fields(model_dir)
    assert fields == ("sigmaCal", "sigmaCal_refResolution", "sigmaCal_refPileup", "ptPred_refScaleUp",
                      "ptPred_refScaleDown", "ptPred_refSlopeUp", "ptPred_refSlopeDown")
    arrays, _ = load_rows(ds, split_rows(ds.n_jets, 0.2)[1])
    values = label_systematics(model_dir, arrays.jets, samples=5, seed=2)
    mean = nominal.predict(arrays.jets, 5, 2)["mean"]
    assert set(values) == set(fields) and all(v.shape == (len(arrays),) and np.all(np.isfinite(v))
                                              for v in values.values())
    assert np.allclose(values["ptPred_refScaleUp"], 1.02 * mean)
    assert np.allclose(values["ptPred_refScaleDown"], 0.98 * mean)
    assert np.all(values["sigmaCal"] >= 0)

    summary = predict(model_dir, [ttbar_file], tmp_path / "friends", chunksize=150, samples=5, progress=False)
    tree = uproot.open(summary.friends[0])["topcal"]
    for field in fields:
        assert f"FatJet_{field}" in tree.keys()
    pt_pred, pt_up = (ak.flatten(tree[name].array()) for name in ("FatJet_ptPred", "FatJet_ptPred_refScaleUp"))
    assert len(pt_pred) > 100 and ak.all(abs(pt_up - 1.02 * pt_pred) < 1e-3 * pt_pred)
    result = CliRunner().invoke(main, ["predict", str(model_dir), str(ttbar_file), "-o", str(tmp_path / "f2"),
                                       "--reference", str(model_dir / LABEL_DIR / "refPileup")])
    assert result.exit_code == 2 and "has its own label systematics" in result.output


def test_closure_of_two_correlated_sources_and_a_shift_on_toys(tmp_path):
    """The study of ``topcal reproduce`` (reproduce/label_closure.py) on 6000 toy jets with 10 GeV of noise:
    4% and 6% smearing at correlation 0 and 0.5 and a 2% shift, every value within 10% of the injected one
    per 100 GeV bin of pT,j; the trained shifted networks are the nominal one scaled by 1 +- 2%."""
    from topcal.reproduce import label_closure
    from topcal.workers import run_tasks, worker_pool

    ds = toy_dataset(tmp_path / "dataset", 6000, seed=2, noise_gev=lambda a: np.full_like(a, 10.0))
    cfg = TrainConfig(phi_hidden=[32, 32], hidden=[32, 32], patience=6, epochs=30, seed=1)
    with worker_pool() as pool:
        run_tasks(label_closure.tasks(tmp_path, ds.path, cfg, 20, None), pool)
    closure = json.loads((tmp_path / "reports" / "label_closure" / "closure.json").read_text())
    ok, total = label_closure.verdict(closure)
    assert total == 2 * 5 * 6 and ok == total  # 2 cards, 5 quantities, 6 bins of >= 50 jets (pT,j 450..950 GeV)
    rho = [c["rho"] for c in closure["cards"]]
    assert rho == [0.0, 0.5]
    for card in closure["cards"]:
        for row in card["bins"]:
            if row["jets"] >= 50:
                assert row["ptPred_refScaleUp"]["measured"] == pytest.approx(0.02, abs=1e-6)
                assert row["ptPred_refScaleDown"]["measured"] == pytest.approx(0.02, abs=1e-6)
    lines = label_closure.write(tmp_path, tmp_path / "plots", "toys")
    assert (tmp_path / "plots" / "label_sources_closure.png").stat().st_size > 1000
    assert any("correlation 0.5" in line for line in lines)
