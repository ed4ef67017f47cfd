"""topcal reproduce wiring at the tiny scale: every figure and table produced, numbers finite, resumable."""

from __future__ import annotations

import re

from topcal.reproduce.run import reproduce

FIGURES = ("extracted_vs_truth", "sigma_pred_distribution", "sigma_pred_vs_constituents", "sigmas_vs_training_size",
           "bnn_vs_ensemble", "mixtures_narrow_slice", "sigma_cal_vs_smearing", "coverage_and_pulls",
           "pt_truth_slice_isr", "rmse_vs_pt_toplike_noisr", "rmse_vs_pt_toplike_isr", "pt_truth_vs_pt_jet",
           "smeared_labels_05", "label_sources_closure")
HEADINGS = ("Training size", "frequentist ensemble", "paper's anchors", "Mixtures", "label smearing", "diagnostics",
            "Table 1", "LoLa taggers", "Several label-uncertainty sources")


def test_tiny_scale_produces_every_figure_and_table(tmp_path):
    summary = reproduce("tiny", tmp_path / "r", progress=False)
    plots = tmp_path / "r" / "plots"
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (plots / f"{name}.{ext}").stat().st_size > 1000, name
    report = (tmp_path / "r" / "report.md").read_text()
    for heading in HEADINGS:
        assert heading in report
    numbers = re.findall(r"\| (-?\d+\.\d+|nan|inf)", report)
    assert numbers and not any(n in ("nan", "inf") for n in numbers)
    assert all(what == "done" for _, _, what in summary.steps)
    again = reproduce("tiny", tmp_path / "r", progress=False)
    assert all(what == "reused" for name, _, what in again.steps if name != "figures and report")


def test_dask_run_gives_the_iterative_numbers_and_dry_run_lists_tasks(tmp_path):
    """The tasks of the tiny scale on a 2-worker dask LocalCluster give report numbers identical to the
    iterative run's (seeds come from the tasks, not the workers); the samples and datasets are shared."""
    import json
    import shutil

    first = tmp_path / "iterative"
    reproduce("tiny", first, progress=False)
    second = tmp_path / "dask"
    second.mkdir()
    for name in ("samples", "dataset", "dataset_isr", "dataset_qcd_noisr", "dataset_qcd_isr"):
        shutil.copytree(first / name, second / name)
    planned = reproduce("tiny", second, progress=False, dry_run=True, project=False)
    assert planned.dry_run and not (second / "models").exists()
    todo = [line for line in planned.planned if "to do" in line]
    assert any("train size150_rep1" in line for line in todo) and any("evaluate isr_rep0" in line for line in todo)
    assert not any("generate" in line or "process" in line for line in todo)  # copied: complete
    summary = reproduce("tiny", second, progress=False, executor="dask", workers=2)
    assert any(name.startswith("train ") and what == "done" for name, _, what in summary.steps)
    reports = sorted(p.relative_to(first) for p in first.glob("reports/*/report.json"))
    assert len(reports) >= 10
    for rel in reports:
        a, b = json.loads((first / rel).read_text()), json.loads((second / rel).read_text())
        assert a["network"] == b["network"], rel
    assert (first / "report.md").read_text() == (second / "report.md").read_text()


def test_projected_wall_time_follows_dependencies_and_workers(tmp_path):
    from topcal.reproduce.plan import schedule_seconds
    from topcal.workers import Task

    def task(name, *after):
        return Task(name, tmp_path / name, print, after=after)

    tasks = [task("a"), task("b"), task("c", "a"), task("d", "a", "b")]
    seconds = {"a": 10.0, "b": 4.0, "c": 5.0, "d": 1.0}
    assert schedule_seconds(tasks, seconds, 1) == 20.0    # one worker: the sum
    assert schedule_seconds(tasks, seconds, 2) == 15.0    # a then c on one worker; b, then d after a
    assert schedule_seconds(tasks, seconds, 8) == 15.0    # the critical path a -> c
