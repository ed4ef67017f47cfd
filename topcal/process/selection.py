"""Jet selection and the flat per-jet table (one row per selected jet) that the dataset stores.

Columns (momenta in GeV, angles in radians):

* ``pt``, ``eta``, ``phi``, ``mass``: the fat jet; ``n_constituents``: its constituent count (all of them);
* ``constituents``: ``(max_constituents, 4)`` float32, (E, px, py, pz) / input scale, pT-ordered, zero-padded,
  after grooming (``ProcessConfig.groom``: the other columns describe the whole jet);
* ``constituent_origin``, ``constituent_charge``, ``constituent_lepton``: ``(max_constituents,)`` int8 in the
  same order and padding (:data:`topcal.process.fatjets.ORIGINS` codes, charge in e, 11/13 for an identified
  electron/muon track, 0 otherwise);
* ``pt_truth``: pT,t(truth), the label (``ProcessConfig.top_label``); ``top_*`` (last copy), ``hard_top_*``
  (first copy), ``prefsr_top_*`` (after the ISR recoil, before its own FSR), ``b_*``, ``w_*``
  (pt, eta, phi, mass): truth four-vectors;
* ``file``, ``entry``, ``jet_index``: where the jet came from (tree entry, index among the file's jets
  above ``cluster_pt_min_gev`` by falling pT); ``weight``: the event weight.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from topcal.config import ProcessConfig
from topcal.process.fatjets import groomed, padded_jets
from topcal.process.truth import label_object

TRUTH_OBJECTS = ("top", "hard_top", "prefsr_top", "b", "w")
KINEMATICS = ("pt", "eta", "phi", "mass")


def jet_acceptance(jets: ak.Array, cfg: ProcessConfig) -> tuple[ak.Array, ak.Array]:
    """Jagged masks ``(central, in_window)``: |eta| < eta_max, and in addition pT,j in [pt_min, pt_max)."""
    central = abs(jets.eta) < cfg.jet_eta_max
    window = central & (jets.rho >= cfg.jet_pt_min_gev) & (jets.rho < cfg.jet_pt_max_gev)
    return central, window


def jet_table(
    jets: ak.Array,
    constituents: ak.Array,
    selected: ak.Array,
    entry: np.ndarray,
    event_weight: np.ndarray,
    cfg: ProcessConfig,
    tops: ak.Array | None = None,
    top_index: ak.Array | None = None,
) -> dict[str, np.ndarray]:
    """Flat numpy columns of the ``selected`` jets (jagged mask), with bookkeeping and optional truth."""
    jet_index = ak.local_index(jets, axis=1)[selected]
    counts = ak.to_numpy(ak.num(jet_index, axis=1))
    sel = jets[selected]
    cons = constituents[selected]
    out = {
        "pt": sel.rho,
        "eta": sel.eta,
        "phi": sel.phi,
        "mass": sel.tau,
        "n_constituents": ak.num(cons, axis=2),
        "jet_index": jet_index,
    }
    out = {k: ak.to_numpy(ak.flatten(v)) for k, v in out.items()}
    out["n_constituents"] = out["n_constituents"].astype(np.int32)
    out["jet_index"] = out["jet_index"].astype(np.int32)
    out["entry"] = np.repeat(np.asarray(entry, dtype=np.int64), counts)
    out["weight"] = np.repeat(np.asarray(event_weight, dtype=np.float64), counts)
    network_cons = groomed(ak.flatten(cons, axis=1), out["pt"], cfg.groom, cfg.trim_radius, cfg.trim_pt_fraction)
    out["constituents"], info = padded_jets(network_cons, cfg.max_constituents, cfg.input_scale_gev)
    out.update({f"constituent_{name}": values for name, values in info.items()})
    if tops is not None:
        # jets without a top (``truth_match = False``) take the event's first top, or None, then NaN
        index = top_index[selected]
        matched = ak.to_numpy(ak.flatten(index >= 0))
        matched_top = ak.flatten(ak.pad_none(tops, 1, axis=1)[ak.where(index >= 0, index, 0)])
        for obj in TRUTH_OBJECTS:
            p4 = matched_top[obj]
            for kin in KINEMATICS:
                values = ak.to_numpy(ak.fill_none(getattr(p4, kin), np.nan)).astype(np.float64)
                out[f"{obj}_{kin}"] = np.where(matched, values, np.nan)
        out["pt_truth"] = out[f"{label_object(cfg.top_label)}_pt"]
    return out


def subset(table: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of a per-jet table where ``mask`` is true."""
    return {k: v[mask] for k, v in table.items()}
