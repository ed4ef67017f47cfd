"""Fat jets: anti-kT clustering of DELPHES energy-flow objects with the scikit-hep fastjet bindings.

Inputs are EFlowTrack (electrons and muons removed, as DELPHES's EFlowFilter does), EFlowPhoton and
EFlowNeutralHadron, or calorimeter Towers. Objects with PT <= 0 or non-finite values are dropped first:
real DELPHES files carry PT = 0 entries with Eta = 999.9, and fastjet crashes on NaN. Energies in GeV.
"""

from __future__ import annotations

import awkward as ak
import fastjet
import numpy as np
import vector

from topcal.console import fastjet_banner_once

vector.register_awkward()

LEPTON_PIDS = (11, 13)


def _momenta(pt, eta, phi, energy) -> ak.Array:
    """Cartesian four-vectors (GeV) from pt, eta, phi and energy, float64 for fastjet."""
    cols = {
        "px": pt * np.cos(phi),
        "py": pt * np.sin(phi),
        "pz": pt * np.sinh(eta),
        "E": energy,
    }
    return ak.zip({k: ak.values_astype(v, np.float64) for k, v in cols.items()}, with_name="Momentum4D")


def _valid(pt, eta, phi, energy) -> ak.Array:
    """Mask of usable objects: pT > 0, E > 0 and finite eta, phi, E (DELPHES's PT = 0 entries have
    Eta = 999.9 and give NaN or infinite energies)."""
    return (pt > 0) & (energy > 0) & np.isfinite(eta) & np.isfinite(phi) & np.isfinite(energy) & (abs(eta) < 50)


def eflow_inputs(events, use_towers: bool = False, leptons: bool = False) -> ak.Array:
    """Per-event list of clustering inputs (Momentum4D records, GeV), filtered for PT > 0 and finite values.

    Electrons and muons among the tracks are dropped (DELPHES's EFlowFilter) unless ``leptons``.
    """
    if use_towers:
        names = ("Tower",)
    else:
        names = ("EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron")
    parts = []
    for name in names:
        with np.errstate(over="ignore", invalid="ignore"):  # Eta = 999.9 entries, dropped by _valid
            parts.append(_inputs_of(events[name], name, leptons))
    return parts[0] if len(parts) == 1 else ak.concatenate(parts, axis=1)


def _inputs_of(c: ak.Array, name: str, leptons: bool = False) -> ak.Array:
    """Usable objects of one collection as four-vectors; tracks without electrons and muons unless ``leptons``."""
    if name == "EFlowTrack":
        pt, eta, phi, apid = c.PT, c.Eta, c.Phi, abs(c.PID)
        energy = np.sqrt((pt * np.cosh(eta)) ** 2 + c.mass**2)
        ok = _valid(pt, eta, phi, energy)
        if not leptons:
            ok = ok & (apid != LEPTON_PIDS[0]) & (apid != LEPTON_PIDS[1])
    else:
        pt, eta, phi = c.ET, c.Eta, c.Phi
        energy = pt * np.cosh(eta)
        ok = _valid(pt, eta, phi, energy)
    return _momenta(pt[ok], eta[ok], phi[ok], energy[ok])


def cluster(inputs: ak.Array, radius: float = 1.2, min_pt_gev: float = 0.0,
            block_events: int = 1000) -> tuple[ak.Array, ak.Array]:
    """Anti-kT jets sorted by pT descending (fastjet's helper sorts ascending), and their constituents.

    Returns ``(jets, constituents)``: jets ``n_events * var * Momentum4D``, constituents
    ``n_events * var(jets) * var * Momentum4D`` in the jets' order; within a jet the constituents are in
    fastjet's order (:func:`padded_constituents` orders them by pT, for the selected jets only).

    Events are clustered ``block_events`` at a time: fastjet keeps every event's cluster history until the
    sequence is dropped, about 40 kB per event, so blocks bound the memory whatever the chunk size. Each
    block is packed first (fastjet 3.5.2 reads the particle buffers of non-contiguous lists wrongly,
    scikit-hep/fastjet#400).
    """
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    plain = ak.zip({k: inputs[k] for k in ("px", "py", "pz", "E")})
    jets, constituents = [], []
    for start in range(0, max(len(plain), 1), block_events):  # an empty chunk still gives typed output
        with fastjet_banner_once():
            sequence = fastjet.ClusterSequence(ak.to_packed(plain[start:start + block_events]), definition)
            jets.append(sequence.inclusive_jets(min_pt=min_pt_gev))
        constituents.append(sequence.constituents(min_pt=min_pt_gev))
        del sequence
    jets = ak.with_name(ak.concatenate(jets), "Momentum4D")
    constituents = ak.with_name(ak.concatenate(constituents), "Momentum4D")
    order = ak.argsort(jets.rho, axis=1, ascending=False)
    return jets[order], constituents[order]


def padded_constituents(constituents: ak.Array, n_max: int, scale_gev: float = 1000.0) -> np.ndarray:
    """(n_jets, n_max, 4) array of (E, px, py, pz) / ``scale_gev`` of the ``n_max`` highest-pT constituents,
    pT-ordered and zero-padded. ``constituents`` is ``n_jets * var * Momentum4D``."""
    constituents = constituents[ak.argsort(constituents.rho, axis=1, ascending=False)]
    counts = ak.to_numpy(ak.num(constituents, axis=1))
    rank = ak.to_numpy(ak.flatten(ak.local_index(constituents, axis=1)))
    jet = np.repeat(np.arange(len(counts)), counts)
    inside = rank < n_max
    out = np.zeros((len(counts), n_max, 4), dtype=np.float32)
    for k, name in enumerate(("E", "px", "py", "pz")):
        values = ak.to_numpy(ak.flatten(constituents[name]))
        out[jet[inside], rank[inside], k] = values[inside] / scale_gev
    return out
