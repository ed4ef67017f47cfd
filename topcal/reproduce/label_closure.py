"""Closure of the label-uncertainty sources (``topcal train --label-systematics``) on the simulation.

Two smear sources of known size, ``refResolution`` (4%) and ``refPileup`` (6%), with correlation 0 and 0.5
(two cards, so two model directories that share the nominal network, the per-source networks and the shift
pair), and one shift source ``refScale`` (2%, ``method = "train"``: a network trained on labels x 1.02 and
one on labels x 0.98). On the test jets, per 100 GeV bin of pT,j:

* the combined sigma_cal (``sigmaCal``) against the injected combination
  <sqrt(s1^2 + s2^2 + 2 rho s1 s2) pT,t(truth)>, and each source's ``sigmaCal_<source>`` against
  <s pT,t(truth)>;
* each shift, <ptPred_Up / ptPred - 1> and <1 - ptPred_Down / ptPred>, against 2%, and the trained shifted
  networks against the cheap ``method = "scale"`` (ptPred x (1 +- 0.02)).

Steps (tasks of :mod:`topcal.reproduce.plan`): the networks in ``models/label_parts/`` (one task each), the
model directories ``models/label_rho00`` and ``models/label_rho50``, and ``reports/label_closure/closure.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from topcal.config import TrainConfig
from topcal.train.label_sources import LabelCard, parse_label_card
from topcal.workers import Task

SIZES = {"refResolution": 0.04, "refPileup": 0.06}
SHIFT = ("refScale", 0.02)
RHOS = (0.0, 0.5)
BIN_GEV = 100.0
TOLERANCE = 0.10
MIN_BIN_JETS = 50  # bins with fewer test jets are listed, not judged


def closure_card(rho: float) -> LabelCard:
    """The study's card at correlation ``rho`` between the two smear sources."""
    (a, sa), (b, sb) = SIZES.items()
    pileup = {"kind": "smear", "size": sb, **({"correlation": {a: rho}} if rho else {})}
    return parse_label_card({a: {"kind": "smear", "size": sa}, b: pileup,
                             SHIFT[0]: {"kind": "shift", "size": SHIFT[1], "method": "train"}},
                            f"closure card (rho {rho})")


def model_name(rho: float) -> str:
    return f"label_rho{round(100 * rho):02d}"


def tasks(out: Path, dataset: Path, cfg: TrainConfig, samples: int, command: str | None,
          progress: bool = False) -> list[Task]:
    """The trainings (shared networks once), the two model directories and the closure report."""
    from topcal.train.label_training import assemble, label_tasks

    models, parts = out / "models", out / "models" / "label_parts"
    trainings: dict[str, Task] = {}
    assembled = []
    for rho in RHOS:
        card = closure_card(rho)
        own = label_tasks(dataset, parts, cfg, card, command, progress=progress)
        trainings.update({t.name: t for t in own})
        assembled.append(Task(f"assemble {model_name(rho)}", models / model_name(rho), assemble,
                              (parts, models / model_name(rho), cfg, card), after=tuple(t.name for t in own)))
    report = Task("evaluate label closure", out / "reports" / "label_closure" / "closure.json", closure_report,
                  ([models / model_name(rho) for rho in RHOS], dataset, out / "reports" / "label_closure"),
                  dict(samples=samples), after=tuple(t.name for t in assembled))
    return [*trainings.values(), *assembled, report]


def closure_report(model_dirs: list[Path], dataset: Path, out: Path, samples: int = 30, seed: int = 1) -> dict:
    """Measured against injected label uncertainties on the test jets of ``dataset``, per 100 GeV bin of pT,j,
    for each model directory (one per correlation); written to ``out/closure.json``."""
    from topcal.io.atomic import atomic_output
    from topcal.io.dataset import open_dataset
    from topcal.predict.label_systematics import label_systematics
    from topcal.train.data import load_rows, split_rows
    from topcal.train.label_training import read_label_meta
    from topcal.train.model import load_model

    ds = open_dataset(dataset)
    result: dict = {"samples": samples, "seed": seed, "tolerance": TOLERANCE, "min_bin_jets": MIN_BIN_JETS,
                    "cards": []}
    for model_dir in model_dirs:
        model = load_model(model_dir)
        arrays, _ = load_rows(ds, split_rows(ds.n_jets, model.config.test_fraction)[1])
        nominal = model.predict(arrays.jets, samples, seed)
        fields = label_systematics(model_dir, arrays.jets, samples, seed, nominal=nominal)
        card = read_label_meta(model_dir)["card"]
        pt_t, pt_j = arrays.pt_truth, arrays.pt_jet
        (a, b), rho = [s for s in card.smear], float(card.correlation_matrix()[0, 1])
        sa, sb = a.relative(pt_t), b.relative(pt_t)
        quantities = {  # name: (measured per jet, injected per jet)
            "sigmaCal": (fields["sigmaCal"], np.sqrt(sa**2 + sb**2 + 2 * rho * sa * sb) * pt_t),
            f"sigmaCal_{a.name}": (fields[f"sigmaCal_{a.name}"], sa * pt_t),
            f"sigmaCal_{b.name}": (fields[f"sigmaCal_{b.name}"], sb * pt_t),
        }
        for s in card.shift:
            size = s.relative(pt_t)
            quantities[f"ptPred_{s.name}Up"] = (fields[f"ptPred_{s.name}Up"] / nominal["mean"] - 1, size)
            quantities[f"ptPred_{s.name}Down"] = (1 - fields[f"ptPred_{s.name}Down"] / nominal["mean"], size)
        result["cards"].append({"model": str(Path(model_dir).absolute()), "rho": rho,
                                "sources": card.to_dict()["sources"], "bins": _binned(pt_j, quantities)})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "closure.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def _binned(pt_j: np.ndarray, quantities: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """Per 100 GeV bin of pT,j: jets, and for each quantity the mean measured, the mean injected, their ratio."""
    edges = np.arange(np.floor(pt_j.min() / BIN_GEV) * BIN_GEV, pt_j.max() + BIN_GEV, BIN_GEV) if len(pt_j) else []
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (pt_j >= lo) & (pt_j < hi)
        row = {"pt_jet_lo": float(lo), "pt_jet_hi": float(hi), "jets": int(sel.sum())}
        if sel.any():
            for name, (measured, injected) in quantities.items():
                m, i = float(np.mean(measured[sel])), float(np.mean(injected[sel]))
                row[name] = {"measured": m, "injected": i, "ratio": m / i}
        rows.append(row)
    return rows


def verdict(closure: dict) -> tuple[int, int]:
    """(judged bin-quantities within the tolerance, judged bin-quantities): bins of at least ``MIN_BIN_JETS``."""
    ok = total = 0
    for card in closure["cards"]:
        for row in card["bins"]:
            if row["jets"] < closure["min_bin_jets"]:
                continue
            for value in row.values():
                if isinstance(value, dict):
                    total += 1
                    ok += abs(value["ratio"] - 1) <= closure["tolerance"]
    return ok, total


def write(out: Path, plots: Path, note: str) -> list[str]:
    """The closure figure in ``plots`` and the report.md lines."""
    from topcal.plot import study_figures as fig

    closure = json.loads((out / "reports" / "label_closure" / "closure.json").read_text())
    fig.label_closure(closure, plots, note)
    ok, total = verdict(closure)
    lines = [f"\n## Several label-uncertainty sources: closure (injected 4% and 6% smearing at correlation "
             f"{' and '.join(str(r) for r in RHOS)}, a 2% shift), measured / injected per 100 GeV bin of pT,j\n",
             f"{ok} of {total} bin values within {100 * closure['tolerance']:.0f}% (bins of at least "
             f"{closure['min_bin_jets']} test jets; {closure['samples']} weight samples).\n"]
    for card in closure["cards"]:
        names = [k for k in card["bins"][0] if isinstance(card["bins"][0][k], dict)] if card["bins"] else []
        lines += [f"\ncorrelation {card['rho']}: sigma_cal [GeV] measured / injected (ratio); shifts in %\n",
                  "| pT,j [GeV] | jets | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for row in card["bins"]:
            cells = []
            for n in names:
                v = row.get(n)
                if v is None:
                    cells.append("-")
                elif n.startswith("ptPred"):
                    cells.append(f"{100 * v['measured']:.2f} / {100 * v['injected']:.2f} ({v['ratio']:.2f})")
                else:
                    cells.append(f"{v['measured']:.1f} / {v['injected']:.1f} ({v['ratio']:.2f})")
            lines.append(f"| {row['pt_jet_lo']:.0f}..{row['pt_jet_hi']:.0f} | {row['jets']} | " + " | ".join(cells)
                         + " |")
    lines.append("\nThe shifts come from networks trained on shifted labels; `method = \"scale\"` gives exactly "
                 "2% (ptPred x 1.02), so the shift columns also measure the trained pair against the scaled one.")
    return lines
