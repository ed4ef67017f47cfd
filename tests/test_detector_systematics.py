"""Detector systematics: constituent origins in the dataset, energy-flow scales in the detector card, and
the per-jet variations of the Calibrator and topcal predict."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from click.testing import CliRunner
from toys import small_model

import topcal
from topcal.cli import main
from topcal.config import ProcessConfig, load_card
from topcal.errors import ConfigError, InputFileError
from topcal.generate.run import generate_chunk
from topcal.io.dataset import open_dataset
from topcal.io.delphes_reader import open_events
from topcal.predict import detector_systematics as ds
from topcal.process.fatjets import ORIGINS, cluster, eflow_inputs
from topcal.process.run import process

REAL = Path(__file__).parent / "data" / "delphes_generic_25ev.root"
INFO = ("constituent_origin", "constituent_charge", "constituent_lepton")


# ---------------------------------------------------------------------------------------------------
# 1. what each constituent is
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["generated", "real"])
def test_constituents_keep_origin_charge_and_lepton_id(source, ttbar_file):
    path = ttbar_file if source == "generated" else REAL
    events = open_events(path)
    jets, cons = cluster(eflow_inputs(events, leptons=True), 1.2, 100.0)
    cons = ak.flatten(cons, axis=1)
    assert set(ak.fields(cons)) >= {"origin", "charge", "lepton"}
    origin, charge, lepton = (ak.to_numpy(ak.flatten(cons[k])) for k in ("origin", "charge", "lepton"))
    assert set(np.unique(origin)) == {ORIGINS["EFlowTrack"], ORIGINS["EFlowPhoton"], ORIGINS["EFlowNeutralHadron"]}
    track = origin == ORIGINS["EFlowTrack"]
    assert np.all(np.abs(charge[track]) == 1) and np.all(charge[~track] == 0)
    assert set(np.unique(lepton)) <= {0, 11, 13} and np.all(lepton[~track] == 0)
    # the four-vectors are the inputs themselves: the constituents of a jet sum to the jet
    total = ak.sum(cons.px, axis=1), ak.sum(cons.py, axis=1)
    assert np.allclose(np.hypot(*total), ak.to_numpy(ak.flatten(jets.rho)), rtol=1e-9)
    # the lepton flag is the track's detector PID (the hadron species is not kept)
    tracks = events.EFlowTrack
    n_leptons = int(ak.sum((abs(tracks.PID) == 11) | (abs(tracks.PID) == 13)))
    assert (lepton > 0).sum() <= n_leptons


def test_dataset_stores_the_constituent_columns_padded_like_the_four_vectors(ttbar_file, tmp_path):
    cfg = ProcessConfig(flatten=False, truth_match=False, max_constituents=40, jet_pt_min_gev=100.0)
    process([str(ttbar_file), str(REAL)], tmp_path / "ds", cfg, progress=False)
    d = open_dataset(tmp_path / "ds")
    table = d.read()
    assert set(INFO) <= set(d.columns)
    x = table["constituents"]
    for name in INFO:
        assert table[name].shape == x.shape[:2] and table[name].dtype == np.int8
    real = x[..., 0] > 0
    assert np.array_equal(table["constituent_origin"] > 0, real)
    assert np.all(table["constituent_charge"][~real] == 0) and np.all(table["constituent_lepton"][~real] == 0)
    # both kinds of file give every origin
    for f in (ttbar_file, REAL):
        rows = np.array([Path(s).name == Path(f).name for s in table["file"]])
        assert rows.any()
        assert set(np.unique(table["constituent_origin"][rows])) == {0, 1, 2, 3}


# ---------------------------------------------------------------------------------------------------
# 2. energy-flow scales in the detector card
# ---------------------------------------------------------------------------------------------------


def _chunk(tmp_path, card: str, events: int = 15):
    path = tmp_path / "card.toml"
    path.write_text(card)
    cfg = load_card(path, {"seed": 5, "chunk_events": events})
    return generate_chunk(cfg, 0, events)


def test_track_pt_scale_multiplies_eflow_tracks_only(tmp_path):
    nominal = _chunk(tmp_path, "")
    shifted = _chunk(tmp_path, "[detector.energy_flow]\ntrack_pt_scale = 1.01\n")
    pt0 = ak.to_numpy(ak.flatten(nominal["EFlowTrack"].PT)).astype(np.float64)
    pt1 = ak.to_numpy(ak.flatten(shifted["EFlowTrack"].PT)).astype(np.float64)
    assert len(pt0) > 500 and len(pt0) == len(pt1)
    assert np.allclose(pt1 / pt0, 1.01, rtol=2e-7, atol=0)  # exact up to float32 storage
    assert ak.all(shifted["EFlowTrack"].Eta == nominal["EFlowTrack"].Eta)
    for name in ("Particle", "Track", "Tower", "EFlowPhoton", "EFlowNeutralHadron"):
        assert ak.to_list(shifted[name]) == ak.to_list(nominal[name]), name


@pytest.mark.parametrize("key, collection", [("photon_energy_scale", "EFlowPhoton"),
                                             ("neutral_hadron_energy_scale", "EFlowNeutralHadron")])
def test_neutral_scales_multiply_the_remainder_before_the_thresholds(tmp_path, key, collection):
    nominal = _chunk(tmp_path, "")
    shifted = _chunk(tmp_path, f"[detector.energy_flow]\n{key} = 1.3\n")
    for name in ("Particle", "Track", "EFlowTrack", "Tower"):
        assert ak.to_list(shifted[name]) == ak.to_list(nominal[name]), name
    other = "EFlowNeutralHadron" if collection == "EFlowPhoton" else "EFlowPhoton"
    assert ak.to_list(shifted[other]) == ak.to_list(nominal[other])
    # the same objects (same tower position) carry 1.3x the energy; none is lost
    a, b = nominal[collection], shifted[collection]
    assert ak.all(ak.num(b) >= ak.num(a))  # a larger remainder passes the thresholds more often
    key_a = {(i, float(eta)): float(e) for i, ev in enumerate(ak.to_list(a)) for eta, e in
             zip([o["Eta"] for o in ev], [o["E"] for o in ev])}
    key_b = {(i, float(o["Eta"])): float(o["E"]) for i, ev in enumerate(ak.to_list(b)) for o in ev}
    assert set(key_a) <= set(key_b)
    ratio = np.array([key_b[k] / key_a[k] for k in key_a])
    assert np.allclose(ratio, 1.3, rtol=2e-7)


def test_energy_flow_scale_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="detector.energy_flow.track_pt_scale"):
        _chunk(tmp_path, "[detector.energy_flow]\ntrack_pt_scale = 0\n")
    with pytest.raises(ConfigError, match="detector.energy_flow.photon_scale: unknown"):
        _chunk(tmp_path, "[detector.energy_flow]\nphoton_scale = 1.01\n")


# ---------------------------------------------------------------------------------------------------
# 3. per-jet variations
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("detsys"))


def test_sizes_and_their_errors():
    assert ds.resolve_sizes(None) == ds.DEFAULT_SIZES == {"trackPtScale": 0.01, "photonEnergyScale": 0.01,
                                                          "neutralHadronEnergyScale": 0.05}
    assert ds.resolve_sizes(False) == {}
    assert ds.resolve_sizes({"trackPtScale": 0.02})["trackPtScale"] == 0.02
    assert ds.parse_systematics(["photonEnergyScale=0.03"]) == {"photonEnergyScale": 0.03}
    for bad in (["trackPtScale"], ["trackPtScale=abc"], ["jes=0.01"], ["trackPtScale=1.5"], ["trackPtScale=0"]):
        with pytest.raises(InputFileError, match="systematic"):
            ds.parse_systematics(bad)


def test_calibrator_variations(model_dir, ttbar_file):
    events = open_events(ttbar_file, 0, 200)
    cal = topcal.Calibrator(model_dir, samples=6, seed=2, systematics={"neutralHadronEnergyScale": 0.10})
    counts, table, _ = cal.flat(events)
    plain = topcal.Calibrator(model_dir, samples=6, seed=2, systematics=False)
    _, nominal, _ = plain.flat(events)
    assert set(cal.fields) - set(plain.fields) == set(ds.field_names(ds.DEFAULT_SIZES)) == {
        f"{q}_{s}{d}" for q in ("ptPred", "pt") for s in ds.SOURCES for d in ("Up", "Down")}
    assert all(np.array_equal(nominal[k], table[k]) for k in nominal)  # the nominal numbers are unchanged
    events_ = events
    _, cons = cluster(eflow_inputs(events_, leptons=True), 1.2, 100.0)
    cons = ak.flatten(cons, axis=1)
    for source, size in (("trackPtScale", 0.01), ("photonEnergyScale", 0.01), ("neutralHadronEnergyScale", 0.10)):
        mine = cons[cons.origin == ds.SOURCES[source]]
        share = ak.to_numpy(ak.sum(mine.px, axis=1) * np.cos(nominal["phi"]) +
                            ak.sum(mine.py, axis=1) * np.sin(nominal["phi"]))  # along the jet axis (GeV)
        up, down = table[f"pt_{source}Up"] - table["pt"], table[f"pt_{source}Down"] - table["pt"]
        # membership fixed: the jet moves by size x the origin's pT along its axis (to second order)
        assert np.allclose(up, size * share, rtol=0, atol=1e-3 * size * table["pt"].max())
        assert np.allclose(down, -size * share, rtol=0, atol=1e-3 * size * table["pt"].max())
        assert np.all(up >= 0) and up.mean() > 0
        # the calibrated pT follows, on average in the direction of the shift
        dp_up, dp_down = table[f"ptPred_{source}Up"] - table["ptPred"], table[f"ptPred_{source}Down"] - table["ptPred"]
        assert np.mean(dp_up) > 0 > np.mean(dp_down)


def _network_jets(path, events: int, n_max: int):
    """The fat jets of the first ``events`` events as the networks take them (``n_max`` stored constituents),
    and their constituents (``n_jets * var``)."""
    from topcal.process.fatjets import padded_jets
    from topcal.train.inputs import Jets

    jets, cons = cluster(eflow_inputs(open_events(path, 0, events), leptons=True), 1.2, 100.0)
    flat = ak.flatten(jets)
    per_jet = ak.flatten(cons, axis=1)
    x, info = padded_jets(per_jet, n_max)
    return Jets(x, *(ak.to_numpy(getattr(flat, k)) for k in ("rho", "eta", "phi", "tau")),
                ak.to_numpy(ak.num(per_jet)), **info), per_jet


def test_variation_with_all_draws_is_the_full_evaluation(model_dir, ttbar_file):
    from topcal.predict.calibrator import cached_model

    model = cached_model(str(Path(model_dir).absolute()))
    j, per_jet = _network_jets(ttbar_file, 100, model.n_constituents)
    nominal = ds.predictive_mean(model, j, 8, 4)
    out = ds.variations(model, j, nominal, {"photonEnergyScale": 0.02}, seed=4, draws=8,
                        sums=ds.origin_sums(per_jet))
    shifted = ds.shifted_jets(j, ORIGINS["EFlowPhoton"], 1.02, ds.origin_sums(per_jet)[ORIGINS["EFlowPhoton"]])
    assert np.allclose(out["ptPred_photonEnergyScaleUp"], ds.predictive_mean(model, shifted, 8, 4), rtol=1e-6)
    assert np.array_equal(out["pt_photonEnergyScaleUp"], shifted.pt)


def test_the_clustering_s_subjet_members_give_its_subjets(ttbar_file):
    """The exclusive-kT members kept from the nominal clustering: every constituent of a jet with three or
    more in one of three subjets; the subjets as the sums of the members give the clustered jet features;
    a common rescaling (under which kT clustering is unchanged) scales the subjet masses."""
    from topcal.train.inputs import JET_FEATURES, raw_inputs

    jets, _ = _network_jets(ttbar_file, 100, 40)
    plain = raw_inputs(jets, "jet-frame", 30)
    kept = raw_inputs(jets, "jet-frame", 30, keep_subjets=True)
    members = kept.pop("subjets")
    assert all(np.array_equal(plain[k], kept[k]) for k in plain)  # keeping them changes nothing
    real = plain["mask"] > 0
    three = real.sum(axis=1) >= 3
    assert members.shape == real.shape and three.sum() > 20
    assert np.all(members[~real] == -1) and np.all(members[~three] == -1)
    assert np.all(members[real & three[:, None]] >= 0)
    assert all(np.all((members[three] == s).any(axis=1)) for s in range(3))
    fixed = np.full(jets.origin.shape, -1, np.int8)
    fixed[:, :30] = members
    again = raw_inputs(replace(jets, subjets=fixed), "jet-frame", 30)
    assert np.array_equal(again["constituents"], plain["constituents"])
    np.testing.assert_allclose(again["jet"], plain["jet"], rtol=1e-5, atol=1e-6)
    masses = [JET_FEATURES.index(k) for k in ("m12", "m13", "m23", "m123")]
    scaled = raw_inputs(replace(jets, subjets=fixed).scaled(1.05), "jet-frame", 30)
    assert np.all(plain["jet"][three][:, masses] > 0)
    np.testing.assert_allclose(scaled["jet"][:, masses], 1.05 * plain["jet"][:, masses], rtol=5e-4)  # float32 inputs


def test_a_shifted_copy_keeps_the_constituents_the_network_reads_and_their_subjets(ttbar_file):
    jets, _ = _network_jets(ttbar_file, 100, 40)
    code, keep = ORIGINS["EFlowNeutralHadron"], 10
    ids = np.broadcast_to(np.arange(40, dtype=np.int8), jets.origin.shape).copy()  # followed as subjet labels
    shifted = ds.shifted_jets(replace(jets, subjets=ids), code, 1.5, keep=keep)
    order = shifted.subjets  # where each stored constituent of the copy came from
    assert np.array_equal(np.sort(order[:, :keep], axis=1), np.broadcast_to(np.arange(keep), (len(jets), keep)))
    scaled = jets.constituents * np.where(jets.origin == code, np.float32(1.5), np.float32(1.0))[..., None]
    assert np.array_equal(shifted.constituents, np.take_along_axis(scaled, order[..., None].astype(int), axis=1))
    assert np.array_equal(shifted.origin, np.take_along_axis(jets.origin, order.astype(int), axis=1))
    pt = np.hypot(shifted.constituents[..., 1], shifted.constituents[..., 2])
    assert np.all(pt[:, :keep - 1] >= pt[:, 1:keep])  # pT-ordered among themselves
    # without keep, a 50% larger neutral hadron moves into the leading ten of some jets
    free = ds.shifted_jets(replace(jets, subjets=ids), code, 1.5).subjets
    assert np.any(free[:, :keep] >= keep)


def test_predict_writes_the_variation_branches_and_info_lists_them(model_dir, ttbar_file, tmp_path):
    from topcal.info import describe

    out = tmp_path / "friends"
    result = CliRunner().invoke(main, ["predict", str(model_dir), str(ttbar_file), "-o", str(out), "--samples", "4",
                                       "--systematic", "trackPtScale=0.02", "--quiet"])
    assert result.exit_code == 0, result.output
    friend = next(out.glob("*.root"))
    with uproot.open(friend) as f:
        names = set(f["topcal"].keys())
        arrays = f["topcal"].arrays(["FatJet_pt", "FatJet_pt_trackPtScaleUp"])
    assert {f"FatJet_{n}" for n in ds.field_names(ds.DEFAULT_SIZES)} <= names
    ratio = ak.flatten(arrays.FatJet_pt_trackPtScaleUp / arrays.FatJet_pt)
    assert 1.002 < ak.mean(ratio) < 1.02  # 2% of the tracks' share of pT,j
    text = describe(friend)
    assert "detector variations" in text and "trackPtScale" in text
    no = CliRunner().invoke(main, ["predict", str(model_dir), str(ttbar_file), "-o", str(tmp_path / "no"),
                                   "--samples", "4", "--no-systematics", "--quiet"])
    assert no.exit_code == 0, no.output
    with uproot.open(next((tmp_path / "no").glob("*.root"))) as f:
        assert not any("ScaleUp" in k for k in f["topcal"].keys())
    for args in (["--systematic", "trackPtScale=2"], ["--systematic", "x=0.1"],
                 ["--no-systematics", "--systematic", "trackPtScale=0.1"]):
        bad = CliRunner().invoke(main, ["predict", str(model_dir), str(ttbar_file), "-o", str(tmp_path / "bad"),
                                        *args])
        assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "systematic" in bad.output, bad.output


# ---------------------------------------------------------------------------------------------------
# 4. closure against a sample generated with a shifted scale
# ---------------------------------------------------------------------------------------------------


def test_variation_closes_on_a_sample_generated_with_the_shifted_scale(model_dir, ttbar_file, tmp_path):
    from topcal.config import RunConfig
    from topcal.generate.run import generate
    from topcal.predict.detector_closure import closure_table

    shifted_file = tmp_path / "shifted.root"
    cfg = RunConfig(seed=11, chunk_events=100)  # the conftest sample's, with tracks measured 1% high
    cfg.detector.energy_flow.track_pt_scale = 1.01
    generate(shifted_file, 300, cfg, workers=1, progress=False)
    nominal = topcal.Calibrator(model_dir, samples=10, seed=1, systematics={"trackPtScale": 0.01})
    plain = topcal.Calibrator(model_dir, samples=10, seed=1, systematics=False)
    rows = closure_table(nominal.flat(open_events(ttbar_file)), plain.flat(open_events(shifted_file)), "trackPtScale",
                         edges=(400.0, 700.0, 1000.0))
    assert sum(r["jets"] for r in rows) > 50
    for r in rows:
        assert r["matched_fraction"] > 0.95
        assert 0 < r["pt_variation"] and abs(r["pt_sample"] - r["pt_variation"]) < 0.3 * r["pt_variation"] + 0.5
        assert r["agrees"], r


def test_jets_keep_the_constituent_info_through_take_and_leading(model_dir, ttbar_file):
    from topcal.process.fatjets import padded_jets
    from topcal.train.inputs import Jets

    cal = topcal.Calibrator(model_dir, samples=2, seed=0, systematics=False)
    events = open_events(ttbar_file, 0, 50)
    cons = cal.constituents(events)
    counts, table, _ = cal.flat(events)
    assert np.array_equal(ak.to_numpy(ak.num(cons, axis=1)), counts)
    per_jet = ak.flatten(cons, axis=1)
    assert np.array_equal(ak.to_numpy(ak.num(per_jet)), table["nConstituents"])
    assert ak.all(per_jet.rho[:, :-1] >= per_jet.rho[:, 1:])  # pT-ordered
    x, info = padded_jets(per_jet, 20)
    jets = Jets(x, table["pt"], table["eta"], table["phi"], table["mass"], table["nConstituents"], **info)
    assert np.array_equal(jets.origin[:, 0], ak.to_numpy(per_jet.origin[:, 0]))
    part = jets.take(np.array([2, 0])).leading(5)
    assert part.origin.shape == part.charge.shape == part.lepton.shape == (2, 5)
    assert np.array_equal(part.charge, jets.charge[[2, 0], :5])
    old = Jets(x, table["pt"], table["eta"], table["phi"], table["mass"], table["nConstituents"])  # older datasets
    assert old.take([0]).origin is None and old.scaled(1.1).charge is None
