"""Figures of a friend tree from ``topcal predict``: the per-jet sigmas against the fat-jet pT."""

from __future__ import annotations

from pathlib import Path

import hist
import numpy as np

from topcal.plot.style import COLOURS, SYMBOLS, label, new_figure, save

SIGMAS = (("FatJet_sigmaTot", "sigma_tot", "s"), ("FatJet_sigmaStoch", "sigma_stoch", "^"),
          ("FatJet_sigmaPred", "sigma_pred", "v"))


def sigmas_vs_pt(jets: dict[str, np.ndarray], out_dir: str | Path, note: str | None = None) -> list[Path]:
    """Mean sigma_tot, sigma_stoch and sigma_pred (GeV) in 40 GeV bins of the fat-jet pT, jets inside the
    network's training range (``FatJet_inTrainingRange``)."""
    inside = jets["FatJet_inTrainingRange"].astype(bool)
    fig, ax = new_figure()
    top = 0.0
    for branch, quantity, marker in SIGMAS:
        prof = hist.Hist(hist.axis.Regular(15, 400, 1000, label=r"$p_{T,j}$ [GeV]"), storage=hist.storage.Mean())
        prof.fill(jets["FatJet_pt"][inside], sample=jets[branch][inside])
        filled = prof.counts() > 0
        ax.errorbar(prof.axes[0].centers[filled], prof.values()[filled], xerr=20, fmt=marker,
                    color=COLOURS[quantity], label=SYMBOLS[quantity])
        top = max(top, float(np.max(prof.values()[filled], initial=0.0)))
    ax.set_xlabel(r"$p_{T,j}$ [GeV]")
    ax.set_ylabel(r"$\langle\sigma\rangle$ [GeV]")
    ax.set_ylim(0, 1.35 * top if top > 0 else 1.0)  # room for the labels above the points
    ax.legend(loc="upper right", fontsize="x-small")
    label(ax, note=note)
    return save(fig, out_dir, "friend_sigmas_vs_pt")
