"""Fat jets: anti-kT clustering of DELPHES energy-flow objects with the scikit-hep fastjet bindings.

Inputs are EFlowTrack (electrons and muons removed, as DELPHES's EFlowFilter does), EFlowPhoton and
EFlowNeutralHadron, or calorimeter Towers. Objects with PT <= 0 or non-finite values are dropped first:
real DELPHES files carry PT = 0 entries with Eta = 999.9, and fastjet crashes on NaN. Energies in GeV.

Every input keeps what the detector says it is (:data:`CONSTITUENT_INFO`): ``origin`` (:data:`ORIGINS`, a
small integer code, 0 only for padding), ``charge`` (in e, from the track; 0 for calorimeter objects) and
``lepton`` (11 for a track the detector identifies as an electron, 13 for a muon, from the track's ``PID``
as DELPHES reports it; 0 otherwise: the hadron species is never kept). The constituents of the clustered
jets carry these fields, taken from the inputs by fastjet's constituent indices.

Grooming (:func:`groomed`, ``ProcessConfig.groom``) removes soft, wide-angle constituents (initial-state
radiation, the underlying event) from what the network sees: the fat jet itself (its axis, pT,j, mass and
truth match) stays the anti-kT jet of all its constituents.
"""

from __future__ import annotations

import awkward as ak
import fastjet
import numpy as np
import vector

from topcal.config import GROOMERS
from topcal.console import fastjet_banner_once

vector.register_awkward()

LEPTON_PIDS = (11, 13)
ORIGINS = {"EFlowTrack": 1, "EFlowPhoton": 2, "EFlowNeutralHadron": 3, "Tower": 4}  # 0: padding
CONSTITUENT_INFO = ("origin", "charge", "lepton")


def _momenta(pt, eta, phi, energy, info: dict) -> ak.Array:
    """Cartesian four-vectors (GeV) from pt, eta, phi and energy, float64 for fastjet, with the
    :data:`CONSTITUENT_INFO` fields (int8)."""
    cols = {
        "px": pt * np.cos(phi),
        "py": pt * np.sin(phi),
        "pz": pt * np.sinh(eta),
        "E": energy,
    }
    cols = {k: ak.values_astype(v, np.float64) for k, v in cols.items()}
    cols.update({k: ak.values_astype(info[k], np.int8) for k in CONSTITUENT_INFO})
    return ak.zip(cols, with_name="Momentum4D")


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
        is_lepton = (apid == LEPTON_PIDS[0]) | (apid == LEPTON_PIDS[1])
        if not leptons:
            ok = ok & ~is_lepton
        info = {"charge": c.Charge, "lepton": ak.where(is_lepton, apid, 0)}
    else:
        pt, eta, phi = c.ET, c.Eta, c.Phi
        energy = pt * np.cosh(eta)
        ok = _valid(pt, eta, phi, energy)
        info = {"charge": ak.zeros_like(pt, dtype=np.int8), "lepton": ak.zeros_like(pt, dtype=np.int8)}
    info["origin"] = ak.full_like(pt, ORIGINS[name], dtype=np.int8)
    return _momenta(pt[ok], eta[ok], phi[ok], energy[ok], {k: v[ok] for k, v in info.items()})


def cluster(inputs: ak.Array, radius: float = 1.2, min_pt_gev: float = 0.0,
            block_events: int = 1000) -> tuple[ak.Array, ak.Array]:
    """Anti-kT jets sorted by pT descending (fastjet's helper sorts ascending), and their constituents.

    Returns ``(jets, constituents)``: jets ``n_events * var * Momentum4D``, constituents
    ``n_events * var(jets) * var * Momentum4D`` in the jets' order, the input records themselves (with every
    field of ``inputs``, picked by fastjet's constituent indices); within a jet the constituents are in
    fastjet's order (:func:`padded_constituents` orders them by pT, for the selected jets only).

    Events are clustered ``block_events`` at a time: fastjet keeps every event's cluster history until the
    sequence is dropped, about 40 kB per event, so blocks bound the memory whatever the chunk size. Each
    block is packed first (fastjet 3.5.2 reads the particle buffers of non-contiguous lists wrongly,
    scikit-hep/fastjet#400).
    """
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    plain = ak.zip({k: inputs[k] for k in ("px", "py", "pz", "E")})
    jets, index = [], []
    for start in range(0, max(len(plain), 1), block_events):  # an empty chunk still gives typed output
        with fastjet_banner_once():
            sequence = fastjet.ClusterSequence(ak.to_packed(plain[start:start + block_events]), definition)
            jets.append(sequence.inclusive_jets(min_pt=min_pt_gev))
        index.append(sequence.constituent_index(min_pt=min_pt_gev))
        del sequence
    jets = ak.with_name(ak.concatenate(jets), "Momentum4D")
    constituents = _gather(inputs, ak.concatenate(index))
    order = ak.argsort(jets.rho, axis=1, ascending=False)
    return jets[order], constituents[order]


def groomed(constituents: ak.Array, jet_pt: np.ndarray, method: str = "none", radius: float = 0.2,
            pt_fraction: float = 0.05) -> ak.Array:
    """The constituents (``n_jets * var`` records, every field kept) that survive grooming ``method``
    (:data:`GROOMERS`): ``"none"`` keeps them all; ``"trimming"`` reclusters each jet's constituents into
    kT subjets of radius ``radius`` and keeps the constituents of the subjets with pT above ``pt_fraction``
    times the fat jet's ``jet_pt`` (GeV; ATLAS's large-R jets: 0.2 and 5%). Jets are reclustered all at once
    with fastjet (each jet one "event"); the survivors are picked by fastjet's constituent indices."""
    if method == "none":
        return constituents
    if method != "trimming":
        raise ValueError(f"groom: {method!r} is not one of {GROOMERS}")
    plain = ak.to_packed(ak.zip({k: ak.values_astype(constituents[k], np.float64) for k in ("px", "py", "pz", "E")}))
    with fastjet_banner_once():
        sequence = fastjet.ClusterSequence(plain, fastjet.JetDefinition(fastjet.kt_algorithm, radius))
        subjets = sequence.inclusive_jets()
        index = sequence.constituent_index()
    sub_pt = np.hypot(subjets.px, subjets.py)
    keep = sub_pt > pt_fraction * ak.Array(np.asarray(jet_pt, dtype=np.float64))
    return ak.with_name(ak.flatten(_gather(constituents, index[keep]), axis=2), "Momentum4D")


def _gather(inputs: ak.Array, index: ak.Array) -> ak.Array:
    """``inputs[event][index[event][jet]]`` for every event and jet: ``n_events * var(jets) * var``."""
    offsets = np.cumsum(ak.to_numpy(ak.num(inputs, axis=1))) - ak.to_numpy(ak.num(inputs, axis=1))
    per_jet = ak.num(index, axis=2)
    flat = ak.to_numpy(ak.flatten(index, axis=None)).astype(np.int64)
    event_of = np.repeat(np.arange(len(offsets)), ak.to_numpy(ak.sum(per_jet, axis=1)))
    taken = ak.flatten(inputs)[flat + offsets[event_of]]
    taken = ak.unflatten(taken, ak.flatten(per_jet))
    return ak.with_name(ak.unflatten(taken, ak.num(index, axis=1)), "Momentum4D")


def padded_constituents(constituents: ak.Array, n_max: int, scale_gev: float = 1000.0) -> np.ndarray:
    """(n_jets, n_max, 4) array of (E, px, py, pz) / ``scale_gev`` of the ``n_max`` highest-pT constituents,
    pT-ordered and zero-padded. ``constituents`` is ``n_jets * var * Momentum4D``."""
    return padded_jets(constituents, n_max, scale_gev)[0]


def padded_jets(constituents: ak.Array, n_max: int, scale_gev: float = 1000.0) \
        -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`padded_constituents` and, in the same order, the constituents' :data:`CONSTITUENT_INFO` as
    ``(n_jets, n_max)`` int8 arrays, zero-padded (``{}`` for constituents without these fields)."""
    constituents = constituents[ak.argsort(constituents.rho, axis=1, ascending=False)]
    counts = ak.to_numpy(ak.num(constituents, axis=1))
    rank = ak.to_numpy(ak.flatten(ak.local_index(constituents, axis=1)))
    jet = np.repeat(np.arange(len(counts)), counts)
    inside = rank < n_max
    slots = (jet[inside], rank[inside])
    out = np.zeros((len(counts), n_max, 4), dtype=np.float32)
    for k, name in enumerate(("E", "px", "py", "pz")):
        values = ak.to_numpy(ak.flatten(constituents[name]))
        out[slots + (k,)] = values[inside] / scale_gev
    info = {}
    for name in CONSTITUENT_INFO:
        if name in ak.fields(constituents):
            info[name] = np.zeros((len(counts), n_max), dtype=np.int8)
            info[name][slots] = ak.to_numpy(ak.flatten(constituents[name]))[inside]
    return out, info
