"""Figures of the paper's studies (``topcal reproduce``), hist + mplhep, numbers in GeV."""

from __future__ import annotations

from pathlib import Path

import hist
import mplhep
import numpy as np

from topcal.plot.style import COLOURS, SYMBOLS, colour_bar_label, headroom, label, new_figure, save
from topcal.train.metrics import NARROW_SLICE_GEV, keyed_rows


def _density_top(h: hist.Hist) -> float:
    """The highest point of a normalised histogram with its Poisson error bar (0 when empty)."""
    total = float(h.sum())
    if total <= 0:
        return 0.0
    values = h.values()
    return float(np.max((values + np.sqrt(values)) / (total * h.axes[0].widths)))


def _normalised_step(ax, h: hist.Hist, **kwargs) -> None:
    """A normalised step histogram with Poisson error bars where there are jets (none on empty bins)."""
    mplhep.histplot(h, ax=ax, histtype="step", density=True, yerr=np.sqrt(h.variances()), flow=None, **kwargs)


def extracted_vs_truth(pt_truth: np.ndarray, pt_pred: np.ndarray, out_dir: Path, note: str) -> list[Path]:
    """Figure 3 right: the extracted <pT> against pT,t(truth)."""
    h = hist.Hist(hist.axis.Regular(45, 300, 1200, label=r"$p_{T,t}^{truth}$ [GeV]"),
                  hist.axis.Regular(45, 300, 1200, label=r"$\langle p_{T,t}\rangle$ [GeV]"))
    h.fill(pt_truth, pt_pred)
    fig, ax = new_figure()
    colour_bar_label(mplhep.hist2dplot(h, ax=ax, cmin=1, flow=None))
    ax.plot([300, 1200], [300, 1200], color="white", ls="--", lw=1)
    label(ax, note=note)
    return save(fig, out_dir, "extracted_vs_truth")


def versus_training_size(sizes: list[int], series: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path,
                         note: str, name: str = "sigmas_vs_training_size") -> list[Path]:
    """Figure 5 (and 7): quantities (mean, spread over repetitions) against the number of training jets.

    ``series`` keys are quantities (``sigma_pred``, ``rmse``...) or ``(quantity, method)`` pairs; a quantity
    keeps its colour (:data:`topcal.plot.style.COLOURS`), the methods differ by marker and line style."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, ax = new_figure()
    methods = list(dict.fromkeys(k[1] for k in series if isinstance(k, tuple)))
    for key, (mean, spread) in series.items():
        quantity, method = key if isinstance(key, tuple) else (key, None)
        i = methods.index(method) if method in methods else 0
        legend = SYMBOLS.get(quantity, quantity) + (f" {method}" if method else "")
        ax.errorbar(sizes, mean, yerr=spread, fmt="os^v"[i % 4] + ("-", "--", ":", "-.")[i % 4],
                    color=COLOURS.get(quantity), label=legend, capsize=3)
    ax.set_xscale("log")
    ax.set_xlim(min(sizes) / 1.5, max(sizes) * 1.5)
    # one readable label per training size (2k, 5k, 10k, ...), none on the minor ticks
    ax.set_xticks(sizes)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training jets")
    ax.set_ylabel(r"$\sigma$, √MSE [GeV]")
    top = max(float(np.max(np.asarray(m) + np.asarray(s))) for m, s in series.values())
    ax.set_ylim(0, 1.5 * top)  # room for the label and the legend above the points
    ax.legend(loc="upper right", fontsize="x-small", ncol=2)
    label(ax, note=note)
    return save(fig, out_dir, name)


def sigma_pred_distribution(sigma_pred: np.ndarray, n_constituents: np.ndarray, out_dir: Path,
                            note: str) -> list[Path]:
    """Figure 6: the distribution of sigma_pred, and its mean against the number of constituents."""
    top = float(np.quantile(sigma_pred, 0.99)) * 1.2 if len(sigma_pred) else 1.0
    h = hist.Hist(hist.axis.Regular(50, 0, top, label=r"$\sigma_{pred}$ [GeV]"))
    h.fill(sigma_pred)
    fig, ax = new_figure()
    mplhep.histplot(h, ax=ax, histtype="step", yerr=True, flow=None, color=COLOURS["sigma_pred"])
    ax.set_ylabel("jets")
    headroom(ax, float(np.max(h.values() + np.sqrt(h.variances()), initial=0.0)), 1.6)  # the note above the peak
    label(ax, note=note)
    paths = save(fig, out_dir, "sigma_pred_distribution")
    prof = hist.Hist(hist.axis.Regular(15, 0, max(30, float(np.max(n_constituents, initial=30))),
                                       label="constituents"), storage=hist.storage.Mean())
    prof.fill(n_constituents, sample=sigma_pred)
    fig, ax = new_figure()
    filled = prof.counts() > 0
    yerr = np.sqrt(prof.variances()[filled] / prof.counts()[filled])
    ax.errorbar(prof.axes[0].centers[filled], prof.values()[filled], yerr=yerr, fmt="o", color=COLOURS["sigma_pred"])
    ax.set_xlabel("constituents")
    ax.set_ylabel(r"$\langle\sigma_{pred}\rangle$ [GeV]")
    headroom(ax, float(np.max(prof.values()[filled] + yerr, initial=0.0)), 1.5)
    label(ax, note=note)
    return paths + save(fig, out_dir, "sigma_pred_vs_constituents")


def mixtures_in_slice(pt_truth: np.ndarray, grid: np.ndarray, densities: dict[str, np.ndarray], out_dir: Path,
                      note: str) -> list[Path]:
    """Figure 8: the averaged predictive density of 1, 2, 3 Gaussians against pT,t(truth) in the slice."""
    h = hist.Hist(hist.axis.Regular(40, grid[0], grid[-1], label=r"$p_{T,t}$ [GeV]"))
    h.fill(pt_truth)
    fig, ax = new_figure()
    mplhep.histplot(h, ax=ax, density=True, histtype="fill", alpha=0.3, color="gray", label=r"$p_{T,t}^{truth}$",
                    flow=None)
    top = float(np.max(h.density(), initial=0.0))
    for name, dens in densities.items():
        ax.plot(grid, dens, lw=2, label=name)
        top = max(top, float(np.max(dens, initial=0.0)))
    ax.set_ylabel("density [1/GeV]")
    headroom(ax, top, 1.6)  # the legend above the curves
    ax.legend(loc="upper right", fontsize="small")
    label(ax, note=note)
    return save(fig, out_dir, "mixtures_narrow_slice")


def calibration_versus_smearing(smear_gev: np.ndarray, sigma_cal: np.ndarray, sigma_input: np.ndarray,
                                fractions: np.ndarray, out_dir: Path, note: str,
                                sigma_cal_spread: np.ndarray | None = None) -> list[Path]:
    """Figures 10 and 11: sigma_cal (spread of the repeated trainings as error bars) against the applied
    label smearing, and against input smearing."""
    fig, ax = new_figure()
    ax.errorbar(smear_gev, sigma_cal, yerr=sigma_cal_spread, fmt="o-", capsize=3, color=COLOURS["sigma_cal"],
                label=r"$\langle\sigma_{cal}\rangle$ (label smearing)")
    ax.plot(smear_gev, sigma_input, "s--", color=COLOURS["sigma_input"],
            label=r"$\langle\sigma_{input}\rangle$ (inputs scaled by $1\pm f$)")
    lim = max(float(np.max(smear_gev, initial=1)), float(np.max(sigma_cal, initial=1))) * 1.2
    ax.plot([0, lim], [0, lim], color="gray", lw=1, ls=":", label="diagonal")
    for x, y, f in zip(smear_gev, sigma_cal, fractions):
        ax.annotate(f"{100 * f:.0f}%", (x, y), textcoords="offset points", xytext=(4, -12), fontsize="x-small")
    ax.set_xlabel(r"$\langle\sigma_{smear}\rangle = f\,\langle p_{T,t}^{truth}\rangle$ [GeV]")
    ax.set_ylabel(r"$\langle\sigma_{cal}\rangle$, $\langle\sigma_{input}\rangle$ [GeV]")
    ax.set_xlim(0, lim)
    ax.set_ylim(0, 1.4 * lim)  # room above the points for the legend
    ax.legend(loc="upper left", fontsize="x-small")
    label(ax, note=note)
    return save(fig, out_dir, "sigma_cal_vs_smearing")


def coverage_and_pulls(rows: dict, out_dir: Path, note: str) -> list[Path]:
    """The calibration diagnostics the paper lacks: 68% coverage and pull width against pT,j (``rows``: a
    report's rows, :func:`topcal.train.metrics.keyed_rows`)."""
    rows = [r for r in keyed_rows(rows)["bins"] if r.get("jets", 0) > 0]
    centre = np.array([(r["pt_jet_lo"] + r["pt_jet_hi"]) / 2 for r in rows])
    fig, ax = new_figure()
    top = 1.0  # the pull width's target
    for key, marker, colour, text, target in (("coverage68", "o", "tab:blue", "68% interval coverage", 0.68),
                                              ("pull_width", "s", "tab:orange", "pull width", 1.0)):
        values = [r[key] for r in rows]
        ax.plot(centre, values, f"{marker}-", color=colour, label=text)
        ax.axhline(target, color=colour, ls=":", lw=1.5, label=f"{text}: {target:g} (calibrated)")
        top = max([top, *values])
    ax.set_xlabel(r"$p_{T,j}$ [GeV]")
    ax.set_ylabel("68% coverage, pull width")
    ax.set_ylim(0, 1.9 * top)  # the legend and its note above the points and the targets
    ax.legend(loc="upper right", fontsize="x-small")
    label(ax, note=note)
    return save(fig, out_dir, "coverage_and_pulls")


def truth_in_slice_with_and_without_isr(pt_truth: dict[str, np.ndarray], out_dir: Path, note: str) -> list[Path]:
    """Figure 4 left: pT,t(truth) of the jets with pT,j 600..620 GeV, one normalised curve per sample."""
    fig, ax = new_figure()
    top = 0.0
    for name, values in pt_truth.items():
        h = hist.Hist(hist.axis.Regular(40, 400, 1000, label=r"$p_{T,t}^{truth}$ [GeV]"))
        h.fill(values)
        _normalised_step(ax, h, label=f"{name} ({len(values)} jets)")
        top = max(top, _density_top(h))
    ax.axvspan(*NARROW_SLICE_GEV, color="grey", alpha=0.2, label=r"$p_{T,j}$ slice")
    ax.set_ylabel("normalised")
    headroom(ax, top, 1.7)  # the legend and its note above the curves
    ax.legend(loc="upper right", fontsize="x-small")
    label(ax, note=note)
    return save(fig, out_dir, "pt_truth_slice_isr")


def regression_vs_pt_by_toplikeness(edges: np.ndarray, curves: dict[str, dict[str, np.ndarray]], out_dir: Path,
                                    note: str, name: str) -> list[Path]:
    """Figure 4 right: sqrt(MSE) (solid) and the mean sigma_stoch (dashed) against pT,j for top-like subsets.

    ``curves[subset] = {"rmse": ..., "sigma_stoch": ...}`` per pT,j bin of ``edges`` (GeV)."""
    fig, ax = new_figure()
    centres = 0.5 * (edges[1:] + edges[:-1])
    for i, (subset, values) in enumerate(curves.items()):  # colour: the subset; line style: the quantity
        ax.plot(centres, values["rmse"], "-", color=f"C{i}", label=subset)
        ax.plot(centres, values["sigma_stoch"], "--", color=f"C{i}")
    ax.plot([], [], "-", color="black", label="√MSE")
    ax.plot([], [], "--", color="black", label=r"$\langle\sigma_{stoch}\rangle$")
    ax.set_xlabel(r"$p_{T,j}$ [GeV]")
    ax.set_ylabel(r"√MSE, $\langle\sigma_{stoch}\rangle$ [GeV]")
    finite = [v[np.isfinite(v)] for c in curves.values() for v in c.values()]
    top = max((float(v.max()) for v in finite if len(v)), default=1.0)
    ax.set_ylim(0, 1.8 * top)  # the legend and its note above the curves
    ax.legend(loc="upper right", fontsize="x-small", ncol=2)
    label(ax, note=note)
    return save(fig, out_dir, name)


def smeared_truth_vs_jet(pred: dict[str, np.ndarray], smeared_label: np.ndarray, fraction: float, out_dir: Path,
                         note: str) -> list[Path]:
    """Figure 9: the smeared label against pT,j with, per 20 GeV bin of pT,j, the label's median and 16..84%
    band (orange) and the network's mean prediction and its mean 68% interval (blue); and the smeared
    label in the 600..620 GeV slice against the network's output there (a Gaussian draw per jet from
    <pT> and sigma_tot)."""
    fig, (top, bottom) = new_figure(figsize=(8, 11), nrows=2, height_ratios=(3, 2))
    fig.subplots_adjust(hspace=0.3)  # room for the upper panel's axis title
    # the legend sits in the upper left: the y range holds every label and keeps those of jets below
    # 800 GeV (under the legend) in its lower 65%
    left = smeared_label[pred["pt_jet"] < 800]
    y_top = max(1200.0, float(np.max(smeared_label, initial=0.0)),
                300 + (float(np.max(left, initial=300.0)) - 300) / 0.65)
    y_top = 100 * np.ceil(y_top / 100)
    h = hist.Hist(hist.axis.Regular(30, 400, 1000, label=r"$p_{T,j}$ [GeV]"),
                  hist.axis.Regular(round((y_top - 300) / 20), 300, y_top,
                                    label=r"smeared $p_{T,t}^{truth}$ [GeV]"))
    h.fill(pred["pt_jet"], smeared_label)
    mesh = mplhep.hist2dplot(h, ax=top, cmin=1, flow=None, cbar=False).pcolormesh
    # the colour bar outside the upper panel, which keeps the width of the lower one
    fig.colorbar(mesh, cax=top.inset_axes((1.02, 0.0, 0.04, 1.0))).set_label("jets")
    edges = np.arange(400, 1001, 20.0)
    centres = 0.5 * (edges[1:] + edges[:-1])
    idx = np.digitize(pred["pt_jet"], edges) - 1
    bands = {"truth": [], "network": []}
    for b in range(len(centres)):
        sel = idx == b
        if sel.sum() < 5:
            bands["truth"].append((np.nan,) * 3)
            bands["network"].append((np.nan,) * 3)
            continue
        bands["truth"].append(tuple(np.quantile(smeared_label[sel], (0.16, 0.5, 0.84))))
        bands["network"].append((np.mean(pred["low"][sel]), np.mean(pred["mean"][sel]), np.mean(pred["high"][sel])))
    for key, colour, name in (("truth", "tab:orange", "label: median, 16..84%"),
                              ("network", "tab:blue", r"network: $\langle p_T\rangle$, 68% interval")):
        lo, mid, hi = np.array(bands[key]).T
        top.plot(centres, mid, color=colour, label=name)
        top.plot(centres, lo, color=colour, ls="--")
        top.plot(centres, hi, color=colour, ls="--")
    top.legend(loc="upper left", fontsize="x-small")  # above the data, in the empty top of the y range
    label(top, note=f"labels smeared by {100 * fraction:.0f}%")
    lo, hi = NARROW_SLICE_GEV
    in_slice = (pred["pt_jet"] >= lo) & (pred["pt_jet"] < hi)
    rng = np.random.default_rng(1)
    drawn = pred["mean"][in_slice] + pred["sigma_tot"][in_slice] * rng.standard_normal(int(in_slice.sum()))
    peak = 0.0
    for values, name, colour in ((smeared_label[in_slice], "smeared label", "black"),
                                 (drawn, "network output", "tab:blue")):
        axis_label = rf"$p_{{T,t}}$ [GeV], $p_{{T,j}}$ {lo:.0f}..{hi:.0f} GeV"
        hs = hist.Hist(hist.axis.Regular(40, 400, 1000, label=axis_label))
        hs.fill(values)
        _normalised_step(bottom, hs, color=colour, label=name)
        peak = max(peak, _density_top(hs))
    bottom.set_ylabel("normalised")
    headroom(bottom, peak, 1.6)
    bottom.legend(loc="upper right", fontsize="x-small")
    return save(fig, out_dir, f"smeared_labels_{round(100 * fraction):02d}")


def label_closure(closure: dict, out_dir: Path, note: str) -> list[Path]:
    """Closure of several label-uncertainty sources: measured / injected per 100 GeV bin of pT,j (sigma_cal of
    all smear sources together at each correlation, of each source, and each shift up and down), with the
    +- tolerance band (``reports/label_closure/closure.json``, :mod:`topcal.reproduce.label_closure`)."""
    fig, ax = new_figure()
    markers = iter("os^vD<>px*h")
    colours = iter(["tab:purple", "tab:blue", "tab:green", "tab:red", "tab:orange", "black", "tab:brown"])
    for card in closure["cards"]:
        rows = [r for r in card["bins"] if r["jets"] >= closure["min_bin_jets"]]
        names = [k for k in (rows[0] if rows else {}) if isinstance(rows[0][k], dict)]
        centre = np.array([(r["pt_jet_lo"] + r["pt_jet_hi"]) / 2 for r in rows])
        for i, name in enumerate(names):
            if name != "sigmaCal" and card is not closure["cards"][0]:
                continue  # the per-source networks and the shifts are shared by the cards
            offset = (i - len(names) / 2) * 8 + (8 * len(names) if card is not closure["cards"][0] else 0)
            ax.plot(centre + offset, [r[name]["ratio"] for r in rows], f"{next(markers)}-", color=next(colours),
                    label=_closure_label(name, card))
    tol = closure["tolerance"]
    ax.axhspan(1 - tol, 1 + tol, color="gray", alpha=0.2, label=f"$\\pm${100 * tol:.0f}%")
    ax.axhline(1, color="gray", lw=1, ls=":")
    ax.set_xlabel(r"$p_{T,j}$ [GeV]")
    ax.set_ylabel("measured / injected")
    ax.set_ylim(0.6, 2.4)  # room above the points for the legend
    ax.legend(loc="upper right", fontsize="x-small")
    label(ax, note=note)
    return save(fig, out_dir, "label_sources_closure")


def _closure_label(name: str, card: dict) -> str:
    """Legend entry of one closure quantity, with the injected size from the card's sources."""
    sources = {s["name"]: s for s in card["sources"]}
    if name == "sigmaCal":
        return f"$\\sigma_{{cal}}$ all smear, $\\rho$ = {card['rho']:g}"
    if name.startswith("sigmaCal_"):
        source = name.removeprefix("sigmaCal_")
        return f"$\\sigma_{{cal}}$ {source} ({_size_text(sources[source]['size'])})"
    for way in ("Up", "Down"):
        if name.endswith(way):
            source = name.removeprefix("ptPred_").removesuffix(way)
            return f"shift {source} {way.lower()} ({_size_text(sources[source]['size'])})"
    return name


def _size_text(size) -> str:
    """A source's relative size in %: a constant, or "pT-dependent" for points in pT,t."""
    return f"{100 * size:g}%" if isinstance(size, (int, float)) else "$p_T$-dependent"
