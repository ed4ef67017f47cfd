"""Figures of a per-jet dataset: pT,t(truth) vs pT,j (paper figure 3 left) and pT,t(truth) in the narrow
600..620 GeV pT,j slice (figure 4 left)."""

from __future__ import annotations

from pathlib import Path

import hist
import mplhep
import numpy as np

from topcal.plot.style import colour_bar_label, label, new_figure, save
from topcal.process.histograms import NARROW_SLICE_GEV, as_double, narrow_slice


def truth_vs_jet_pt(h2d: hist.Hist, out_dir: str | Path, note: str | None = None) -> list[Path]:
    """2D histogram of pT,t(truth) against pT,j."""
    fig, ax = new_figure()
    colour_bar_label(mplhep.hist2dplot(as_double(h2d), ax=ax, cmin=1, flow=None))
    ax.plot([400, 1000], [400, 1000], color="white", lw=1, ls="--")
    ax.set_ylim(300, 1200)
    label(ax, note=note)
    return save(fig, out_dir, "pt_truth_vs_pt_jet")


def narrow_slice_truth(h2d: hist.Hist, out_dir: str | Path, note: str | None = None) -> list[Path]:
    """pT,t(truth) of jets with 600 <= pT,j < 620 GeV."""
    h = as_double(narrow_slice(h2d))
    fig, ax = new_figure()
    # Poisson errors where there are jets; none drawn on empty bins (a forest of bars at zero otherwise)
    mplhep.histplot(h, ax=ax, yerr=np.sqrt(h.variances()), histtype="step", color="black", flow=None)
    lo, hi = NARROW_SLICE_GEV
    ax.axvspan(lo, hi, color="tab:orange", alpha=0.2, label=rf"${lo:.0f} \leq p_{{T,j}} < {hi:.0f}$ GeV")
    ax.set_xlim(400, 1000)
    top = float(np.max(h.values() + np.sqrt(h.variances()), initial=1.0))
    ax.set_ylim(0, 1.45 * top)  # headroom: the peak stays below the legend
    ax.set_ylabel("jets")
    ax.legend(loc="upper right")
    label(ax, note=note)
    return save(fig, out_dir, "pt_truth_narrow_slice")
