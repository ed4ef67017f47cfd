"""``topcal plot``: publication-style figures from the outputs of the other commands.

Each input is recognised by what it is: a dataset directory (``dataset.json``: pT,t(truth) vs pT,j and the
600..620 GeV slice), a report directory (``report.json``: calibration summary and extracted pT vs truth) or
a friend file from ``topcal predict`` (tree ``topcal``: mean sigmas vs pT,j). Figures go to
``OUT/<input name>/`` as PNG and PDF.
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq

from topcal.errors import InputFileError


def plot(inputs, out_dir) -> list[Path]:
    """Draw the figures of every input into ``out_dir``; returns the files written."""
    out_dir = Path(out_dir)
    names = [Path(item).stem for item in inputs]
    for name in names:
        if names.count(name) > 1:
            raise InputFileError(f"{name}: two inputs have this name; their figures would overwrite each other "
                                 f"(plot them into different folders)")
    written = []
    for item in map(Path, inputs):
        target = out_dir / item.stem
        if (item / "dataset.json").is_file():
            written += _dataset(item, target)
        elif (item / "report.json").is_file():
            written += _report(item, target)
        elif item.is_file() and item.suffix == ".root":
            written += _friend(item, target)
        else:
            raise InputFileError(f"{item}: not a dataset directory, a report directory or a friend ROOT file")
    return written


def _dataset(path: Path, target: Path) -> list[Path]:
    from topcal.io.dataset import open_dataset
    from topcal.plot.dataset_figures import narrow_slice_truth, truth_vs_jet_pt
    from topcal.process.histograms import fill_histograms, make_histograms

    jets = open_dataset(path).read(["pt", "mass", "n_constituents", "pt_truth"])
    matched = np.isfinite(jets["pt_truth"])
    if not matched.any():  # an empty or a background dataset
        raise InputFileError(f"{path}: no truth-matched jets, nothing to draw")
    h2d = fill_histograms(make_histograms(), {k: v[matched] for k, v in jets.items()})["pt_truth_vs_pt_jet"]
    note = f"{int(matched.sum())} truth-matched jets, anti-$k_T$ R = 1.2"
    return truth_vs_jet_pt(h2d, target, note) + narrow_slice_truth(h2d, target, note)


def _report(path: Path, target: Path) -> list[Path]:
    from topcal.plot.evaluation_figures import calibration_summary
    from topcal.plot.study_figures import extracted_vs_truth

    report = json.loads((path / "report.json").read_text())
    written = calibration_summary(report["network"], report["baseline"], target)
    predictions = path / "predictions.parquet"
    if predictions.is_file():
        table = pq.read_table(predictions, columns=["pt_truth", "mean"])
        written += extracted_vs_truth(table.column("pt_truth").to_numpy(), table.column("mean").to_numpy(), target,
                                      f"{table.num_rows} test jets")
    return written


def _friend(path: Path, target: Path) -> list[Path]:
    import uproot

    from topcal.plot.friend_figures import SIGMAS, sigmas_vs_pt

    branches = ["FatJet_pt", "FatJet_inTrainingRange", *(b for b, _, _ in SIGMAS)]
    try:
        tree = uproot.open(path)["topcal"]
        arrays = tree.arrays(branches)
    except (OSError, ValueError, KeyError, uproot.KeyInFileError):
        raise InputFileError(f"{path}: not a topcal friend file (needs a tree 'topcal' with the branches "
                             f"{', '.join(branches)})") from None
    jets = {b: ak.to_numpy(ak.flatten(arrays[b])) for b in branches}
    return sigmas_vs_pt(jets, target, f"{tree.num_entries} events, {len(jets['FatJet_pt'])} fat jets")
