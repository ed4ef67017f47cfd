"""``topcal info``: a few lines on any topcal input or output.

* a DELPHES file (topcal's or DELPHES's own): events, collections, provenance; ``check`` reads and
  decompresses every basket, which finds damaged data inside an intact file;
* a per-jet dataset (``topcal process``): jets, configuration, cut flow;
* a model directory (``topcal train``): network, inputs, target, training size, training curve, calibration;
* a friend file (``topcal predict``): events, fat jets, mean pT,pred and sigma_tot, the model that made it,
  the posterior (T, seed), the prior, and the variations it holds (branches, unit, correlation across jets).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import uproot

from topcal.errors import InputFileError


def describe(path: str | Path, check: bool = False) -> str:
    """The summary of ``path`` (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        if (path / "model.json").is_file():
            if check:  # every weight file loaded: a truncated or damaged one is an error here
                from topcal.train.model import load_model

                load_model(path)
            return _model(path)
        if (path / "dataset.json").is_file():
            return _dataset(path, check)
        raise InputFileError(f"{path}: a directory, but no topcal dataset (dataset.json) or model (model.json)")
    if path.is_file():
        try:
            with uproot.open(path) as file:
                friend = "topcal_model" in file and "Delphes" not in file
        except Exception:  # not ROOT at all: the DELPHES check below gives the one-line message
            friend = False
        if friend:
            return _friend(path)
    from topcal.io.delphes_reader import summarize

    return summarize(path, check=check)


def _dataset(path: Path, check: bool = False) -> str:
    from topcal.io.dataset import open_dataset

    ds = open_dataset(path)
    if check:
        ds.verify()
    cfg, m = ds.config, ds.manifest
    lines = [f"{path}: topcal per-jet dataset, {ds.n_jets} jets in {len(m['parts'])} part(s)",
             f"  jets: anti-kT R = {cfg.jet_radius}, pT,j {cfg.jet_pt_min_gev:g}..{cfg.jet_pt_max_gev:g} GeV, "
             f"|eta| < {cfg.jet_eta_max}, {cfg.max_constituents} constituents stored",
             f"  truth: {cfg.top_label} label, decay products matched: {cfg.match_decay_products}, pT,t "
             f"{cfg.truth_pt_min_gev:g}..{cfg.truth_pt_max_gev:g} GeV, leptons in jets: {cfg.jet_leptons}, "
             f"flattened: {cfg.flatten}"]
    if m.get("cutflow"):
        lines.append("  cut flow: " + ", ".join(f"{k} {v}" for k, v in m["cutflow"].items()))
    if m.get("command"):
        lines.append(f"  made by: {m['command']}")
    return "\n".join(lines)


def _model(path: Path) -> str:
    from topcal.train.model_dir import HISTORY, read_meta
    from topcal.train.recalibration import factors_by_pt

    meta = read_meta(path)
    cfg, pre, tr = meta["config"], meta["preprocessing"], meta["training"]
    point = " (point estimate)" if cfg.get("phi_posterior") == "point" and meta["kind"] != "ensemble" else ""
    arch = (f"deep set phi {cfg['phi_hidden']}{point} + head {cfg['hidden']}" if cfg["architecture"] == "deepset"
            else f"dense {cfg['hidden']}")
    lines = [f"{path}: topcal model ({meta['kind']}, {len(meta['weights'])} network(s))",
             f"  network: {arch}, {cfg['likelihood']} likelihood, inputs {cfg['inputs']}, target {pre['target']}, "
             f"prior N(0, {cfg['prior_sigma']})",
             f"  training: {tr['jets_per_network']} jets per network from {meta['dataset']['path']}"]
    history = json.loads((path / HISTORY).read_text()) if (path / HISTORY).is_file() else []
    for i, (member, h) in enumerate(zip(tr["members"], history)):
        first, best = h[0] if h else {}, member
        val_nll = first.get("val_nll", float("nan"))
        lines.append(f"  network {i}: {member['epochs']} epochs, validation NLL {val_nll:.3f}"
                     f" (epoch 1) -> {best['best_val_loss']:.3f} (best, epoch {best['best_epoch']})")
    cal = meta.get("calibration")
    if cal:
        lines.append(f"  calibration jets: 68% coverage {cal['coverage68_raw']:.3f}, 95% coverage "
                     f"{cal['coverage95_raw']:.3f}, width factor {cal['width_factor']:.3f}"
                     + (f" (by pT,j: {factors_by_pt(cal['width_factor_pt'])})" if cal.get("width_factor_pt") else ""))
    from topcal.train import variations

    for t, seed in variations.stored(path):
        v = variations.load(path, t, seed)
        lines.append(f"  statistical variations: {v.k} for samples={t} seed={seed} ({100 * v.kept:.1f}% of the "
                     f"variance on {v.jets} jets)")
    v = meta["validity"]
    window = v.get("label_window_gev")
    labels = f"; trained on pT,t(truth) {window[0]:g}..{window[1]:g} GeV" if window else ""
    lines.append(f"  valid for: pT,j {v['jet_pt_min_gev']:g}..{v['jet_pt_max_gev']:g} GeV, "
                 f"|eta| < {v['jet_eta_max']}{labels}")
    lines.append(f"  made by: {meta.get('command')}")
    return "\n".join(lines)


def detector_sources(branches) -> list[str]:
    """The detector sources whose four variation branches are all in ``branches``."""
    from topcal.predict.detector_systematics import SOURCES

    branches = set(branches)
    return [s for s in SOURCES if {f"FatJet_{q}_{s}{d}" for q in ("ptPred", "pt") for d in ("Up", "Down")} <= branches]


def detector_variations(branches) -> list[str]:
    """A line naming the detector sources whose ``FatJet_ptPred_<source>Up``/``Down`` and
    ``FatJet_pt_<source>Up``/``Down`` branches are present (none: no line)."""
    found = detector_sources(branches)
    if not found:
        return []
    return [f"  detector variations (FatJet_ptPred_<source>Up/Down, FatJet_pt_<source>Up/Down; GeV; fully correlated "
            f"across jets within a source): {', '.join(found)}"]


def _friend(path: Path) -> str:
    with uproot.open(path) as file:
        trees = [k.split(";")[0] for k, c in file.classnames().items() if c == "TTree"]
        if not trees:
            raise InputFileError(f"{path}: no tree")
        tree = file[trees[0]]
        arrays = tree.arrays(["nFatJet", "FatJet_ptPred", "FatJet_sigmaTot"], library="ak")
        branches = list(tree.keys())
        model = str(file["topcal_model_path"]) if "topcal_model_path" in file else "unknown"
        posterior = json.loads(str(file["topcal_posterior"])) if "topcal_posterior" in file else {}
    import awkward as ak

    n_jets = int(ak.sum(arrays.nFatJet))
    pt = ak.to_numpy(ak.flatten(arrays.FatJet_ptPred))
    sig = ak.to_numpy(ak.flatten(arrays.FatJet_sigmaTot))
    mean = lambda a: float(np.mean(a)) if len(a) else float("nan")  # noqa: E731
    lines = [f"{path}: topcal friend tree '{trees[0]}', {tree.num_entries} events, {n_jets} fat jets",
             f"  mean pT,pred {mean(pt):.1f} GeV, mean sigma_tot {mean(sig):.1f} GeV",
             f"  model: {model}"]
    if posterior:
        lines.append(f"  posterior: samples={posterior['samples']} seed={posterior['seed']}")
        prior = posterior.get("prior")
        lines.append(f"  prior: {prior['source']} ({len(prior['values'])} bins, {prior['edges'][0]:g}.."
                     f"{prior['edges'][-1]:g} GeV)" if prior else "  prior: none (the flat training prior: "
                     "the outputs are the likelihood of pT,t over the training window)")
    lines += _variation_lines(branches, posterior.get("stat_variations"))
    return "\n".join(lines)


def _variation_lines(branches: list[str], stat: dict | None) -> list[str]:
    """The variations a friend tree holds: branches, unit and correlation across jets."""
    out = ["  variations (GeV; correlation across jets):"]
    stat_branches = [b for b in branches if b.startswith("FatJet_ptPred_stat")]
    if stat_branches:
        kept = f", {100 * stat['variance_kept']:.1f}% of the variance" if stat else ""
        out.append(f"    {stat_branches[0]}..{stat_branches[-1]}: {len(stat_branches)} statistical "
                   f"eigen-variations (symmetric shifts of ptPred{kept}): each fully correlated")
    for name, what in (("FatJet_sigmaStoch", "sigma_stoch: per jet, uncorrelated"),
                       ("FatJet_sigmaPred", "sigma_pred: fully correlated (the stat variations carry it)"),
                       ("FatJet_sigmaCal", "sigma_cal: per jet, uncorrelated")):
        if name in branches:
            out.append(f"    {name}: {what}")
    detector = detector_variations(branches)
    out += [line.replace("  detector", "    detector", 1) for line in detector]
    detector_branches = {f"FatJet_{q}_{s}Up" for q in ("ptPred", "pt") for s in detector_sources(branches)}
    updown = sorted(b for b in branches if b.endswith("Up") and b[:-2] + "Down" in branches
                    and b not in detector_branches)
    out += [f"    {b[:-2]}Up/Down: fully correlated within the source" for b in updown]
    return out
