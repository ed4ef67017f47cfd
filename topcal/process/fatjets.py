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


def _valid(p4: ak.Array) -> ak.Array:
    finite = np.isfinite(p4.px) & np.isfinite(p4.py) & np.isfinite(p4.pz) & np.isfinite(p4.E)
    return p4[finite & (p4.rho > 0) & (p4.E > 0)]


def eflow_inputs(events, use_towers: bool = False) -> ak.Array:
    """Per-event list of clustering inputs (Momentum4D records, GeV), filtered for PT > 0 and finite values."""
    if use_towers:
        t = events.Tower
        return _valid(_momenta(t.ET, t.Eta, t.Phi, t.ET * np.cosh(t.Eta)))
    trk = events.EFlowTrack
    trk = trk[(abs(trk.PID) != LEPTON_PIDS[0]) & (abs(trk.PID) != LEPTON_PIDS[1]) & (trk.PT > 0)]
    track_e = np.sqrt((trk.PT * np.cosh(trk.Eta)) ** 2 + trk.mass**2)
    parts = [_momenta(trk.PT, trk.Eta, trk.Phi, track_e)]
    for name in ("EFlowPhoton", "EFlowNeutralHadron"):
        c = events[name]
        c = c[c.ET > 0]
        parts.append(_momenta(c.ET, c.Eta, c.Phi, c.ET * np.cosh(c.Eta)))
    return _valid(ak.concatenate(parts, axis=1))


def cluster(inputs: ak.Array, radius: float = 1.2, min_pt_gev: float = 0.0) -> tuple[ak.Array, ak.Array]:
    """Anti-kT jets and their constituents, both sorted by pT descending (fastjet's helper sorts ascending).

    Returns ``(jets, constituents)``: jets ``n_events * var * Momentum4D``, constituents
    ``n_events * var(jets) * var * Momentum4D`` with each jet's constituents ordered by pT descending.
    """
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    plain = ak.zip({k: inputs[k] for k in ("px", "py", "pz", "E")})
    sequence = fastjet.ClusterSequence(plain, definition)
    jets = sequence.inclusive_jets(min_pt=min_pt_gev)
    constituents = sequence.constituents(min_pt=min_pt_gev)
    jets = ak.with_name(jets, "Momentum4D")
    constituents = ak.with_name(constituents, "Momentum4D")
    order = ak.argsort(jets.rho, axis=1, ascending=False)
    jets, constituents = jets[order], constituents[order]
    corder = ak.argsort(constituents.rho, axis=2, ascending=False)
    return jets, constituents[corder]


def padded_constituents(constituents: ak.Array, n_max: int, scale_gev: float = 1000.0) -> np.ndarray:
    """(n_jets, n_max, 4) array of (E, px, py, pz) / ``scale_gev`` of the leading ``n_max`` constituents,
    zero-padded. ``constituents`` is ``n_jets * var * Momentum4D``, already pT-ordered."""
    fields = [constituents.E, constituents.px, constituents.py, constituents.pz]
    out = np.stack(
        [ak.to_numpy(ak.fill_none(ak.pad_none(f, n_max, axis=1, clip=True), 0.0)) for f in fields], axis=-1
    )
    return (out / scale_gev).astype(np.float32)
