"""topcal process: the coffea processor, executors, flattening, the dataset on disk, real and bad input."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from topcal.cli import main
from topcal.config import ProcessConfig
from topcal.data import EMBEDDED_SAMPLE
from topcal.errors import InputFileError, OutputError
from topcal.io.dataset import open_dataset
from topcal.io.delphes_reader import open_events
from topcal.process.fatjets import cluster, eflow_inputs
from topcal.process.run import process


@pytest.fixture(scope="session")
def dataset(ttbar_file, tmp_path_factory):
    """The 300-event sample processed with the iterative executor in chunks of 100 events."""
    out = tmp_path_factory.mktemp("process") / "ds"
    summary = process([ttbar_file], out, ProcessConfig(), chunksize=100, progress=False)
    return summary, open_dataset(out)


def test_cutflow_and_physics(dataset):
    summary, ds = dataset
    cf = summary.cutflow
    assert cf["events"] == 300
    assert cf["events with a truth top"] == 300
    # several hundred matched jets from 300 ttbar events; flattening keeps a fraction of them
    assert cf["jets truth-matched"] > 300
    assert 0 < cf["jets kept by flattening"] <= cf["jets truth-matched"]
    assert ds.n_jets == cf["jets kept by flattening"]
    jets = ds.read()
    assert np.all((jets["pt"] >= 400) & (jets["pt"] < 1000) & (np.abs(jets["eta"]) < 2))
    # the fat jet carries most of the top's pT and has about the top mass
    assert 0.90 < np.median(jets["pt"] / jets["pt_truth"]) < 1.02
    assert 140 < np.median(jets["mass"]) < 190
    assert abs(np.median(jets["top_mass"]) - 172.5) < 2


def test_constituents_rebuild_the_jet(dataset):
    """pT-ordered, zero-padded constituents in GeV/1000 whose sum is the jet (when all fit)."""
    _, ds = dataset
    jets = ds.read()
    cons = jets["constituents"].astype(np.float64) * 1000.0
    n = jets["n_constituents"]
    assert cons.shape[1:] == (100, 4)
    nonzero = (cons[..., 0] > 0).sum(axis=1)
    assert np.array_equal(nonzero, np.minimum(n, 100))
    pt = np.hypot(cons[..., 1], cons[..., 2])
    assert np.all(np.diff(pt, axis=1)[cons[:, 1:, 0] > 0] <= 1e-3)
    full = n <= 100
    total = cons[full].sum(axis=1)
    jet_pt = np.hypot(total[:, 1], total[:, 2])
    np.testing.assert_allclose(jet_pt, jets["pt"][full], rtol=1e-5)


def test_bookkeeping_points_back_to_the_event(dataset, ttbar_file):
    """file, entry and jet_index find the same jet again when the event is re-clustered."""
    _, ds = dataset
    jets = ds.read()
    assert set(jets["file"]) == {str(ttbar_file)}
    events = open_events(ttbar_file)
    cfg = ProcessConfig()
    all_jets, _ = cluster(eflow_inputs(events, leptons=cfg.jet_leptons), 1.2, cfg.cluster_pt_min_gev)
    again = ak.to_numpy(all_jets.rho[jets["entry"], jets["jet_index"]])
    np.testing.assert_allclose(again, jets["pt"], rtol=1e-12)


def test_manifest_histograms_and_figures(dataset):
    summary, ds = dataset
    manifest = json.loads((ds.path / "dataset.json").read_text())
    assert manifest["config"] == ProcessConfig(max_constituents=100).to_dict()  # chosen by process(): no ISR
    assert manifest["inputs"][0]["entries"] == 300
    assert sum(p["jets"] for p in manifest["parts"]) == ds.n_jets
    with uproot.open(ds.path / "histograms.root") as f:
        selected = f["selected/pt_truth_vs_pt_jet"].to_hist()
        final = f["dataset/pt_jet"].to_hist()
    assert selected.sum(flow=True) == summary.cutflow["jets with finite pT,t(truth) in window"]
    assert final.sum(flow=True) == ds.n_jets
    names = sorted(p.name for p in summary.figures)
    assert names == sorted(f"{n}.{e}" for n in ("pt_truth_vs_pt_jet", "pt_truth_narrow_slice") for e in ("png", "pdf"))
    assert all(p.stat().st_size > 1000 for p in summary.figures)


def test_streaming_batches_cover_the_dataset(dataset):
    _, ds = dataset
    whole = ds.read(["pt", "constituents"])
    batches = list(ds.iter_batches(["pt", "constituents"], batch_jets=37))
    assert max(len(b["pt"]) for b in batches) <= 37
    np.testing.assert_array_equal(np.concatenate([b["pt"] for b in batches]), whole["pt"])
    np.testing.assert_array_equal(np.concatenate([b["constituents"] for b in batches]), whole["constituents"])
    assert len(ds.read(max_jets=10)["pt"]) == 10


@pytest.mark.parametrize("executor,workers,chunksize", [("futures", 2, 70), ("dask", 2, 130)])
def test_executors_give_identical_datasets(dataset, ttbar_file, tmp_path, executor, workers, chunksize):
    _, reference = dataset
    out = tmp_path / executor
    process([ttbar_file], out, ProcessConfig(), executor=executor, workers=workers, chunksize=chunksize,
            progress=False, figures=False)
    other = open_dataset(out)
    a, b = reference.read(), other.read()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert other.manifest["cutflow"] == reference.manifest["cutflow"]
    assert other.manifest["flatten"] == reference.manifest["flatten"]


def test_no_flatten_keeps_every_matched_jet(ttbar_file, tmp_path):
    summary = process([ttbar_file], tmp_path / "all", ProcessConfig(flatten=False), progress=False, figures=False)
    assert summary.n_jets == summary.cutflow["jets with finite pT,t(truth) in window"]
    assert summary.kept_fraction == 1.0


def test_trimming_grooms_only_what_the_network_sees(ttbar_file, tmp_path):
    """With ``groom = "trimming"`` the same jets enter the dataset with the same axis, pT,j, mass, constituent
    count and label; their stored constituents are a subset of the ungroomed ones (the soft, wide-angle
    part: their pT sum falls, never rises), with their origins; the manifest records the option."""
    cfgs = {name: ProcessConfig(flatten=False, groom=name) for name in ("none", "trimming")}
    ds = {name: open_dataset(process([ttbar_file], tmp_path / name, cfg, progress=False, figures=False).path)
          for name, cfg in cfgs.items()}
    plain, trimmed = ds["none"].read(), ds["trimming"].read()
    for column in ("pt", "eta", "phi", "mass", "n_constituents", "pt_truth", "entry", "jet_index"):
        np.testing.assert_array_equal(plain[column], trimmed[column])
    sum_pt = {name: np.hypot(t["constituents"][..., 1], t["constituents"][..., 2]).sum(axis=1)
              for name, t in (("none", plain), ("trimming", trimmed))}
    assert np.all(sum_pt["trimming"] <= sum_pt["none"] * (1 + 1e-6))
    assert np.any(sum_pt["trimming"] < sum_pt["none"] * 0.999)
    kept = (trimmed["constituent_origin"] > 0).sum(axis=1)
    assert np.all(kept <= (plain["constituent_origin"] > 0).sum(axis=1)) and np.all(kept >= 3)
    # every stored groomed constituent is one of the jet's stored ungroomed ones, with the same origin
    # (jets with all their constituents stored)
    whole = plain["n_constituents"] <= plain["constituents"].shape[1]
    for j in np.flatnonzero(whole):
        e_plain = plain["constituents"][j, :, 0]
        where = np.searchsorted(np.sort(e_plain), trimmed["constituents"][j, :kept[j], 0])
        order = np.argsort(e_plain)
        np.testing.assert_array_equal(e_plain[order][where], trimmed["constituents"][j, :kept[j], 0])
        np.testing.assert_array_equal(plain["constituent_origin"][j][order][where],
                                      trimmed["constituent_origin"][j, :kept[j]])
    assert whole.mean() > 0.9
    assert ds["trimming"].config.groom == "trimming" and ds["none"].config.groom == "none"
    with pytest.raises(ValueError, match="groom"):
        ProcessConfig(groom="pruning").validate()


def test_truth_window_and_decay_match_drop_jets(ttbar_file, tmp_path):
    """The defaults drop jets whose top's decay quarks are outside the jet or whose pT,t(truth) is outside
    400..1000 GeV; the looser ``design_v1`` definition keeps them."""
    from topcal.config import design_v1_process_config

    strict = process([ttbar_file], tmp_path / "strict", ProcessConfig(flatten=False), progress=False,
                     figures=False)
    loose = process([ttbar_file], tmp_path / "loose", design_v1_process_config(flatten=False), progress=False,
                    figures=False)
    truth = open_dataset(tmp_path / "strict").read(["pt_truth"])["pt_truth"]
    assert np.all((truth >= 400) & (truth < 1000))
    assert strict.cutflow["jets truth-matched"] < loose.cutflow["jets truth-matched"]
    assert strict.n_jets < loose.n_jets


def test_background_mode_and_paper_labels(ttbar_file, tmp_path):
    """--background keeps every jet in the window (truth NaN where no top is near); the hard-process label
    and leptons in the inputs are what the configuration says."""
    cfg = ProcessConfig(truth_match=False, flatten=False, top_label="hard-process", jet_leptons=True,
                        jet_pt_min_gev=100.0)  # a wide window, so that it holds jets without a top
    summary = process([ttbar_file], tmp_path / "bkg", cfg, progress=False, figures=False)
    jets = open_dataset(tmp_path / "bkg").read(["pt", "pt_truth", "top_pt", "hard_top_pt"])
    assert len(jets["pt"]) == summary.cutflow["jets in pT,j window"] > summary.cutflow["jets truth-matched"]
    matched = np.isfinite(jets["pt_truth"])
    assert matched.sum() == summary.cutflow["jets truth-matched"]
    assert np.array_equal(jets["pt_truth"][matched], jets["hard_top_pt"][matched])
    assert np.all(np.isnan(jets["top_pt"][~matched]))
    with_leptons = process([ttbar_file], tmp_path / "lep", ProcessConfig(flatten=False, jet_leptons=True),
                           progress=False, figures=False)
    without = process([ttbar_file], tmp_path / "nolep", ProcessConfig(flatten=False, jet_leptons=False),
                      progress=False, figures=False)
    pt_with = open_dataset(tmp_path / "lep").read(["pt"])["pt"]
    pt_without = open_dataset(tmp_path / "nolep").read(["pt"])["pt"]
    assert with_leptons.n_jets >= without.n_jets and pt_with.sum() > pt_without.sum()


def test_real_delphes_gives_a_valid_empty_dataset(real_delphes, tmp_path):
    summary = process([real_delphes], tmp_path / "real", progress=False)
    assert summary.cutflow["events"] == 25
    assert summary.cutflow["jets above clustering threshold"] > 0
    assert summary.n_jets == 0
    assert open_dataset(tmp_path / "real").n_jets == 0


def test_old_delphes_without_track_mass(ttbar_file, tmp_path):
    """A file whose EFlowTrack has no Mass leaf (older DELPHES) is processed with the pion mass."""
    old = tmp_path / "old.root"
    tree = uproot.open(ttbar_file)["Delphes"]
    collections = ("Event", "Particle", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron")
    cols = {}
    for name in collections:
        leaves = [k for k in tree.keys() if k.startswith(f"{name}.") and k != "EFlowTrack.Mass"]
        arr = tree.arrays(leaves)
        cols[name] = ak.zip({k.split(".", 1)[1]: arr[k] for k in leaves})
    with uproot.recreate(old) as f:
        f.mktree("Delphes", {k: v.type.content for k, v in cols.items()},
                 counter_name=lambda c: f"{c}_size", field_name=lambda o, i: f"{o}.{i}")
        f["Delphes"].extend(cols)
    summary = process([old], tmp_path / "old_ds", progress=False, figures=False)
    assert summary.cutflow["jets truth-matched"] > 300


def test_bad_inputs(ttbar_file, tmp_path, real_delphes):
    out = tmp_path / "ds"
    with pytest.raises(InputFileError, match="missing.root: file not found"):
        process([tmp_path / "missing.root"], out, progress=False)
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(ttbar_file.read_bytes()[:200_000])
    with pytest.raises(InputFileError, match="truncated.root: file is truncated"):
        process([truncated], out, progress=False)
    slim = EMBEDDED_SAMPLE  # no Tower collection
    with pytest.raises(InputFileError, match="ttbar_noisr_2000ev.root: collection 'Tower' missing"):
        process([slim], out, ProcessConfig(use_towers=True), progress=False)
    with pytest.raises(InputFileError, match="no file matches"):
        process([str(tmp_path / "*.nothing")], out, progress=False)
    assert not out.exists()
    summary = process([truncated, ttbar_file], out, skip_bad_files=True, progress=False, figures=False)
    assert len(summary.skipped) == 1 and "truncated.root" in summary.skipped[0]
    assert summary.cutflow["events"] == 300
    with pytest.raises(OutputError, match="--overwrite"):
        process([ttbar_file], out, progress=False)


def test_failed_run_leaves_nothing(ttbar_file, tmp_path, monkeypatch):
    import topcal.process.run as run

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(run, "finalize", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        process([ttbar_file], tmp_path / "ds", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_json_fileset_and_cli(ttbar_file, tmp_path):
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"ttbar": {"files": {str(ttbar_file): "Delphes"}}}))
    result = CliRunner().invoke(main, ["process", str(fileset), "-o", str(tmp_path / "ds"), "--quiet",
                                       "--no-figures", "--pt-min", "500", "--max-constituents", "60"])
    assert result.exit_code == 0, result.output
    assert "jets kept by flattening" in result.output
    ds = open_dataset(tmp_path / "ds")
    assert ds.config.jet_pt_min_gev == 500 and ds.config.max_constituents == 60
    assert ds.read(max_jets=1)["constituents"].shape == (1, 60, 4)
    bad = CliRunner().invoke(main, ["process", str(tmp_path / "nope.root"), "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2
    assert bad.output.strip().endswith("nope.root: file not found")


def test_opening_incomplete_datasets(tmp_path):
    from topcal.io.dataset import write_dataset

    ds = write_dataset(tmp_path / "ds", {"pt": np.arange(10.0)}, ProcessConfig(), part_jets=5)
    assert open_dataset(ds.path).n_jets == 10
    (ds.path / "part-00001.parquet").unlink()
    with pytest.raises(InputFileError, match="part-00001.parquet listed in dataset.json is missing"):
        open_dataset(ds.path)
    with pytest.raises(InputFileError, match="not a complete topcal dataset"):
        open_dataset(tmp_path)


def test_constituent_count_chosen_by_the_library(ttbar_isr_file, tmp_path):
    """process() gives ISR inputs 200 constituents unless a card or flag sets the number; 100 stays 100."""
    from topcal.config import load_card

    isr_file = ttbar_isr_file
    auto = process([isr_file], tmp_path / "auto", ProcessConfig(flatten=False), progress=False, figures=False)
    assert open_dataset(auto.path).config.max_constituents == 200
    card = tmp_path / "card.toml"
    card.write_text("max_constituents = 100\nflatten = false\n")
    given = process([isr_file], tmp_path / "given", load_card(card, cls=ProcessConfig), progress=False, figures=False)
    assert open_dataset(given.path).config.max_constituents == 100
    cli = CliRunner().invoke(main, ["process", str(isr_file), "-o", str(tmp_path / "cli"), "--quiet", "--no-figures",
                                    "--config", str(card)])
    assert cli.exit_code == 0, cli.output
    assert open_dataset(tmp_path / "cli").config.max_constituents == 100


def test_isr_input_and_the_before_fsr_label(ttbar_isr_file, ttbar_file, tmp_path):
    """An ISR input with the hard-process label gets a note naming --top-label before-fsr; with that label
    pT,t(truth) is the top after the ISR recoil (``prefsr_top_pt``), and no note; no ISR, no note."""
    hard = process([ttbar_isr_file], tmp_path / "hard", ProcessConfig(flatten=False), progress=False, figures=False)
    assert any("--top-label before-fsr" in n for n in hard.notes) and "note: " in str(hard)
    before = process([ttbar_isr_file], tmp_path / "before", ProcessConfig(flatten=False, top_label="before-fsr"),
                     progress=False, figures=False)
    assert before.notes == []
    jets = open_dataset(before.path).read(["pt_truth", "prefsr_top_pt", "hard_top_pt"])
    assert len(jets["pt_truth"]) > 0 and np.array_equal(jets["pt_truth"], jets["prefsr_top_pt"])
    assert np.sqrt(np.mean((jets["prefsr_top_pt"] - jets["hard_top_pt"]) ** 2)) > 5.0  # the ISR recoil
    plain = process([ttbar_file], tmp_path / "plain", ProcessConfig(flatten=False), progress=False, figures=False)
    assert plain.notes == []
