"""Detector systematic variations per fat jet: ptPred and pT,j with one constituent origin's scale moved.

Each source scales the four-momenta of the constituents of one origin (what the detector says a
constituent is, :data:`topcal.process.fatjets.ORIGINS`) by ``1 + size`` (``Up``) or ``1 - size``
(``Down``), with the jet's membership fixed:

=============================  ====================  ==============
source                         constituents scaled   default size
=============================  ====================  ==============
``trackPtScale``               EFlowTrack            0.01 (1%)
``photonEnergyScale``          EFlowPhoton           0.01 (1%)
``neutralHadronEnergyScale``   EFlowNeutralHadron    0.05 (5%)
=============================  ====================  ==============

The sizes are one standard deviation of each scale, and can be changed (``topcal predict --systematic
NAME=SIZE``, ``Calibrator(systematics={NAME: SIZE})``). A variation is fully correlated across jets within
a source (one scale for the whole detector) and independent between sources. They match the samples
``topcal generate`` makes with a shifted ``[detector.energy_flow]`` scale (``track_pt_scale``,
``photon_energy_scale``, ``neutral_hadron_energy_scale``).

Per jet and source (GeV): ``pt_<source>Up``/``Down``, the fat jet's pT with all its constituents of that
origin scaled (the jet four-vector plus ``size`` times their sum); ``ptPred_<source>Up``/``Down``, the
nominal ``ptPred`` plus the change of the network's predictive mean when the shifted jet replaces the
nominal one. The change is evaluated with the same fixed posterior as the nominal prediction: ``draws``
weight draws of the model, drawn from the nominal prediction's seed, for the nominal jets and every
shifted copy together, so the draws' spread cancels in the difference (the paired mean of the change
with ``draws`` draws; with ``draws`` equal to the nominal samples T it is exactly the full evaluation).
The membership is fixed down to what the network reads: the shifted copy is encoded with the
constituents the network read of the nominal jet (its leading ``n_constituents``), re-ordered by pT among
themselves, and with the nominal jet's three exclusive-kT subjets, each now the sum of its rescaled
members (no second clustering: a reclustered subjet sequence under a rescaling of a few per cent is a
second-order effect, measured in ``docs/systematics_detector.md``); the nominal jets are encoded once, for
the prediction and the variations. A jet with more constituents than the model stores keeps the same
stored ones.

Scaling the whole four-momentum of a track scales its pT exactly and its energy up to the mass term
(m^2 / p^2, below 2e-2 for a pion of 1 GeV, the lowest track pT that matters in a 400 GeV jet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import awkward as ak
import numpy as np

from topcal.errors import InputFileError
from topcal.process.fatjets import ORIGINS
from topcal.train.inputs import Jets

SOURCES = {"trackPtScale": ORIGINS["EFlowTrack"], "photonEnergyScale": ORIGINS["EFlowPhoton"],
           "neutralHadronEnergyScale": ORIGINS["EFlowNeutralHadron"]}
DEFAULT_SIZES = {"trackPtScale": 0.01, "photonEnergyScale": 0.01, "neutralHadronEnergyScale": 0.05}
DIRECTIONS = {"Up": 1.0, "Down": -1.0}
DEFAULT_DRAWS = 5  # weight draws for the shift of the predictive mean (benchmarks/bench_detector_systematics.py)


def resolve_sizes(systematics: Mapping[str, float] | bool | None = None) -> dict[str, float]:
    """The sources and their one-sigma sizes: the defaults (``None`` or ``True``), none (``False`` or an
    empty mapping), or the defaults with the given sources' sizes changed (a mapping ``{name: size}``)."""
    if systematics is None or systematics is True:
        return dict(DEFAULT_SIZES)
    if systematics is False or len(systematics) == 0:
        return {}
    sizes = dict(DEFAULT_SIZES)
    for name, size in systematics.items():
        if name not in SOURCES:
            raise InputFileError(f"systematic: {name!r} is not a detector source ({', '.join(SOURCES)})")
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0.0 < size < 1.0:
            raise InputFileError(f"systematic {name}: size {size!r} must be a fraction between 0 and 1 "
                                 "(0.01 for 1%)")
        sizes[name] = float(size)
    return sizes


def parse_systematics(specs: Iterable[str]) -> dict[str, float]:
    """``["trackPtScale=0.02", ...]`` (the ``--systematic`` option) -> ``{"trackPtScale": 0.02}``."""
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            size = float(value)
        except ValueError:
            size = None
        if not sep or size is None:
            raise InputFileError(f"--systematic: {spec!r} must be NAME=SIZE, e.g. trackPtScale=0.01")
        out[name.strip()] = size
    resolve_sizes(out)  # names and sizes checked here, with the option's message
    return out


def field_names(sizes: Mapping[str, float]) -> tuple[str, ...]:
    """The per-jet fields the variations add (``ptPred_<source>Up``, ..., ``pt_<source>Down``)."""
    return tuple(f"{q}_{name}{d}" for name in sizes for q in ("ptPred", "pt") for d in DIRECTIONS)


def origin_sums(constituents: ak.Array) -> dict[int, np.ndarray]:
    """Per jet, the summed (E, px, py, pz) in GeV of all its constituents of each source's origin:
    ``{origin code: (n_jets, 4)}``; ``constituents`` is ``n_jets * var`` with an ``origin`` field."""
    out = {}
    for code in set(SOURCES.values()):
        mine = constituents[constituents.origin == code]
        out[code] = np.stack([ak.to_numpy(ak.sum(mine[k], axis=1)) for k in ("E", "px", "py", "pz")], axis=1)
    return out


def shifted_jets(jets: Jets, code: int, factor: float, sums: np.ndarray | None = None, keep: int | None = None) \
        -> Jets:
    """``jets`` with the constituents of origin ``code`` scaled by ``factor`` (membership fixed): the stored
    constituents re-ordered by pT, the jet's four-vector moved by ``(factor - 1)`` times ``sums`` (the
    origin's summed (E, px, py, pz) in GeV over all the jet's constituents; the stored ones when None).
    ``keep``: the leading ``keep`` stored constituents (those a network reads) stay the leading ``keep``,
    re-ordered among themselves. The subjet members (``jets.subjets``) follow their constituents."""
    if jets.origin is None:
        raise InputFileError("detector systematics: the jets carry no constituent origin")
    mine = jets.origin == code
    scale = np.where(mine, np.float32(factor), np.float32(1.0))
    c = jets.constituents * scale[..., None]
    if sums is None:
        sums = (jets.constituents.astype(np.float64) * mine[..., None]).sum(axis=1) * jets.input_scale_gev
    pt, eta, phi = jets.pt, jets.eta, jets.phi
    p4 = np.stack([np.sqrt((pt * np.cosh(eta)) ** 2 + jets.mass**2), pt * np.cos(phi), pt * np.sin(phi),
                   pt * np.sinh(eta)], axis=1) + (factor - 1.0) * sums
    e, px, py, pz = p4.T
    new_pt = np.hypot(px, py)
    pt_order = -np.hypot(c[..., 1], c[..., 2])
    if keep is None or keep >= jets.n_max:
        order = np.argsort(pt_order, axis=1, kind="stable")
    else:  # stable: by the set (the leading keep first), then by pT
        order = np.lexsort((pt_order, np.broadcast_to(np.arange(jets.n_max) >= keep, pt_order.shape)), axis=1)
    rows = np.arange(len(jets))[:, None]
    info = jets._info(lambda v: v[rows, order])
    return Jets(c[rows, order], new_pt, np.arcsinh(pz / new_pt), np.arctan2(py, px),
                np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0)), jets.n_constituents, jets.input_scale_gev,
                **info)


def predictive_mean(model, jets: Jets, samples: int, seed: int, arrays: dict | None = None) -> np.ndarray:
    """The network's predictive mean (GeV) of each jet from ``samples`` weight draws of ``seed``; ``arrays``:
    the jets' input arrays when already encoded."""
    from topcal.train.likelihood import draw_moments

    w, mu, sigma = model.sample(jets, samples, seed, arrays=arrays)
    return draw_moments(w, mu, sigma, model.moments_window)[0].mean(axis=0)


def concatenate(jets: list[Jets]) -> Jets:
    """Several jet sets as one (for one network evaluation)."""
    def cat(name):
        return None if getattr(jets[0], name) is None else np.concatenate([getattr(j, name) for j in jets])

    return Jets(*(cat(k) for k in ("constituents", "pt", "eta", "phi", "mass", "n_constituents")),
                jets[0].input_scale_gev, **{k: cat(k) for k in ("origin", "charge", "lepton", "subjets")})


def variations(model, jets: Jets, pt_pred: np.ndarray, sizes: Mapping[str, float], seed: int,
               draws: int = DEFAULT_DRAWS, sums: Mapping[int, np.ndarray] | None = None,
               encoded: Mapping[str, np.ndarray] | None = None, recluster: bool = False) -> dict[str, np.ndarray]:
    """The per-jet fields of :func:`field_names` (GeV) for the sources in ``sizes`` (module docstring).

    ``pt_pred``: the nominal predictive mean; ``seed``: the nominal prediction's sampling seed; ``draws``:
    weight draws for the shift; ``sums``: :func:`origin_sums` of all constituents (the stored ones when None);
    ``encoded``: the nominal jets' input arrays with their subjet members (``model.encode(jets,
    keep_subjets=True)``), when already encoded. The shifted copies are encoded with the nominal jets'
    exclusive-kT subjet members and the constituents the network reads (module docstring); with ``recluster``
    their subjets are clustered again and their leading constituents chosen again by the shifted pT.
    """
    if not sizes:
        return {}
    n = len(jets)
    if not n:
        return {name: np.zeros(0) for name in field_names(sizes)}
    nominal = dict(encoded) if encoded is not None else model.encode(jets, keep_subjets=not recluster)
    members = nominal.pop("subjets", None)  # None for inputs without subjets (the paper's lab 4-vectors)
    if members is not None and not recluster:
        fixed = np.full(jets.constituents.shape[:2], -1, np.int8)
        fixed[:, :members.shape[1]] = members
        jets = replace(jets, subjets=fixed)
    keep = None if recluster else model.config.n_constituents
    shifted = {}
    for name, size in sizes.items():
        code = SOURCES[name]
        for direction, sign in DIRECTIONS.items():
            shifted[name + direction] = shifted_jets(jets, code, 1.0 + sign * size,
                                                     None if sums is None else sums[code], keep)
    base = predictive_mean(model, jets, draws, seed, nominal)
    means = predictive_mean(model, concatenate(list(shifted.values())), draws, seed)
    out = {}
    for k, (key, sj) in enumerate(shifted.items()):
        out[f"ptPred_{key}"] = pt_pred + (means[k * n:(k + 1) * n] - base)
        out[f"pt_{key}"] = sj.pt
    return {name: out[name] for name in field_names(sizes)}
