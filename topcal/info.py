"""``topcal info``: a few lines on any topcal input or output.

* a DELPHES file (topcal's or DELPHES's own): events, collections, provenance; ``check`` reads and
  decompresses every basket, which finds damaged data inside an intact file;
* a per-jet dataset (``topcal process``): jets, configuration, cut flow;
* a model directory (``topcal train``): network, inputs, target, training size, training curve, calibration;
* a friend file (``topcal predict``): events, fat jets, mean pT,pred and sigma_tot, the model that made it.
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
            return _model(path)
        if (path / "dataset.json").is_file():
            return _dataset(path)
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


def _dataset(path: Path) -> str:
    from topcal.io.dataset import open_dataset

    ds = open_dataset(path)
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

    meta = read_meta(path)
    cfg, pre, tr = meta["config"], meta["preprocessing"], meta["training"]
    arch = (f"deep set phi {cfg['phi_hidden']} + head {cfg['hidden']}" if cfg["architecture"] == "deepset"
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
        lines.append(f"  validation jets: 68% coverage {cal['coverage68_raw']:.3f}, 95% coverage "
                     f"{cal['coverage95_raw']:.3f}, width factor {cal['width_factor']:.3f}")
    v = meta["validity"]
    lines.append(f"  valid for: pT,j {v['jet_pt_min_gev']:g}..{v['jet_pt_max_gev']:g} GeV, "
                 f"|eta| < {v['jet_eta_max']}")
    lines.append(f"  made by: {meta.get('command')}")
    return "\n".join(lines)


def _friend(path: Path) -> str:
    with uproot.open(path) as file:
        trees = [k.split(";")[0] for k, c in file.classnames().items() if c == "TTree"]
        if not trees:
            raise InputFileError(f"{path}: no tree")
        tree = file[trees[0]]
        arrays = tree.arrays(["nFatJet", "FatJet_ptPred", "FatJet_sigmaTot"], library="ak")
        model = str(file["topcal_model_path"]) if "topcal_model_path" in file else "unknown"
    import awkward as ak

    n_jets = int(ak.sum(arrays.nFatJet))
    pt = ak.to_numpy(ak.flatten(arrays.FatJet_ptPred))
    sig = ak.to_numpy(ak.flatten(arrays.FatJet_sigmaTot))
    mean = lambda a: float(np.mean(a)) if len(a) else float("nan")  # noqa: E731
    return "\n".join([f"{path}: topcal friend tree '{trees[0]}', {tree.num_entries} events, {n_jets} fat jets",
                      f"  mean pT,pred {mean(pt):.1f} GeV, mean sigma_tot {mean(sig):.1f} GeV",
                      f"  model: {model}"])
