"""Figures of the detector variations: the relative shift of ptPred per source against pT,j, and their
closure against samples generated with a shifted energy-flow scale (:mod:`topcal.predict.detector_closure`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from topcal.plot.style import label, new_figure, save

COLOURS = {"trackPtScale": "tab:blue", "photonEnergyScale": "tab:orange", "neutralHadronEnergyScale": "tab:green"}


def _binned_mean(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``y`` and its standard error in bins of ``x``."""
    idx = np.digitize(x, edges) - 1
    ok = (idx >= 0) & (idx < len(edges) - 1)
    n = np.bincount(idx[ok], minlength=len(edges) - 1)
    s = np.bincount(idx[ok], weights=y[ok], minlength=len(edges) - 1)
    s2 = np.bincount(idx[ok], weights=y[ok] ** 2, minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        error = np.sqrt(np.maximum(s2 / n - mean**2, 0.0) / np.maximum(n - 1, 1))
    return mean, error


def variation_shifts(table: Mapping[str, np.ndarray], sizes: Mapping[str, float], out_dir: str | Path,
                     edges: Sequence[float] = tuple(range(400, 1001, 50))) -> list[Path]:
    """Mean relative shift of ptPred (solid, Up and Down) and of pT,j (open) per source in bins of pT,j,
    for the jets of ``table`` (Calibrator fields) in the training range; ``sizes``: the sources' sizes."""
    edges = np.asarray(edges, dtype=float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    use = np.asarray(table["inTrainingRange"], bool)
    pt = np.asarray(table["pt"])[use]
    fig, ax = new_figure()
    for k, (source, size) in enumerate(sizes.items()):
        colour = COLOURS.get(source)
        for direction, marker in (("Up", "^"), ("Down", "v")):
            rel = (table[f"ptPred_{source}{direction}"][use] - table["ptPred"][use]) / table["ptPred"][use]
            mean, err = _binned_mean(pt, 100 * rel, edges)
            ax.errorbar(centres, mean, yerr=err, color=colour, marker=marker, ls="-",
                        label=f"{source} {100 * size:g}%: ptPred" if direction == "Up" else None)
            rel_pt = (table[f"pt_{source}{direction}"][use] - table["pt"][use]) / table["pt"][use]
            ax.plot(centres, _binned_mean(pt, 100 * rel_pt, edges)[0], color=colour, marker=marker, ls=":",
                    mfc="none", label="the same for pT,j (open, dotted)" if direction == "Up" and k == 0 else None)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(r"$p_{T,j}$ [GeV]")
    ax.set_ylabel("relative shift [%]")
    lim = np.nanmax(np.abs(ax.get_ylim()))
    ax.set_ylim(-1.2 * lim, 4.0 * lim)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("the same"))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize="x-small", loc="upper left",
              bbox_to_anchor=(0.0, 0.88))
    label(ax, "Up (^) and Down (v); constituents of one origin scaled, membership fixed")
    return save(fig, out_dir, "detector_variation_shifts")


def closure(tables: Mapping[str, list[dict]], sizes: Mapping[str, float], out_dir: str | Path) -> list[Path]:
    """Per source: the mean ptPred change of the sample generated with the scale at ``1 + size`` (points with
    errors) and the nominal sample's Up variation (line), against pT,j, in GeV; lower panel their ratio."""
    fig, (ax, rax) = new_figure(figsize=(8, 8), nrows=2, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    for source, rows in tables.items():
        colour = COLOURS.get(source)
        lo = np.array([r["pt_low"] for r in rows])
        hi = np.array([r["pt_high"] for r in rows])
        centres = 0.5 * (lo + hi)
        sample = np.array([r["sample"] for r in rows])
        error = np.array([r["sample_error"] for r in rows])
        variation = np.array([r["variation"] for r in rows])
        ax.errorbar(centres, sample, yerr=error, color=colour, marker="o", ls="none",
                    label=f"{source} +{100 * sizes[source]:g}%")
        ax.stairs(variation, np.append(lo, hi[-1]), baseline=None, color=colour)
        rax.errorbar(centres, sample / variation, yerr=error / np.abs(variation), color=colour, marker="o", ls="none")
    rax.axhspan(0.8, 1.2, color="grey", alpha=0.2)
    rax.axhline(1.0, color="grey", lw=0.8)
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("sample / var.")
    rax.set_xlabel(r"$p_{T,j}$ [GeV]")
    ax.set_ylabel(r"mean $\Delta p_{T,pred}$ [GeV]")
    ax.set_ylim(0, ax.get_ylim()[1] * 2.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(0.0, 0.9))
    label(ax, "points: sample generated with the scale shifted (same seed); lines: the nominal sample's "
              "Up variation")
    return save(fig, out_dir, "detector_closure")
