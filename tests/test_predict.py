"""topcal predict: entry-aligned friend trees, read back with uproot, coffea and ROOT itself."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from toys import toy_dataset

from topcal.config import TrainConfig
from topcal.errors import InputFileError, OutputError
from topcal.io.delphes_reader import open_events
from topcal.predict.run import predict
from topcal.process.fatjets import cluster, eflow_inputs
from topcal.train.fit import train


def _per_jet(arrays: ak.Array) -> ak.Array:
    """One record per fat jet from the per-event FatJet_* branches."""
    return ak.flatten(ak.zip({f: arrays[f] for f in arrays.fields if f.startswith("FatJet_")}))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small network on 12 constituents (the toy dataset's), enough to exercise the whole chain."""
    base = tmp_path_factory.mktemp("predict_model")
    ds = toy_dataset(base / "ds", 2000, seed=1)
    train(ds.path, base / "model", TrainConfig(phi_hidden=[16], hidden=[16], epochs=2),
          progress=False)
    return base / "model"


@pytest.fixture(scope="module")
def friends(model_dir, ttbar_file, real_delphes, tmp_path_factory):
    out = tmp_path_factory.mktemp("friends")
    summary = predict(model_dir, [ttbar_file, real_delphes], out, chunksize=120, samples=5, progress=False)
    return out, summary


def test_friends_line_up_with_the_events(friends, ttbar_file, real_delphes):
    out, summary = friends
    assert len(summary.friends) == 2
    for source in (ttbar_file, real_delphes):
        friend = uproot.open(out / f"{source.stem}_topcal.root")["topcal"]
        delphes = uproot.open(source)["Delphes"]
        assert friend.num_entries == delphes.num_entries
        jets, _ = cluster(eflow_inputs(open_events(source), leptons=True), 1.2, 100.0)  # the model's inputs
        arrays = friend.arrays(["nFatJet", "FatJet_pt", "FatJet_sigmaTot", "FatJet_ptLow68", "FatJet_ptHigh68"])
        assert ak.all(arrays.nFatJet == ak.num(jets))
        assert ak.all(arrays.FatJet_pt == jets.rho)
        flat = _per_jet(arrays)
        assert ak.all(flat.FatJet_sigmaTot > 0) and ak.all(flat.FatJet_ptLow68 < flat.FatJet_ptHigh68)


def test_truth_and_range_flags(friends, ttbar_file):
    out, _ = friends
    flat = _per_jet(uproot.open(out / f"{ttbar_file.stem}_topcal.root")["topcal"].arrays())
    assert ak.mean(flat.FatJet_isTruthMatched) > 0.8  # boosted hadronic tops: most fat jets are tops
    assert ak.all((flat.FatJet_ptTruth > 0) == flat.FatJet_isTruthMatched)
    in_range = (flat.FatJet_pt >= 400) & (flat.FatJet_pt < 1000) & (abs(flat.FatJet_eta) < 2)
    assert ak.all(flat.FatJet_inTrainingRange == in_range)
    assert ak.any(~flat.FatJet_inTrainingRange)  # out-of-range jets are kept, flagged


def test_coffea_reads_the_friend(friends, ttbar_file):
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    out, _ = friends
    NanoAODSchema.error_missing_event_ids = False  # a friend tree carries no run/lumi/event branches
    events = NanoEventsFactory.from_root({str(out / f"{ttbar_file.stem}_topcal.root"): "topcal"},
                                         schemaclass=NanoAODSchema, mode="eager").events()
    raw = uproot.open(out / f"{ttbar_file.stem}_topcal.root")["topcal"].arrays(["FatJet_ptPred"])
    assert ak.all(events.FatJet.ptPred == raw.FatJet_ptPred)
    assert len(events) == 300


def test_root_friend_draw_and_rdataframe_agree_with_uproot(friends, ttbar_file):
    try:
        import ROOT
    except ImportError:
        pytest.fail("ROOT is needed for this test: pip install -e '.[test]'")
    out, _ = friends
    friend_path = str(out / f"{ttbar_file.stem}_topcal.root")
    chain = ROOT.TChain("Delphes")
    chain.Add(str(ttbar_file))
    chain.AddFriend("topcal", friend_path)
    selected = chain.Draw("topcal.FatJet_ptPred", "EFlowTrack_size > 60", "goff")
    values = np.array([chain.GetV1()[i] for i in range(selected)])
    delphes = uproot.open(ttbar_file)["Delphes"]["EFlowTrack_size"].array()
    friend = uproot.open(friend_path)["topcal"]["FatJet_ptPred"].array()
    expected = ak.to_numpy(ak.flatten(friend[delphes > 60]))
    np.testing.assert_allclose(np.sort(values), np.sort(expected), rtol=1e-12)
    rdf = ROOT.RDataFrame(chain)
    total = rdf.Filter("EFlowTrack_size > 60").Sum("topcal.nFatJet").GetValue()
    assert total == int(ak.sum(ak.num(friend[delphes > 60])))


def test_executors_and_one_model_load_per_worker(model_dir, ttbar_file, tmp_path, monkeypatch):
    import topcal.train.model as model_module
    from topcal.predict import calibrator

    loads = []
    real = model_module.load_model
    monkeypatch.setattr(model_module, "load_model", lambda p: loads.append(p) or real(p))
    calibrator._MODELS.clear()
    predict(model_dir, [ttbar_file], tmp_path / "it", chunksize=70, samples=5, progress=False)
    assert len(loads) == 1  # five chunks, one load
    predict(model_dir, [ttbar_file], tmp_path / "dask", executor="dask", workers=2, chunksize=70, samples=5,
            progress=False)
    a = uproot.open(tmp_path / "it" / f"{ttbar_file.stem}_topcal.root")["topcal"].arrays()
    b = uproot.open(tmp_path / "dask" / f"{ttbar_file.stem}_topcal.root")["topcal"].arrays()
    for field in a.fields:
        assert ak.all(a[field] == b[field]), field


def test_bad_inputs(model_dir, ttbar_file, tmp_path, friends):
    out, _ = friends
    with pytest.raises(OutputError, match="friend exists; pass --overwrite"):
        predict(model_dir, [ttbar_file], out, progress=False)
    with pytest.raises(InputFileError, match="model directory not found"):
        predict(tmp_path / "nomodel", [ttbar_file], tmp_path / "f", progress=False)
    with pytest.raises(InputFileError, match="trained on R = 1.2 jets, not R = 0.8"):
        predict(model_dir, [ttbar_file], tmp_path / "f", radius=0.8, progress=False)
    junk = tmp_path / "junk.root"
    junk.write_bytes(b"not root")
    with pytest.raises(InputFileError, match="junk.root: not a readable ROOT file"):
        predict(model_dir, [junk], tmp_path / "f", progress=False)
    assert not list((tmp_path / "f").glob("*.root")) if (tmp_path / "f").exists() else True


def test_a_fresh_process_loads_a_second_model_after_predicting(model_dir, ttbar_file, tmp_path):
    """Op determinism is on once a model predicts; a model loaded after that (a Calibrator's reference
    model, a user's second model) must still build without TensorFlow's global seed set."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(model_dir, tmp_path / "reference")  # another directory: loaded a second time
    code = ("import sys, numpy as np, awkward as ak; from topcal.predict.calibrator import Calibrator; "
            "from topcal.io.delphes_reader import open_events; "
            "cal = Calibrator(sys.argv[1], samples=5, reference=sys.argv[2]); "
            "jets = cal(open_events(sys.argv[3], 0, 50)); "
            "print('jets', int(ak.sum(ak.num(jets))), 'sigmaCal', float(ak.sum(jets.sigmaCal)))")
    run = subprocess.run([sys.executable, "-c", code, str(model_dir), str(tmp_path / "reference"),
                          str(ttbar_file)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "sigmaCal 0.0" in run.stdout and "jets 0 " not in run.stdout  # the same weights: no sigma_cal
