"""Careless and hostile use: each defect found by trying the command line that way, reproduced and refused
with one line naming the file, argument or value, a non-zero exit code, and nothing lost or half-written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner
from toys import toy_dataset

from topcal.cli import main
from topcal.config import ProcessConfig, TrainConfig
from topcal.errors import ConfigError, InputFileError, OutputError
from topcal.io.atomic import atomic_output


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def one_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.startswith("topcal:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_card_settings_are_not_replaced_by_cli_defaults(tmp_path):
    card = tmp_path / "isr.toml"
    card.write_text('[generator]\nisr = true\nprocess = "qcd"\n')
    code, out = run("generate", "-o", tmp_path / "x.root", "-n", "4", "--config", card, "--quiet")
    assert code == 0, out
    stored = json.loads(str(uproot.open(tmp_path / "x.root")["topcal_config"]))
    assert stored["generator"]["isr"] is True and stored["generator"]["process"] == "qcd"
    # a flag that was given wins, and is what the file records
    code, out = run("generate", "-o", tmp_path / "y.root", "-n", "4", "--config", card, "--no-isr", "--quiet")
    assert code == 0, out
    assert json.loads(str(uproot.open(tmp_path / "y.root")["topcal_config"]))["generator"]["isr"] is False


@pytest.mark.parametrize("text, message", [
    ('[generator]\npthat_min_gev = "fast"\n', "generator.pthat_min_gev: 'fast' must be a number"),
    ("[generator]\nextra_settings = 5\n", "generator.extra_settings: 5 must be a list"),
    ("generator = 5\n", "generator: 5 must be a table"),
    ("chunk_events = 50.5\n", "chunk_events: 50.5 must be a whole number"),
])
def test_wrong_typed_card_values(tmp_path, text, message):
    card = tmp_path / "card.toml"
    card.write_text(text)
    code, out = run("generate", "-o", tmp_path / "x.root", "-n", "4", "--config", card)
    assert code == 2 and message in one_line(out)
    assert not (tmp_path / "x.root").exists()


def test_process_card_types_and_a_non_utf8_card(tmp_path, ttbar_file):
    card = tmp_path / "card.toml"
    card.write_text('flatten = "no"\n')
    code, out = run("process", ttbar_file, "-o", tmp_path / "ds", "--config", card)
    assert code == 2 and "flatten: 'no' must be true or false" in one_line(out)
    card.write_bytes(b"\xff\xfe\x00 max_constituents = 5")
    code, out = run("process", ttbar_file, "-o", tmp_path / "ds", "--config", card)
    assert code == 2 and "not a text file" in one_line(out)
    assert not (tmp_path / "ds").exists()


def test_an_output_that_appears_during_the_run_is_not_replaced(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(OutputError, match="appeared while this run was writing"):
        with atomic_output(target) as tmp:
            tmp.mkdir()
            (tmp / "mine").write_text("mine")
            target.mkdir()  # another run finished first
            (target / "theirs").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left


def test_outputs_never_replace_their_inputs(tmp_path, ttbar_file):
    events = tmp_path / "evts"
    events.mkdir()
    shutil.copy(ttbar_file, events / "ev.root")
    code, out = run("process", events / "ev.root", "-o", events, "--overwrite")
    assert code == 2 and "contains the input" in one_line(out)
    assert (events / "ev.root").exists()
    ds = toy_dataset(tmp_path / "ds", 200, seed=1)
    code, out = run("train", ds.path, "-o", ds.path, "--overwrite")
    assert code == 2 and "is the input" in one_line(out)
    assert (ds.path / "dataset.json").exists()
    code, out = run("train", ds.path, "-o", ds.path / "model")
    assert code == 2 and "lies inside the input" in one_line(out)


def test_train_keeps_an_interrupted_checkpoint(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 200, seed=1)
    partial = tmp_path / "m.partial"
    partial.mkdir()
    (partial / "precious").write_text("checkpoint")
    code, out = run("train", ds.path, "-o", tmp_path / "m")
    assert code == 2 and "--resume" in one_line(out)
    assert (partial / "precious").read_text() == "checkpoint"
    shutil.rmtree(partial)
    partial.write_text("a file")
    code, out = run("train", ds.path, "-o", tmp_path / "m")
    assert code == 2 and "not a training checkpoint directory" in one_line(out)


def test_resume_with_a_changed_configuration_is_refused(tmp_path, monkeypatch):
    import topcal.train.fit as fit

    ds = toy_dataset(tmp_path / "ds", 400, seed=1)
    cfg = TrainConfig(epochs=3, phi_hidden=[8], hidden=[8])

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit._MemberRun, "after_epoch", crash)
    with pytest.raises(KeyboardInterrupt):
        fit.train(ds.path, tmp_path / "m", cfg, progress=False)
    monkeypatch.undo()
    from topcal.errors import ConfigError

    with pytest.raises(ConfigError, match="different from the interrupted run"):
        fit.train(ds.path, tmp_path / "m", TrainConfig(epochs=3, phi_hidden=[16], hidden=[8]), resume=True,
                  progress=False)
    other = toy_dataset(tmp_path / "other", 400, seed=2)
    with pytest.raises(ConfigError, match="another dataset than the interrupted run's"):
        fit.train(other.path, tmp_path / "m", cfg, resume=True, progress=False)
    shutil.move(ds.path, tmp_path / "moved")  # the same dataset elsewhere is the same dataset
    assert fit.train(tmp_path / "moved", tmp_path / "m", cfg, resume=True, progress=False) is not None


def _flip_a_byte(path: Path, leaf: str) -> None:
    tree = uproot.open(path)["Delphes"]
    branch = tree[leaf]
    seek, size = int(branch.member("fBasketSeek")[0]), int(branch.member("fBasketBytes")[0])
    with open(path, "r+b") as fh:
        fh.seek(seek + size // 2)
        byte = fh.read(1)
        fh.seek(seek + size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_damaged_data_inside_a_valid_file(tmp_path, ttbar_file):
    bad = tmp_path / "bad.root"
    shutil.copy(ttbar_file, bad)
    _flip_a_byte(bad, "EFlowTrack.PT")
    code, out = run("process", bad, "-o", tmp_path / "ds", "--quiet")
    line = one_line(out)
    assert code == 2 and "bad.root" in line and "EFlowTrack.PT" in line and "damaged" in line
    assert "Performed attempt" not in out  # a damaged basket fails the same way every time: no retries
    assert not (tmp_path / "ds").exists()
    code, out = run("process", bad, ttbar_file, "-o", tmp_path / "ds", "--skip-bad-files", "--quiet")
    assert code == 0, out
    assert "skipped bad file" in out and "EFlowTrack.PT" in out
    code, out = run("info", bad)
    assert code == 0  # the file's structure is fine...
    code, out = run("info", bad, "--check")
    assert code == 2 and "EFlowTrack.PT" in one_line(out)  # ...its data is not


def rewrite(src: Path, dst: Path, change) -> Path:
    """``src`` written again with topcal's DELPHES writer; ``change(name, fields)`` edits each collection's
    dict of leaves first."""
    import awkward as ak

    from topcal.io.delphes_writer import delphes_file

    tree = uproot.open(src)["Delphes"]
    collections = {}
    for name in ("Event", "Particle", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron"):
        arrays = tree.arrays(filter_name=f"{name}.*")
        fields = {f.split(".", 1)[1]: arrays[f] for f in arrays.fields}
        change(name, fields)
        collections[name] = ak.zip(fields)
    with delphes_file(dst, {}, False, "zlib", 1) as writer:
        writer.write(collections)
    return dst


def test_missing_leaf_is_one_line(tmp_path, ttbar_file):
    def drop_et(name, fields):
        if name == "EFlowPhoton":
            del fields["ET"]

    noleaf = rewrite(ttbar_file, tmp_path / "noleaf.root", drop_et)
    code, out = run("process", noleaf, "-o", tmp_path / "ds")
    assert code == 2 and "branch 'EFlowPhoton.ET' missing" in one_line(out)


def test_extra_and_damaged_unused_leaves_are_not_read(tmp_path, ttbar_file):
    """Older DELPHES files carry Particle leaves topcal cannot read (Particle.Constituents): only the
    leaves topcal uses are read, so a damaged extra leaf changes nothing."""
    import awkward as ak

    def add_leaves(name, fields):
        if name == "Particle":
            fields["Constituents"] = ak.values_astype(fields["PID"] * 0 + 7, np.int32)
            fields["Rapidity2"] = fields["Eta"]

    extra = rewrite(ttbar_file, tmp_path / "extra.root", add_leaves)
    _flip_a_byte(extra, "Particle.Constituents")
    cfg = ProcessConfig(flatten=False)
    from topcal.process.run import process

    a = process([ttbar_file], tmp_path / "a", cfg, progress=False, figures=False)
    b = process([extra], tmp_path / "b", cfg, progress=False, figures=False, skip_bad_files=True)
    assert a.n_jets == b.n_jets > 0 and not b.skipped
    ta, tb = (open_dataset_read(p) for p in (tmp_path / "a", tmp_path / "b"))
    np.testing.assert_array_equal(ta["pt"], tb["pt"])
    np.testing.assert_array_equal(ta["pt_truth"], tb["pt_truth"])


def open_dataset_read(path):
    from topcal.io.dataset import open_dataset

    return open_dataset(path).read(["pt", "pt_truth"])


def test_the_same_file_twice_is_refused(tmp_path, ttbar_file):
    link = tmp_path / "link.root"
    link.symlink_to(ttbar_file)
    code, out = run("process", ttbar_file, link, "-o", tmp_path / "ds")
    assert code == 2 and "given twice" in one_line(out)
    dotted = ttbar_file.parent / ".." / ttbar_file.parent.name / ttbar_file.name
    code, out = run("process", ttbar_file, dotted, "-o", tmp_path / "ds")
    assert code == 2 and "given twice" in one_line(out)


def test_bad_tree_name_and_scheduler(tmp_path, ttbar_file):
    ds = toy_dataset(tmp_path / "ds", 300, seed=1)
    from topcal.train.fit import train

    train(ds.path, tmp_path / "m", TrainConfig(epochs=1, phi_hidden=[8], hidden=[8]), progress=False)
    code, out = run("predict", tmp_path / "m", ttbar_file, "-o", tmp_path / "f", "--tree-name", "")
    assert code == 2 and "--tree-name" in one_line(out)
    code, out = run("process", ttbar_file, "-o", tmp_path / "ds2", "--executor", "dask", "--scheduler", "foo")
    assert code == 2 and "scheduler foo" in one_line(out)


def test_absurd_event_counts_are_refused_at_once(tmp_path):
    code, out = run("generate", "-o", tmp_path / "x.root", "-n", "100000000000")
    assert code == 2 and "--events" in one_line(out)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with open(task / "children") as fh:
            found += [int(c) for c in fh.read().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker death on parent death is Linux's prctl")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_generation_leaves_no_workers_and_no_litter(tmp_path, sig):
    out = tmp_path / "x.root"
    proc = subprocess.Popen([sys.executable, "-m", "topcal.cli", "generate", "-o", str(out), "-n", "20000",
                             "-j", "2", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    workers = []
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = _children(proc.pid)
    assert len(workers) >= 2, "the workers never started"
    time.sleep(2)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "orphaned generator workers"
    if sig == signal.SIGTERM:
        assert proc.returncode == 130
        assert "interrupted" in proc.stderr.read().decode()
        assert list(tmp_path.iterdir()) == []
    else:  # SIGKILL leaves the temporary; the next run cleans it up
        assert not out.exists()
        code, text = run("generate", "-o", out, "-n", "3", "--quiet")
        assert code == 0, text
        assert [p.name for p in tmp_path.iterdir()] == ["x.root"]


def test_unwritable_output_is_one_line(tmp_path, ttbar_file):
    if os.geteuid() == 0:
        locked = Path("/proc/topcal-cannot-write-here")  # root may write anywhere else
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
    code, out = run("process", ttbar_file, "-o", locked / "ds")
    assert code in (1, 2) and str(locked) in one_line(out)


def test_empty_and_text_files_are_one_line(tmp_path):
    (tmp_path / "empty.root").write_bytes(b"")
    (tmp_path / "text.root").write_text("hello\nworld\n")
    for name, detail in (("empty.root", "empty"), ("text.root", "does not start with 'root'")):
        code, out = run("info", tmp_path / name)
        line = one_line(out)
        assert code == 2 and name in line and detail in line


def test_non_finite_truth_is_dropped_and_counted(tmp_path, ttbar_file):
    """A top whose pT is NaN gives no NaN label in the dataset: the jet is dropped and counted."""
    import awkward as ak

    def nan_top_pt(name, fields):
        if name == "Particle":
            fields["PT"] = ak.where(abs(fields["PID"]) == 6, np.nan, fields["PT"])

    bad = rewrite(ttbar_file, tmp_path / "nantop.root", nan_top_pt)
    from topcal.process.run import process

    summary = process([bad], tmp_path / "ds", ProcessConfig(flatten=False), progress=False, figures=False)
    truth = open_dataset_read(tmp_path / "ds")["pt_truth"] if summary.n_jets else np.array([])
    assert np.all(np.isfinite(truth))
    assert summary.cutflow["jets with finite pT,t(truth) in window"] < summary.cutflow["jets truth-matched"]


def test_a_symlinked_output_is_replaced_not_followed(tmp_path, ttbar_file):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("not ours to delete")
    link = tmp_path / "ds"
    link.symlink_to(target)
    code, out = run("process", ttbar_file, "-o", link, "--overwrite", "--no-figures", "--quiet")
    assert code == 0, out
    assert not link.is_symlink() and (link / "dataset.json").exists()
    assert (target / "keep").read_text() == "not ours to delete"


# --overwrite replaces only a topcal output of the same kind


def _thesis(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "thesis.tex").write_text("t")
    return folder / "thesis.tex"


def test_overwrite_never_replaces_a_folder_of_other_files(tmp_path, ttbar_file):
    thesis = _thesis(tmp_path / "u")
    code, out = run("process", ttbar_file, "-o", tmp_path / "u", "--overwrite", "--quiet")
    assert code == 2 and "not a topcal dataset" in one_line(out)
    ds = toy_dataset(tmp_path / "ds", 200, seed=1)
    code, out = run("train", ds.path, "-o", tmp_path / "u", "--overwrite", "--quiet")
    assert code == 2 and "not a topcal model" in one_line(out)
    code, out = run("tagger", ds.path, ds.path, "-o", tmp_path / "u", "--overwrite", "--quiet")
    assert code == 2 and "not a topcal tagger" in one_line(out)
    assert thesis.read_text() == "t"
    # a dataset is not a model, and a real dataset with a file of the user's in it is not replaced either
    toy_dataset(tmp_path / "ds2", 30, seed=2)
    code, out = run("train", ds.path, "-o", tmp_path / "ds2", "--overwrite", "--quiet")
    assert code == 2 and "not a topcal model (no model.json)" in one_line(out)
    _thesis(tmp_path / "ds2")
    code, out = run("process", ttbar_file, "-o", tmp_path / "ds2", "--overwrite", "--quiet")
    assert code == 2 and "holds 'thesis.tex'" in one_line(out)
    assert (tmp_path / "ds2" / "thesis.tex").exists() and (tmp_path / "ds2" / "dataset.json").exists()


def test_overwrite_never_replaces_the_working_directory_or_above(tmp_path, ttbar_file, monkeypatch):
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    thesis = _thesis(tmp_path / "a")
    monkeypatch.chdir(sub)
    for target, where in ((".", "is the working directory"), ("..", "a folder above the working directory")):
        code, out = run("process", ttbar_file, "-o", target, "--overwrite", "--quiet")
        assert code == 2 and where in one_line(out)
        code, out = run("process", ttbar_file, "-o", target, "--quiet")  # also without --overwrite
        assert code == 2 and where in one_line(out)
    code, out = run("demo", "--sample", ttbar_file, "-o", "..", "--quiet")
    assert code == 2 and "a folder above the working directory" in one_line(out)
    assert thesis.read_text() == "t" and sub.is_dir()


def test_overwrite_of_a_root_file_only_replaces_topcal_files(tmp_path, ttbar_file):
    mine = tmp_path / "mine.root"
    with uproot.recreate(mine) as f:
        f["note"] = "an analysis of mine"
    code, out = run("generate", "-o", mine, "-n", "4", "--overwrite", "--quiet")
    assert code == 2 and "not a ROOT file written by topcal" in one_line(out)
    text = tmp_path / "notes.root"
    text.write_text("not ROOT at all")
    code, out = run("generate", "-o", text, "-n", "4", "--overwrite", "--quiet")
    assert code == 2 and "not a ROOT file written by topcal" in one_line(out)
    assert text.read_text() == "not ROOT at all" and "note" in uproot.open(mine)
    shutil.copy(ttbar_file, tmp_path / "ev.root")  # topcal's own event file is replaced
    code, out = run("generate", "-o", tmp_path / "ev.root", "-n", "4", "--overwrite", "--quiet")
    assert code == 0, out
    assert uproot.open(tmp_path / "ev.root")["Delphes"].num_entries == 4


def test_predict_and_evaluate_overwrite_only_their_own_outputs(tmp_path):
    from topcal.io.atomic import OutputKind, check_output
    from topcal.predict.friend_tree import FRIEND_FILE
    from topcal.train.evaluate import OUTPUT as REPORT

    friend = tmp_path / "ev_topcal.root"
    with uproot.recreate(friend) as f:
        f["x"] = "mine"
    with pytest.raises(OutputError, match="not a ROOT file written by topcal"):
        check_output(friend, True, kind=FRIEND_FILE)
    report = tmp_path / "rep"
    _thesis(report)
    with pytest.raises(OutputError, match="not a topcal report"):
        check_output(report, True, kind=REPORT)
    (report / "thesis.tex").unlink()
    (report / "report.json").write_text(json.dumps({"topcal_version": "0"}))
    assert check_output(report, True, kind=REPORT) == report
    (tmp_path / "empty").mkdir()  # an empty folder holds nothing to lose
    assert check_output(tmp_path / "empty", True, kind=OutputKind("x", "x.json"))


# a dataset's manifest, parts and checksums agree, or it is not opened


def _edit_manifest(path: Path, change) -> None:
    manifest = json.loads((path / "dataset.json").read_text())
    change(manifest)
    (path / "dataset.json").write_text(json.dumps(manifest))


def test_an_edited_jet_count_is_refused(tmp_path):
    from topcal.io.dataset import open_dataset

    ds = toy_dataset(tmp_path / "ds", 300, seed=1)
    _edit_manifest(ds.path, lambda m: m.update(n_jets=1100))
    code, out = run("train", ds.path, "-o", tmp_path / "m", "--quiet")
    assert code == 2 and "n_jets 1100 differs from the parts' 300 jets" in one_line(out)
    _edit_manifest(ds.path, lambda m: (m.update(n_jets=301), m["parts"][0].update(jets=101)))
    with pytest.raises(InputFileError, match="part-00000.parquet: 100 jets, dataset.json says 101"):
        open_dataset(ds.path)
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()


def test_a_part_from_another_dataset_is_refused(tmp_path):
    from topcal.io.dataset import open_dataset

    ds = toy_dataset(tmp_path / "ds", 300, seed=1)
    other = toy_dataset(tmp_path / "other", 300, seed=2)  # the same jet counts per part, other jets
    shutil.copy(other.parts[1], ds.parts[1])
    with pytest.raises(InputFileError, match="part-00001.parquet: .*(footer checksum differs|bytes)"):
        open_dataset(ds.path)
    # a manifest without checksums (older datasets) still has its rows and columns checked
    _edit_manifest(ds.path, lambda m: [p.pop(k, None) for p in m["parts"] for k in ("bytes", "footer_sha256")])
    import pyarrow.parquet as pq

    from topcal.io.dataset import to_arrow

    table = to_arrow({"pt": np.ones(100), "eta": np.zeros(100)})
    pq.write_table(table, ds.parts[2])
    with pytest.raises(InputFileError, match="part-00002.parquet: columns"):
        open_dataset(ds.path)


def test_a_damaged_part_is_one_line_and_found_by_info_check(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 300, seed=1)
    part = ds.parts[1]
    data = bytearray(part.read_bytes())
    middle = len(data) // 3
    data[middle:middle + 64] = bytes(64)  # same size, same footer: found only by reading or the full checksum
    part.write_bytes(bytes(data))
    code, out = run("info", ds.path)  # the cheap checks pass
    assert code == 0, out
    code, out = run("info", "--check", ds.path)
    assert code == 2 and "part-00001.parquet: checksum differs" in one_line(out)
    code, out = run("train", ds.path, "-o", tmp_path / "m", "--epochs", "1", "--quiet")
    assert code == 2 and "part-00001.parquet" in one_line(out)
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()


# models: checked on load, before the run; references of the same network only; a replaced model reloaded


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    from topcal.train.fit import train

    base = tmp_path_factory.mktemp("faults_models")
    ds = toy_dataset(base / "ds", 600, seed=1)
    for name, seed in (("m1", 1), ("m2", 2)):
        train(ds.path, base / name, TrainConfig(phi_hidden=[8], hidden=[8], epochs=1, seed=seed), progress=False)
    return base / "ds", base / "m1", base / "m2"


def _edited_model(src: Path, dst: Path, change) -> Path:
    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    change(meta)
    (dst / "model.json").write_text(json.dumps(meta))
    return dst


def test_seed_ranges_are_checked_before_any_work(tmp_path, ttbar_file, two_models):
    from topcal.predict.calibrator import Calibrator

    ds, m1, _ = two_models
    code, out = run("train", ds, "-o", tmp_path / "m", "--seed", 2**32, "--quiet")
    assert code == 2 and f"seed: {2**32} must be in 0..4294967295" in one_line(out)
    assert not (tmp_path / "m.partial").exists()
    code, out = run("process", ttbar_file, "-o", tmp_path / "d", "--seed", 2**32, "--quiet")
    assert code == 2 and "seed" in one_line(out)
    code, out = run("generate", "-o", tmp_path / "g.root", "-n", "4", "--seed", -1, "--quiet")
    assert code == 2 and "seed: -1 must be in" in one_line(out)
    code, out = run("evaluate", m1, ds, "-o", tmp_path / "r", "--seed", -1, "--quiet")
    assert code == 2 and "seed: -1 must be in" in one_line(out)
    with pytest.raises(ConfigError, match="seed: -5"):
        Calibrator(m1, seed=-5)  # at once, not when called
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_reference_of_another_network_is_refused(tmp_path, two_models):
    from topcal.predict.calibrator import Calibrator

    ds, m1, m2 = two_models
    other = _edited_model(m2, tmp_path / "gmm", lambda m: m["config"].update(likelihood="gmm2"))
    code, out = run("evaluate", m1, ds, "-o", tmp_path / "r", "--reference", other, "--quiet")
    assert code == 2 and "not a reference for" in one_line(out) and "likelihood 'gmm2'" in out
    assert not (tmp_path / "r").exists()
    with pytest.raises(InputFileError, match="not a reference for"):
        Calibrator(m1, reference=other)
    Calibrator(m1, reference=m2)  # another seed of the same network is a valid reference


def test_a_model_replaced_in_place_is_loaded_again(tmp_path, two_models):
    from topcal.predict.calibrator import cached_model

    _, m1, m2 = two_models
    path = tmp_path / "model"
    shutil.copytree(m1, path)
    first = cached_model(str(path))
    assert cached_model(str(path)) is first
    shutil.rmtree(path)
    shutil.copytree(m2, path)
    second = cached_model(str(path))
    assert second is not first
    w1, w2 = (np.concatenate([w.ravel() for w in m.networks[0].get_weights()]) for m in (first, second))
    assert not np.array_equal(w1, w2)


def test_predict_checks_the_model_before_the_run(tmp_path, ttbar_file, two_models):
    _, m1, _ = two_models
    bad = tmp_path / "bad"
    shutil.copytree(m1, bad)
    weights = bad / "weights-00.weights.h5"
    weights.write_bytes(weights.read_bytes()[:2000])
    code, out = run("predict", bad, ttbar_file, "-o", tmp_path / "friends", "--quiet")
    assert code == 2 and "weights-00.weights.h5: cannot load weights" in one_line(out)
    assert not (tmp_path / "friends").exists()


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("weights"), "weights must list the weight files"),
    (lambda m: m.pop("config"), "config is missing"),
    (lambda m: m.setdefault("calibration", {}).update(width_factor=-3), "width_factor -3 must be"),
    (lambda m: m.setdefault("calibration", {}).update(width_factor_pt={"pt_jet_gev": [900, 500], "factor": [1, 1]}),
     "width_factor_pt factors must be > 0 and pt_jet_gev increasing"),
    (lambda m: m["preprocessing"].update(target="bogus"), "preprocessing.target 'bogus' differs"),
    (lambda m: m["config"].update(target="bogus"), "config is not valid"),
])
def test_a_hand_edited_model_json_is_one_line(tmp_path, two_models, change, message):
    ds, m1, _ = two_models
    bad = _edited_model(m1, tmp_path / "bad", change)
    code, out = run("evaluate", bad, ds, "-o", tmp_path / "r", "--quiet")
    assert code == 2 and message in one_line(out)


# local pools: interrupted at once, workers die with their parent, at most one worker per core


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_an_interrupted_local_pool_cancels_its_queue_and_ends_its_workers():
    from topcal.workers import local_pool

    futures, workers = [], []
    with pytest.raises(KeyboardInterrupt):
        with local_pool(2) as pool:
            futures = [pool.submit(_sleep, 0.5) for _ in range(40)]
            futures[0].result()
            workers = list(pool._processes.values())
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM (which topcal's commands turn into it)
    assert sum(f.cancelled() for f in futures) > 30  # the queue was not run first
    deadline = time.monotonic() + 30  # a loaded machine may take a moment to reap them
    while time.monotonic() < deadline and any(w.is_alive() for w in workers):
        time.sleep(0.2)
    assert workers and not any(w.is_alive() for w in workers)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker death on parent death is Linux's prctl")
def test_coffea_futures_workers_die_with_a_killed_parent(tmp_path, ttbar_file):
    proc = subprocess.Popen([sys.executable, "-m", "topcal.cli", "process", str(ttbar_file), "-o", str(tmp_path / "d"),
                             "--executor", "futures", "--workers", "2", "--chunksize", "3", "--quiet", "--no-figures"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    workers = []
    while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
        time.sleep(0.2)
        workers = _children(proc.pid)
    assert len(workers) >= 2, "the workers never started"
    proc.kill()
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "orphaned coffea workers"


def test_workers_are_capped_at_the_cores_and_checked_everywhere(tmp_path, capsys):
    from topcal.workers import check_executor, default_workers

    cores = default_workers()
    assert check_executor("futures", cores + 5, None) == cores
    assert f"--workers {cores + 5} is more than the {cores} cores here" in capsys.readouterr().err
    assert check_executor("dask", cores + 5, "tcp://cluster:8786") == cores + 5  # a remote cluster: not capped
    ds = toy_dataset(tmp_path / "ds", 200, seed=1)
    code, out = run("train", ds.path, "-o", tmp_path / "m", "--workers", "-5", "--quiet")
    assert code == 2 and "workers: -5 must be >= 1" in one_line(out)
    code, out = run("train", ds.path, "-o", tmp_path / "m", "--scheduler", "tcp://x:1", "--quiet")
    assert code == 2 and "--scheduler needs --executor dask" in one_line(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_a_directory_given_as_an_input_file(tmp_path, ttbar_file):
    folder = tmp_path / "events"
    folder.mkdir()
    code, out = run("process", folder, "-o", tmp_path / "d", "--quiet")
    assert code == 2 and "events: is a directory, not a DELPHES file" in one_line(out)
    code, out = run("process", folder, ttbar_file, "-o", tmp_path / "d", "--skip-bad-files", "--quiet",
                    "--no-figures")
    assert code == 0 and "skipped bad file" in out and "is a directory" in out


def test_non_ascii_paths(tmp_path, ttbar_file, two_models):
    _, m1, _ = two_models
    folder = tmp_path / "Grüße ü"
    folder.mkdir()
    events = folder / "événements.root"
    shutil.copy(ttbar_file, events)
    code, out = run("process", events, "-o", folder / "données", "--quiet", "--no-figures", "--no-flatten")
    assert code == 0, out
    code, out = run("predict", m1, events, "-o", folder / "amis", "--quiet")
    assert code == 0, out
    assert uproot.open(folder / "amis" / "événements_topcal.root")["topcal"].num_entries == 300


def test_coffea_duplicate_branch_warnings_are_hidden(recwarn):
    import warnings

    from topcal.process.executors import make_runner

    with make_runner("iterative", progress=False):
        warnings.warn("Found duplicate branch Event.Number in Delphes, taking first instance", stacklevel=2)
    assert not [w for w in recwarn if "duplicate branch" in str(w.message)]
    warnings.warn("Found duplicate branch outside topcal's runs", stacklevel=2)  # only inside a run
    assert [w for w in recwarn if "duplicate branch" in str(w.message)]


# smaller defects: each one line before any work, or the right number


def test_small_argument_checks(tmp_path, two_models):
    ds, m1, _ = two_models
    for args, message in ((("--max-jets", "-1"), "--max-jets: -1 must be >= 1"),
                          (("--input-smear", "2"), "--input-smear: 2.0 must be a fraction")):
        code, out = run("evaluate", m1, ds, "-o", tmp_path / "r", *args, "--quiet")
        assert code == 2 and message in one_line(out)
    code, out = run("generate", "-o", tmp_path / "g.root", "-n", "4", "--pthat-min", "7000", "--pthat-max", "7100")
    assert code == 2 and "generator.pthat_min_gev: 7000.0 must be below half the collision energy" in one_line(out)
    code, out = run("tagger", ds, ds, "-o", tmp_path / "t", "--quiet")
    assert code == 2 and "the same dataset as the top jets" in one_line(out)
    code, out = run("demo", "--sample", tmp_path / "none.root", "-o", tmp_path / "demo", "--samples", "1")
    assert code == 2 and "--samples: 1 must be >= 2" in one_line(out)
    fileset = tmp_path / "files.json"
    fileset.write_text(json.dumps({"tt": {"files": {"a.root": "Events"}}}))
    code, out = run("process", fileset, "-o", tmp_path / "d")
    assert code == 2 and "names the tree 'Events'" in one_line(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["files.json"]


def test_a_model_is_not_evaluated_on_jets_of_another_kind(tmp_path, two_models):
    ds, m1, _ = two_models
    towers = tmp_path / "towers"
    shutil.copytree(ds, towers)
    _edit_manifest(towers, lambda m: m["config"].update(use_towers=True))
    code, out = run("evaluate", m1, towers, "-o", tmp_path / "r", "--quiet")
    assert code == 2 and "jets made with use_towers = True" in one_line(out)


def test_plot_of_an_empty_dataset_and_of_two_inputs_with_one_name(tmp_path):
    from topcal.io.dataset import write_dataset

    cfg = ProcessConfig(max_constituents=12, flatten=False)
    empty = write_dataset(tmp_path / "a" / "ds", {"pt": np.empty(0), "mass": np.empty(0),
                                                  "n_constituents": np.empty(0, np.int32),
                                                  "pt_truth": np.empty(0)}, cfg)
    code, out = run("plot", empty.path, "-o", tmp_path / "figs")
    assert code == 2 and "no truth-matched jets, nothing to draw" in one_line(out)
    other = toy_dataset(tmp_path / "b" / "ds", 30, seed=1)
    code, out = run("plot", empty.path, other.path, "-o", tmp_path / "figs2")
    assert code == 2 and "two inputs have this name" in one_line(out)


def test_info_check_finds_a_truncated_model(tmp_path, two_models):
    _, m1, _ = two_models
    bad = tmp_path / "bad"
    shutil.copytree(m1, bad)
    weights = bad / "weights-00.weights.h5"
    weights.write_bytes(weights.read_bytes()[:3000])
    code, out = run("info", bad)
    assert code == 0, out
    code, out = run("info", "--check", bad)
    assert code == 2 and "cannot load weights" in one_line(out)


def test_background_summary_has_no_flattening_line(tmp_path, ttbar_file):
    code, out = run("process", ttbar_file, "-o", tmp_path / "bkg", "--background", "--no-figures", "--quiet")
    assert code == 0, out
    assert "flattening kept" not in out


def test_calibrator_on_events_of_another_schema(two_models):
    import awkward as ak

    from topcal.predict.calibrator import Calibrator

    _, m1, _ = two_models
    events = ak.Array([{"Jet": [{"pt": 500.0}]}])  # e.g. NanoAOD-like, not DELPHES
    with pytest.raises(InputFileError, match="not DELPHES events of topcal's schema"):
        Calibrator(m1, samples=2)(events)


def test_evaluate_refuses_an_existing_output_before_any_work(tmp_path, two_models, monkeypatch):
    import topcal.train.evaluate as evaluation

    ds, m1, _ = two_models
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep").write_text("k")

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(evaluation, "load_model", no_work)
    with pytest.raises(OutputError, match="output exists"):
        evaluation.evaluate(m1, ds, tmp_path / "r", samples=2, progress=False)
