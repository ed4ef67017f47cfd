"""Table 1 and figure 4 of the paper: the regression with and without ISR, for all jets and for the 75, 50
and 25% most top-like jets, top-likeness from a LoLa tagger trained on top against QCD jets.

Its steps are tasks of :mod:`topcal.reproduce.plan`: ``samples/ttbar_isr.root``, ``samples/qcd_noisr.root``,
``samples/qcd_isr.root`` (``topcal generate``); ``dataset_isr/`` (200 constituents), ``dataset_qcd_noisr/``,
``dataset_qcd_isr/`` (``topcal process``, the QCD ones without truth matching); ``taggers/noisr``,
``taggers/isr`` (``topcal tagger``: each top sample against the QCD sample with the same ISR setting);
``models/isr_rep<r>`` and their reports. This module reads them back. Without ISR the study reuses the
training-size networks at the largest size.
The top-like subsets are a tagger working point: the highest-scoring 75, 50 or 25% of all test jets of the
sample; sqrt(MSE) is then taken in the pT,j 600..620 GeV slice (table 1) and in 40 GeV pT,j bins (figure 4).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

FRACTIONS = (1.0, 0.75, 0.5, 0.25)
PAPER_TABLE1 = {  # docs/design.md section 4: sqrt(MSE) [GeV], pT,j 600..620 GeV
    "with ISR": {1.0: 69.7, 0.75: 67.8, 0.5: 66.5, 0.25: 66.5},
    "without ISR": {1.0: 50.6, 0.75: 45.5, 0.5: 41.8, 0.25: 40.4},
}
MIN_SLICE_JETS = 20


def _subset_name(f: float) -> str:
    return "all jets" if f == 1.0 else f"{round(100 * f)}% most top-like"


def settings(out: Path, sizes: list[int], repetitions: int) -> dict[str, tuple[Path, Path, Path, list[str]]]:
    """Per ISR setting: (top dataset, QCD dataset, tagger, regression reports)."""
    return {
        "without ISR": (out / "dataset", out / "dataset_qcd_noisr", out / "taggers" / "noisr",
                        [f"size{sizes[-1]}_rep{r}" for r in range(repetitions)]),
        "with ISR": (out / "dataset_isr", out / "dataset_qcd_isr", out / "taggers" / "isr",
                     [f"isr_rep{r}" for r in range(repetitions)]),
    }


def write(out: Path, scale, sizes: list[int], predictions, note: str) -> list[str]:
    """Figure 4 (left and right) in ``out/plots`` and the table 1 lines of the report."""
    from topcal.io.dataset import open_dataset
    from topcal.plot import study_figures as fig
    from topcal.tagger.run import Tagger, top_like_subsets
    from topcal.train.data import load_rows
    from topcal.train.metrics import NARROW_SLICE_GEV, PT_BINS_GEV, binned

    lo, hi = NARROW_SLICE_GEV
    table: dict[str, dict[float, list[float]]] = {}
    truth_in_slice, taggers = {}, {}
    slice_note = ""
    for setting, (dataset, _, tagger_dir, reports) in settings(out, sizes, scale.repetitions).items():
        ds = open_dataset(dataset)
        tagger = Tagger(tagger_dir)
        taggers[setting] = tagger.meta["held_out"]
        jets = ds.read(["pt", "pt_truth"])
        truth_in_slice[setting] = jets["pt_truth"][(jets["pt"] >= lo) & (jets["pt"] < hi)]
        curves = {_subset_name(f): {"rmse": [], "sigma_stoch": []} for f in FRACTIONS}
        table[setting] = {f: [] for f in FRACTIONS}
        scores = None
        for name in reports:
            pred = predictions(out, name)
            if scores is None:  # every repetition is evaluated on the same test jets
                order = np.argsort(pred["row"])
                scores = np.empty(len(order))
                scores[order] = tagger.score(load_rows(ds, pred["row"][order])[0].x)
            for f, top_like in top_like_subsets(scores, FRACTIONS).items():
                rows = binned(pred["pt_jet"][top_like], pred["pt_truth"][top_like],
                              {"mean": pred["mean"][top_like], "sigma_stoch": pred["sigma_stoch"][top_like]})
                per_bin, in_slice = rows["bins"], rows["slice"]
                if f == 1.0:  # tiny test runs: all test jets instead of a slice with too few jets
                    use_all = in_slice["jets"] < MIN_SLICE_JETS
                    if use_all:
                        slice_note = f" (fewer than {MIN_SLICE_JETS} jets in the slice: all test jets)"
                table[setting][f].append((rows["all"] if use_all else in_slice).get("rmse", np.nan))
                for key in ("rmse", "sigma_stoch"):
                    curves[_subset_name(f)][key].append([r.get(key, np.nan) for r in per_bin])
        with warnings.catch_warnings():  # bins without jets stay NaN (not drawn)
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_curves = {k: {q: np.nanmean(np.array(v), axis=0) for q, v in c.items()} for k, c in curves.items()}
        tag = "isr" if setting == "with ISR" else "noisr"
        fig.regression_vs_pt_by_toplikeness(np.array(PT_BINS_GEV), mean_curves, out / "plots", f"{setting}, {note}",
                                            name=f"rmse_vs_pt_toplike_{tag}")
    fig.truth_in_slice_with_and_without_isr(truth_in_slice, out / "plots",
                                            f"anti-$k_T$ R = 1.2, $p_{{T,j}}$ {lo:.0f}..{hi:.0f} GeV")

    lines = [f"\n## Table 1: sqrt(MSE) [GeV] for pT,j {lo:.0f}..{hi:.0f} GeV{slice_note}, mean +- spread of "
             f"{scale.repetitions} trainings\n",
             "| jets | with ISR | paper | without ISR | paper |", "|---|---|---|---|---|"]
    for f in FRACTIONS:
        cells = []
        for setting in ("with ISR", "without ISR"):
            vals = np.array(table[setting][f])
            cells += [f"{np.nanmean(vals):.1f} +- {np.nanstd(vals):.1f}", f"{PAPER_TABLE1[setting][f]}"]
        lines.append(f"| {_subset_name(f)} | " + " | ".join(cells) + " |")
    lines.append("\nLoLa taggers on held-out jets: " + "; ".join(
        f"{s}: AUC {m['auc']:.3f}, background rejection {m['background_rejection_at_50']:.1f} at 50% top efficiency"
        for s, m in taggers.items()) + ".")
    return lines
