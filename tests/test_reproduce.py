"""topcal reproduce wiring at the tiny scale: every figure and table produced, numbers finite, resumable."""

from __future__ import annotations

import re

from topcal.reproduce.run import reproduce

FIGURES = ("extracted_vs_truth", "sigma_pred_distribution", "sigma_pred_vs_constituents", "sigmas_vs_training_size",
           "bnn_vs_ensemble", "mixtures_narrow_slice", "sigma_cal_vs_smearing", "coverage_and_pulls",
           "pt_truth_slice_isr", "rmse_vs_pt_toplike_noisr", "rmse_vs_pt_toplike_isr", "pt_truth_vs_pt_jet",
           "smeared_labels_05")
HEADINGS = ("Training size", "frequentist ensemble", "paper's anchors", "Mixtures", "label smearing", "diagnostics",
            "Table 1", "LoLa taggers")


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
