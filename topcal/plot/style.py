"""One figure style for every topcal plot: mplhep's ROOT style and a neutral label, "topcal Simulation",
sqrt(s) = 14 TeV. topcal is not an experiment's result: its figures never carry an experiment's name, which
the collaborations reserve for their approved results (docs/design.md section 6).

Figures are saved as PNG and PDF side by side. Matplotlib runs headless (Agg), so plotting works on
batch nodes and in CI.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mplhep

COM_TEV = 14
FORMATS = ("png", "pdf")
NAME = "topcal"
NOTE_WIDTH = 45  # characters per line of a figure's note

# One colour per quantity in every figure, so that sigma_stoch (say) looks the same wherever it appears.
COLOURS = {
    "rmse": "tab:blue",
    "sigma_tot": "tab:orange",
    "sigma_stoch": "tab:green",
    "sigma_pred": "tab:red",
    "sigma_cal": "tab:purple",
    "sigma_input": "tab:brown",
    "baseline": "tab:gray",
}
SYMBOLS = {"rmse": "√MSE", "sigma_tot": r"$\langle\sigma_{tot}\rangle$",
           "sigma_stoch": r"$\langle\sigma_{stoch}\rangle$", "sigma_pred": r"$\langle\sigma_{pred}\rangle$",
           "sigma_cal": r"$\langle\sigma_{cal}\rangle$", "sigma_input": r"$\langle\sigma_{input}\rangle$"}


def new_figure(figsize=(8, 7), **subplots):
    """A figure and axes in mplhep's ROOT style (``subplots``: more panels, e.g. ``nrows=2``)."""
    plt.style.use(mplhep.style.ROOT)
    return plt.subplots(figsize=figsize, **subplots)


def label(ax, note: str | None = None) -> None:
    """The neutral label "topcal Simulation", sqrt(s) = 14 TeV, and an optional note: the title of the
    axes' legend when there is one (so that the two never overlap), else a line of text below the label.
    Call it after ``ax.legend()``."""
    mplhep.label.exp_label(exp=NAME, text="Simulation", data=True, com=COM_TEV, loc=0, ax=ax)
    if not note:
        return
    note = "\n".join(textwrap.wrap(note, NOTE_WIDTH, break_long_words=False))  # stay inside the axes
    legend = ax.get_legend()
    if legend is not None:
        legend.set_title(note, prop={"size": "x-small"})
        legend._legend_box.align = "left"
    else:
        ax.text(0.04, 0.86, note, transform=ax.transAxes, va="top", fontsize="small")


def headroom(ax, top: float, factor: float = 1.5) -> None:
    """y from 0 to ``factor`` x ``top`` (the data's highest point): the legend and the note stay above the
    data."""
    ax.set_ylim(0, factor * top if top > 0 else 1.0)


def colour_bar_label(artists, text: str = "jets") -> None:
    """Name what the colour bar of an ``mplhep.hist2dplot`` counts."""
    if getattr(artists, "cbar", None) is not None:
        artists.cbar.set_label(text)


def save(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Save ``name.png`` and ``name.pdf`` in ``out_dir`` (created); closes the figure; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in FORMATS:
        path = out_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths
