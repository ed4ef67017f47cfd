"""The main job wires process -> train -> evaluate -> predict and reuses finished steps."""

from __future__ import annotations

import uproot

from topcal.config import TrainConfig
from topcal.pipeline import main_job


def test_main_job_end_to_end_and_resume(ttbar_file, tmp_path):
    cfg = TrainConfig(hidden=[16], epochs=2, learning_rate=3e-3, prior_sigma=1.0)
    summary = main_job(ttbar_file, tmp_path / "demo", cfg, samples=5, progress=False)
    out = tmp_path / "demo"
    for path in ("dataset/dataset.json", "model/model.json", "report/report.md",
                 f"friends/{ttbar_file.stem}_topcal.root", "report/figures/predictive_distribution.png",
                 "dataset/figures/pt_truth_vs_pt_jet.png"):
        assert (out / path).is_file(), path
    assert uproot.open(out / "friends" / f"{ttbar_file.stem}_topcal.root")["topcal"].num_entries == 300
    again = main_job(ttbar_file, out, cfg, samples=5, progress=False)
    assert sum("reusing" in line for line in again.lines) == 4
    assert "everything is in" in str(summary)
    # a reused step prints the figures of merit it printed when it ran
    assert [line for line in again.lines if "reusing" not in line] == summary.lines


def test_main_job_redoes_a_step_whose_inputs_or_configuration_changed(ttbar_file, tmp_path):
    import json
    import os
    import shutil

    cfg = TrainConfig(hidden=[16], epochs=2, learning_rate=3e-3, prior_sigma=1.0)
    sample = tmp_path / "ev.root"
    shutil.copy(ttbar_file, sample)
    out = tmp_path / "demo"
    main_job(sample, out, cfg, samples=5, progress=False)
    # another number of weight samples: the dataset and the model are reused, the report and friends redone
    again = main_job(sample, out, cfg, samples=6, progress=False)
    reused = [line.split()[1].rstrip(":") for line in again.lines if "(reusing" in line]
    assert reused == [str(out / "dataset"), str(out / "model")]
    assert json.loads((out / "report" / "report.json").read_text())["samples"] == 6
    # another sample (a new file at the same path) or another epoch count: every later step is redone
    os.utime(sample, ns=(1, 1))
    third = main_job(sample, out, TrainConfig(hidden=[16], epochs=3, learning_rate=3e-3, prior_sigma=1.0),
                     samples=6, progress=False)
    assert not any("reusing" in line for line in third.lines)
    assert len(json.loads((out / "model" / "history.json").read_text())[0]) == 3
    # an earlier sample's friend file does not stay beside the new one
    shutil.copy(ttbar_file, tmp_path / "other.root")
    main_job(tmp_path / "other.root", out, cfg, samples=5, progress=False)
    assert [p.name for p in (out / "friends").glob("*.root")] == ["other_topcal.root"]


def test_plot_command_on_the_main_job_outputs(ttbar_file, tmp_path):
    """topcal plot recognises a dataset, a report and a friend file, and says which input it cannot read."""
    from click.testing import CliRunner

    from topcal.cli import main

    cfg = TrainConfig(hidden=[16], epochs=2, learning_rate=3e-3, prior_sigma=1.0)
    out = tmp_path / "demo"
    main_job(ttbar_file, out, cfg, samples=5, progress=False)
    friend = out / "friends" / f"{ttbar_file.stem}_topcal.root"
    result = CliRunner().invoke(main, ["plot", str(out / "dataset"), str(out / "report"), str(friend),
                                       "-o", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    for path in ("dataset/pt_truth_vs_pt_jet.png", "dataset/pt_truth_narrow_slice.pdf",
                 "report/calibration_summary.png", "report/extracted_vs_truth.png",
                 f"{friend.stem}/friend_sigmas_vs_pt.png"):
        assert (tmp_path / "figs" / path).stat().st_size > 1000, path
    bad = CliRunner().invoke(main, ["plot", str(ttbar_file), "-o", str(tmp_path / "figs")])
    assert bad.exit_code != 0 and "not a topcal friend file" in bad.output
