"""Input against label uncertainties: the label smearing each detector variation corresponds to (figure 11 of the
paper, per detector source).

For each detector source (:mod:`topcal.predict.detector_systematics`) and 100 GeV bin of pT,j, the network's
response to the input variation is the mean half up-down difference <|ptPred_Up - ptPred_Down| / 2> (GeV). The
label side is measured on the same nominal network: label smearing of known relative sizes f_i (the closure
study's smear sources, 4% and 6%) gives <sigma_cal(f_i)> per bin. The **equivalent label size** of a source is
the f whose sigma_cal equals the detector half-difference, interpolated linearly in the points (0, 0),
(f_i, <sigma_cal(f_i)>) (and extrapolated from the origin through the last point beyond it): the relative
label uncertainty that the input variation is worth. Beside it, the naive <half-difference / pT,j>.

Step (a task of :mod:`topcal.reproduce.plan`, after the closure's model ``models/label_rho00``):
``reports/input_vs_label/input_vs_label.json``; :func:`write` gives the figure and the report.md lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from topcal.workers import Task

BIN_GEV = 100.0
MIN_BIN_JETS = 50  # bins with fewer test jets are listed, not drawn


def equivalent_size(detector_gev: float, label_sizes: Sequence[float], label_cal_gev: Sequence[float]) -> float:
    """The relative label smearing f whose sigma_cal (GeV) equals ``detector_gev``: linear interpolation in the
    points (0, 0) and (``label_sizes``[i], ``label_cal_gev``[i]), extrapolated through the origin and the last
    point beyond it. NaN when the label points do not rise with f."""
    f = np.concatenate([[0.0], np.asarray(label_sizes, float)])
    c = np.concatenate([[0.0], np.asarray(label_cal_gev, float)])
    order = np.argsort(f)
    f, c = f[order], c[order]
    if not np.all(np.diff(c) > 0):
        return float("nan")
    if detector_gev <= c[-1]:
        return float(np.interp(detector_gev, c, f))
    return float(detector_gev * f[-1] / c[-1])


def input_vs_label(pt_jet: np.ndarray, detector: Mapping[str, tuple[np.ndarray, np.ndarray]],
                   label_cal: Mapping[float, np.ndarray], edges: Sequence[float] | None = None) -> list[dict]:
    """Per bin of pT,j (GeV; 100 GeV bins over the jets by default): ``jets``, the label points
    ``label`` = {f: <sigma_cal> GeV}, and per source ``sources[name]`` = the mean half up-down difference
    (``half_gev``), the mean relative one (``relative``, half / pT,j) and the equivalent label size
    (``label_equivalent``, :func:`equivalent_size`).

    ``detector``: per source the per-jet (ptPred_Up, ptPred_Down) in GeV; ``label_cal``: per relative label
    smearing f the per-jet sigma_cal in GeV of the network trained with it (same jets, same nominal network)."""
    pt_jet = np.asarray(pt_jet, float)
    if edges is None:
        edges = np.arange(np.floor(pt_jet.min() / BIN_GEV) * BIN_GEV, pt_jet.max() + BIN_GEV, BIN_GEV) \
            if len(pt_jet) else []
    sizes = sorted(label_cal)
    half = {name: 0.5 * np.abs(np.asarray(up) - np.asarray(down)) for name, (up, down) in detector.items()}
    rows = []
    for lo, hi in pairwise(edges):
        sel = (pt_jet >= lo) & (pt_jet < hi)
        row = {"pt_jet_lo": float(lo), "pt_jet_hi": float(hi), "jets": int(sel.sum()), "label": {}, "sources": {}}
        if sel.any():
            cal = [float(np.mean(label_cal[f][sel])) for f in sizes]
            row["label"] = {str(f): c for f, c in zip(sizes, cal)}
            for name, h in half.items():
                mean = float(np.mean(h[sel]))
                row["sources"][name] = {"half_gev": mean, "relative": float(np.mean(h[sel] / pt_jet[sel])),
                                        "label_equivalent": equivalent_size(mean, sizes, cal)}
        rows.append(row)
    return rows


def tasks(out: Path, samples: int, model_name: str) -> list[Task]:
    """The study's step: the closure's model directory ``models/<model_name>`` on the test jets."""
    return [Task("evaluate input vs label", out / "reports" / "input_vs_label" / "input_vs_label.json", study,
                 (out / "models" / model_name, out / "dataset", out / "reports" / "input_vs_label"),
                 {"samples": samples}, after=(f"assemble {model_name}",))]


def study(model_dir: Path, dataset: Path, out: Path, samples: int = 30, seed: int = 1) -> dict:
    """:func:`input_vs_label` for a ``--label-systematics`` model with smear sources of constant size, on the test
    jets of ``dataset``, with the default detector sources; written to ``out/input_vs_label.json``."""
    from topcal.io.atomic import atomic_output
    from topcal.io.dataset import open_dataset
    from topcal.predict import detector_systematics as dsys
    from topcal.predict.label_systematics import label_systematics
    from topcal.train.data import load_rows, split_rows
    from topcal.train.label_training import read_label_meta
    from topcal.train.model import load_model

    ds = open_dataset(dataset)
    model = load_model(model_dir)
    arrays, _ = load_rows(ds, split_rows(ds.n_jets, model.config.test_fraction)[1])
    nominal = model.predict(arrays.jets, samples, seed)
    fields = label_systematics(model_dir, arrays.jets, samples, seed, nominal=nominal)
    card = read_label_meta(model_dir)["card"]
    label_cal = {float(s.size): fields[f"sigmaCal_{s.name}"] for s in card.smear if s.constant}
    var = dsys.variations(model, arrays.jets, nominal["mean"], dsys.DEFAULT_SIZES, seed)
    detector = {s: (var[f"ptPred_{s}Up"], var[f"ptPred_{s}Down"]) for s in dsys.DEFAULT_SIZES}
    result = {"model": str(Path(model_dir).absolute()), "samples": samples, "seed": seed,
              "sizes": dict(dsys.DEFAULT_SIZES), "min_bin_jets": MIN_BIN_JETS,
              "bins": input_vs_label(arrays.pt_jet, detector, label_cal)}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "input_vs_label.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def figure(result: dict, out_dir: Path, note: str) -> list[Path]:
    """Per source (one colour each), the equivalent relative label size (filled, solid) and the naive
    half-difference / pT,j (open, dotted) against pT,j; the note names the label smearing sizes that
    calibrate it."""
    from topcal.plot.style import headroom, label, new_figure, save

    rows = [r for r in result["bins"] if r["jets"] >= result["min_bin_jets"] and r["sources"]]
    fig, ax = new_figure()
    centre = np.array([(r["pt_jet_lo"] + r["pt_jet_hi"]) / 2 for r in rows])
    top = 0.0
    for i, ((name, size), marker) in enumerate(zip(result["sizes"].items(), "os^vD")):
        eq = np.array([100 * r["sources"][name]["label_equivalent"] for r in rows])
        naive = np.array([100 * r["sources"][name]["relative"] for r in rows])
        ax.plot(centre, eq, f"{marker}-", color=f"C{i}", label=f"{name} ($\\pm${100 * size:g}%)")
        ax.plot(centre, naive, marker, mfc="none", ls=":", color=f"C{i}")
        top = max(top, float(np.nanmax(np.concatenate([eq, naive, [0.0]]))))
    ax.plot([], [], "o-", color="black", label="label equivalent")
    ax.plot([], [], "o", mfc="none", ls=":", color="black", label="half up-down / $p_{T,j}$")
    ax.set_xlabel(r"$p_{T,j}$ [GeV]")
    ax.set_ylabel("relative uncertainty [%]")
    headroom(ax, top, 2.6)  # the legend and its note above the points
    ax.legend(loc="upper left", fontsize="x-small")
    sizes = sorted(float(f) for f in (rows[0]["label"] if rows else {}))
    label(ax, note=f"{note}; label smearing of " + ", ".join(f"{100 * f:g}%" for f in sizes) + " as reference")
    return save(fig, out_dir, "input_vs_label_sources")


def write(out: Path, plots: Path, note: str) -> list[str]:
    """The figure in ``plots`` and the report.md lines."""
    result = json.loads((out / "reports" / "input_vs_label" / "input_vs_label.json").read_text())
    figure(result, plots, note)
    sizes = sorted(float(f) for f in (result["bins"][0]["label"] if result["bins"] else {}))
    names = list(result["sizes"])
    lines = [("\n## Input against label uncertainties (figure 11 per detector source): the relative label smearing "
              "whose sigma_cal equals each source's half up-down difference of ptPred, per 100 GeV bin of pT,j\n"),
             "Label points: sigma_cal of the nominal network's smear sources of "
             + " and ".join(f"{100 * f:g}%" for f in sizes) + " (`models/label_rho00`); cells: label equivalent "
             "in % (half up-down difference in GeV, and / pT,j in %); n/a where sigma_cal does not rise with the "
             "label smearing.\n",
             "| pT,j [GeV] | jets | " + " | ".join(f"sigma_cal {100 * f:g}% [GeV]" for f in sizes) + " | "
             + " | ".join(f"{n} ({100 * result['sizes'][n]:g}%)" for n in names) + " |",
             "|---|---|" + "---|" * (len(sizes) + len(names))]
    for r in result["bins"]:
        if not r["sources"]:
            continue
        cells = [f"{r['label'][str(f)]:.1f}" for f in sizes]
        for n in names:
            s = r["sources"][n]
            eq = f"{100 * s['label_equivalent']:.2f}" if np.isfinite(s["label_equivalent"]) else "n/a"
            cells.append(f"{eq} ({s['half_gev']:.2f} GeV, {100 * s['relative']:.2f})")
        lines.append(f"| {r['pt_jet_lo']:.0f}..{r['pt_jet_hi']:.0f} | {r['jets']} | " + " | ".join(cells) + " |")
    return lines
