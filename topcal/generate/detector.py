"""Parametric detector simulation after the DELPHES 3 ATLAS card (numbers in :mod:`topcal.config`).

Everything works on flat numpy arrays holding all final-state particles of a chunk of events (``event``
says which event a particle belongs to), so a chunk of thousands of events is a handful of vectorised
operations, with no per-particle Python loop.

Chain, as in DELPHES:

1. :func:`propagate` -- charged particles follow a helix in the solenoid field up to the calorimeter
   cylinder (radius, half-length); neutral ones fly straight. Particles that never reach it deposit nothing.
2. :func:`reconstruct_tracks` -- tracking efficiency (by species, |eta|, pt) and log-normal pt smearing.
3. :func:`calorimeter` -- energy fractions into ECAL and HCAL towers (eta x phi grids), log-normal energy
   smearing with the tower's resolution, thresholds (energy and significance), tower centres smeared
   uniformly inside the tower, and the energy-flow neutral remainder (tower energy minus the energy of
   the tracks that hit it) as EFlowPhoton (ECAL) or EFlowNeutralHadron (HCAL).
4. The energy-flow scales (``[detector.energy_flow]``, 1.0 by default) for systematic samples: EFlowTrack
   is Track with PT, P and ErrorPT multiplied by ``track_pt_scale`` (exactly, before the float32 storage);
   the neutral remainder is multiplied by ``photon_energy_scale`` (ECAL) or ``neutral_hadron_energy_scale``
   (HCAL) before the energy-flow thresholds. The random numbers drawn are the same whatever the scales, so
   the same seed gives the same events, Tracks and Towers, with only the energy-flow outputs changed
   (the scales describe the energy-flow calibration, not the calorimeter's measurement).

Units: GeV, metres for the solenoid, millimetres for the written positions, radians.
Not written: ``Tower.Edges[4]`` (uproot 5.7 writes jagged fixed-size arrays that it cannot read back).
Known simplification against DELPHES: when the neutral remainder of a tower is not significant, DELPHES
rescales the tracks of that tower towards the calorimeter measurement; topcal keeps the tracks as measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from topcal.config import CalorimeterConfig, DetectorConfig, EfficiencyTable, SolenoidConfig, TrackResolution

C_LIGHT_GEV_PER_TESLA_METRE = 0.299792458  # pt [GeV] = 0.2998 * B [T] * r [m] * |q|


@dataclass
class Particles:
    """Flat arrays of final-state particles of a chunk, sorted by ``event``.

    ``gen_index`` is the particle's index in the event's ``Particle`` collection (0-based), ``pid`` the
    PDG id, ``charge`` in units of e, four-momentum in GeV.
    """

    event: np.ndarray
    gen_index: np.ndarray
    pid: np.ndarray
    charge: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    mass: np.ndarray

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.py, self.px)

    @property
    def eta(self) -> np.ndarray:
        pt = self.pt
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(self.pz / pt)
        return np.where(pt > 0, eta, np.sign(self.pz) * 999.9)

    @classmethod
    def gun(cls, pid: int, energies_gev: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: float, charge: float):
        """One particle per event with the given energies (GeV), eta and phi: a particle gun."""
        energies_gev = np.asarray(energies_gev, dtype=np.float64)
        n = len(energies_gev)
        p = np.sqrt(np.maximum(energies_gev**2 - mass**2, 0.0))
        pt = p / np.cosh(eta)
        return cls(
            event=np.arange(n),
            gen_index=np.zeros(n, dtype=np.int32),
            pid=np.full(n, pid, dtype=np.int32),
            charge=np.full(n, charge, dtype=np.float64),
            px=pt * np.cos(phi),
            py=pt * np.sin(phi),
            pz=pt * np.sinh(eta),
            e=energies_gev,
            mass=np.full(n, mass),
        )


# ---------------------------------------------------------------------------------------------------
# 1. propagation in the solenoid
# ---------------------------------------------------------------------------------------------------


@dataclass
class Impact:
    """Where particles hit the calorimeter surface (``reached`` false: they never do)."""

    reached: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    z_mm: np.ndarray


def propagate(p: Particles, solenoid: SolenoidConfig) -> Impact:
    """Helix (charged) or straight line (neutral) from the origin to the calorimeter cylinder.

    A helix of transverse radius ``r = pt / (0.3 B |q|)`` reaches the barrel (radius R) after turning by
    ``alpha = 2 asin(R / 2r)`` if ``2r >= R`` and ``|z| <= L`` there; otherwise it reaches the endcap
    ``|z| = L`` after ``alpha = L pt / (|pz| r)``. The position angle at impact is ``phi - s alpha / 2``
    with ``s = sign(q B)``.
    """
    pt, eta, phi = p.pt, p.eta, p.phi
    R, L, B = solenoid.radius_m, solenoid.half_length_m, solenoid.bz_tesla
    charged = (p.charge != 0) & (B != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_helix = np.where(charged, pt / (C_LIGHT_GEV_PER_TESLA_METRE * abs(B) * np.abs(p.charge)), np.inf)
        pz_over_pt = p.pz / pt
        # barrel
        can_reach = 2 * r_helix >= R
        alpha_b = np.where(charged & can_reach, 2 * np.arcsin(np.clip(R / (2 * r_helix), 0, 1)), 0.0)
        z_b = np.where(charged, pz_over_pt * r_helix * alpha_b, R * pz_over_pt)
        barrel = can_reach & (np.abs(z_b) <= L)
        # endcap
        alpha_e = np.where(charged, L / (np.abs(pz_over_pt) * r_helix), 0.0)
        rho_e = np.where(charged, 2 * r_helix * np.abs(np.sin(alpha_e / 2)), L / np.abs(pz_over_pt))
    alpha = np.where(barrel, alpha_b, alpha_e)
    rho = np.where(barrel, R, rho_e)
    z = np.where(barrel, z_b, np.sign(p.pz) * L)
    reached = (pt > 0) & np.isfinite(rho) & np.isfinite(z) & (rho > 0) & (barrel | (p.pz != 0))
    bend = np.sign(p.charge * B) * alpha / 2
    phi_out = np.where(charged, _wrap(phi - bend), phi)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta_out = np.where(charged, np.arcsinh(z / rho), eta)
    eta_out = np.where(reached, eta_out, 999.9)
    phi_out = np.where(reached, phi_out, phi)
    return Impact(
        reached=reached,
        eta=eta_out,
        phi=phi_out,
        x_mm=np.where(reached, rho * np.cos(phi_out) * 1e3, 0.0),
        y_mm=np.where(reached, rho * np.sin(phi_out) * 1e3, 0.0),
        z_mm=np.where(reached, z * 1e3, 0.0),
    )


def _wrap(phi: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # NaN for particles that never reach the calorimeter
        return (phi + np.pi) % (2 * np.pi) - np.pi


# ---------------------------------------------------------------------------------------------------
# 2. tracking
# ---------------------------------------------------------------------------------------------------


def _bin(edges, values) -> tuple[np.ndarray, np.ndarray]:
    """Bin index for ``edges[i] < v <= edges[i+1]`` and whether v lies inside the edges."""
    edges = np.asarray(edges, dtype=np.float64)
    idx = np.searchsorted(edges, values, side="left") - 1
    inside = (idx >= 0) & (idx < len(edges) - 1)
    return np.clip(idx, 0, len(edges) - 2), inside


def table_efficiency(table: EfficiencyTable, abs_eta: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Efficiency from an |eta| x pt table; zero outside it."""
    ie, in_eta = _bin(table.abs_eta_edges, abs_eta)
    ip, in_pt = _bin(table.pt_edges, pt)
    values = np.asarray(table.values, dtype=np.float64)
    # |eta| = 0 belongs to the first bin
    in_eta |= abs_eta == table.abs_eta_edges[0]
    return np.where(in_eta & in_pt, values[ie, ip], 0.0)


def relative_pt_resolution(res: TrackResolution, abs_eta: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """sigma(pt)/pt = sqrt(a^2 + (b pt)^2) in the |eta| bin; zero outside the table."""
    ie, inside = _bin(res.abs_eta_edges, abs_eta)
    inside |= abs_eta == res.abs_eta_edges[0]
    a = np.asarray(res.constant)[ie]
    b = np.asarray(res.slope_per_gev)[ie]
    return np.where(inside, np.sqrt(a**2 + (b * pt) ** 2), 0.0)


def _species_lookup(pid: np.ndarray, hadron, electron, muon, fn, abs_eta, pt) -> np.ndarray:
    apid = np.abs(pid)
    out = fn(hadron, abs_eta, pt)
    for code, table in ((11, electron), (13, muon)):
        sel = apid == code
        if sel.any():
            out[sel] = fn(table, abs_eta[sel], pt[sel])
    return out


def lognormal(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Log-normal numbers with the given mean and standard deviation (as DELPHES smears); mean where sigma=0."""
    mean = np.asarray(mean, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    safe_mean = np.where(mean > 0, mean, 1.0)
    s2 = np.log1p((sigma / safe_mean) ** 2)
    mu = np.log(safe_mean) - 0.5 * s2
    draws = np.exp(mu + np.sqrt(s2) * rng.standard_normal(mean.shape))
    return np.where((mean > 0) & (sigma > 0), draws, np.maximum(mean, 0.0))


@dataclass
class Tracks:
    """Reconstructed tracks: indices into the particle arrays plus measured momentum (GeV)."""

    index: np.ndarray  # into the Particles arrays
    pt: np.ndarray
    sigma_pt_rel: np.ndarray
    e: np.ndarray


def reconstruct_tracks(p: Particles, det: DetectorConfig, rng: np.random.Generator) -> Tracks:
    """Apply tracking efficiency and log-normal pt smearing to the charged particles."""
    t = det.tracking
    charged = np.flatnonzero(p.charge != 0)
    pt, abs_eta = p.pt[charged], np.abs(p.eta[charged])
    pid = p.pid[charged]
    eff = _species_lookup(
        pid, t.hadron_efficiency, t.electron_efficiency, t.muon_efficiency, table_efficiency, abs_eta, pt
    )
    kept = rng.random(len(charged)) < eff
    charged, pt, abs_eta, pid = charged[kept], pt[kept], abs_eta[kept], pid[kept]
    res = _species_lookup(
        pid, t.hadron_resolution, t.electron_resolution, t.muon_resolution, relative_pt_resolution, abs_eta, pt
    )
    pt_meas = lognormal(rng, pt, res * pt)
    p_meas = pt_meas * np.cosh(abs_eta)
    e_meas = np.sqrt(p_meas**2 + p.mass[charged] ** 2)
    return Tracks(index=charged, pt=pt_meas, sigma_pt_rel=res, e=e_meas)


# ---------------------------------------------------------------------------------------------------
# 3. calorimeters and energy flow
# ---------------------------------------------------------------------------------------------------


class TowerGrid:
    """Tower numbering of one calorimeter: eta bins with their own number of phi bins."""

    def __init__(self, cal: CalorimeterConfig):
        self.eta_edges = np.asarray(cal.eta_edges, dtype=np.float64)
        self.n_phi = np.asarray(cal.n_phi, dtype=np.int64)
        self.offset = np.concatenate([[0], np.cumsum(self.n_phi)])
        self.n_towers = int(self.offset[-1])

    def tower_of(self, eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tower number of each (eta, phi) and whether it lies inside the calorimeter."""
        ie = np.searchsorted(self.eta_edges, eta, side="right") - 1
        inside = (ie >= 0) & (ie < len(self.n_phi))
        ie = np.clip(ie, 0, len(self.n_phi) - 1)
        nphi = self.n_phi[ie]
        iphi = np.floor((phi + np.pi) / (2 * np.pi) * nphi).astype(np.int64) % nphi
        return self.offset[ie] + iphi, inside

    def edges_of(self, tower: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(eta_low, eta_high, phi_low, phi_high) of each tower number."""
        ie = np.searchsorted(self.offset, tower, side="right") - 1
        iphi = tower - self.offset[ie]
        dphi = 2 * np.pi / self.n_phi[ie]
        phi_lo = -np.pi + iphi * dphi
        return self.eta_edges[ie], self.eta_edges[ie + 1], phi_lo, phi_lo + dphi


def energy_resolution(cal: CalorimeterConfig, abs_eta: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """sigma(E) in GeV: sqrt((c E)^2 + s^2 E + n^2) in the |eta| bin of the resolution table."""
    ie, _ = _bin(cal.resolution_abs_eta_edges, abs_eta)
    c = np.asarray(cal.constant)[ie]
    s = np.asarray(cal.stochastic)[ie]
    n = np.asarray(cal.noise_gev)[ie]
    return np.sqrt((c * energy) ** 2 + s**2 * np.maximum(energy, 0.0) + n**2)


def energy_fractions(det: DetectorConfig, pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ECAL, HCAL) fractions per particle; hadrons not in the table get (0, 1)."""
    apid = np.abs(pid)
    f_ecal = np.zeros(len(pid))
    f_hcal = np.ones(len(pid))
    for code, (fe, fh) in det.energy_fractions.items():
        sel = apid == int(code)
        f_ecal[sel] = fe
        f_hcal[sel] = fh
    return f_ecal, f_hcal


@dataclass
class CaloOutput:
    """Towers of one calorimeter and their energy-flow neutral remainder, flat and sorted by event."""

    towers: dict[str, np.ndarray]
    neutrals: dict[str, np.ndarray]


def calorimeter(
    cal: CalorimeterConfig,
    grid: TowerGrid,
    event: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    deposit: np.ndarray,
    track_deposit: np.ndarray,
    track_var: np.ndarray,
    rng: np.random.Generator,
    smear_centres: bool,
    is_ecal: bool,
    neutral_scale: float = 1.0,
) -> CaloOutput:
    """Sum deposits per (event, tower), smear, apply thresholds, and form the energy-flow neutrals.

    ``deposit`` is each particle's true energy into this calorimeter (GeV); ``track_deposit`` and
    ``track_var`` the energy and variance (GeV^2) that reconstructed tracks bring to their tower;
    ``neutral_scale`` multiplies the neutral remainder before its thresholds.
    """
    tower, inside = grid.tower_of(eta, phi)
    use = inside & ((deposit > 0) | (track_deposit > 0))
    key = event[use].astype(np.int64) * grid.n_towers + tower[use]
    keys, inverse = np.unique(key, return_inverse=True)
    n = len(keys)
    e_true = np.bincount(inverse, weights=deposit[use], minlength=n)
    e_trk = np.bincount(inverse, weights=track_deposit[use], minlength=n)
    var_trk = np.bincount(inverse, weights=track_var[use], minlength=n)
    tower_event = keys // grid.n_towers
    eta_lo, eta_hi, phi_lo, phi_hi = grid.edges_of(keys % grid.n_towers)
    centre_abs_eta = np.abs(0.5 * (eta_lo + eta_hi))

    sigma = energy_resolution(cal, centre_abs_eta, e_true)
    e_meas = lognormal(rng, e_true, sigma)
    e_meas = np.where((e_meas < cal.energy_min_gev) | (e_meas < cal.significance_min * sigma), 0.0, e_meas)
    if smear_centres:
        t_eta = rng.uniform(eta_lo, eta_hi)
        t_phi = rng.uniform(phi_lo, phi_hi)
    else:
        t_eta, t_phi = 0.5 * (eta_lo + eta_hi), 0.5 * (phi_lo + phi_hi)

    neutral = np.maximum(e_meas - e_trk, 0.0) * neutral_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        significance = neutral / np.sqrt(var_trk + sigma**2)
    is_neutral = (neutral > cal.energy_min_gev) & (significance > cal.significance_min)

    def record(sel: np.ndarray, energy: np.ndarray) -> dict[str, np.ndarray]:
        e = energy[sel]
        return {
            "event": tower_event[sel],
            "ET": e / np.cosh(t_eta[sel]),
            "Eta": t_eta[sel],
            "Phi": t_phi[sel],
            "E": e,
            "T": np.zeros(len(e)),
            "NTimeHits": np.zeros(len(e), dtype=np.int32),
            "Eem": e if is_ecal else np.zeros(len(e)),
            "Ehad": np.zeros(len(e)) if is_ecal else e,
            "Etrk": e_trk[sel],
        }

    return CaloOutput(towers=record(e_meas > 0, e_meas), neutrals=record(is_neutral, neutral))


# ---------------------------------------------------------------------------------------------------
# the whole detector
# ---------------------------------------------------------------------------------------------------


def simulate(p: Particles, n_events: int, det: DetectorConfig, rng: np.random.Generator) -> dict[str, ak.Array]:
    """Run the detector on a chunk of final-state particles; returns jagged DELPHES collections
    (``Track``, ``Tower``, ``EFlowTrack``, ``EFlowPhoton``, ``EFlowNeutralHadron``), one entry per event."""
    impact = propagate(p, det.solenoid)
    tracks = reconstruct_tracks(p, det, rng)
    f_ecal, f_hcal = energy_fractions(det, p.pid)
    reached = impact.reached

    # tracks that reach the calorimeter bring their measured energy (and its variance) to their tower
    n = len(p.pid)
    trk_e = np.zeros(n)
    trk_var = np.zeros(n)
    trk_e[tracks.index] = tracks.e
    trk_var[tracks.index] = (tracks.sigma_pt_rel * tracks.e) ** 2
    trk_e = np.where(reached, trk_e, 0.0)
    trk_var = np.where(reached, trk_var, 0.0)
    e_true = np.where(reached, p.e, 0.0)

    out = {}
    calos = {}
    flow = det.energy_flow
    for name, cal, frac, is_ecal, scale in (("ecal", det.ecal, f_ecal, True, flow.photon_energy_scale),
                                            ("hcal", det.hcal, f_hcal, False, flow.neutral_hadron_energy_scale)):
        calos[name] = calorimeter(
            cal,
            TowerGrid(cal),
            p.event,
            impact.eta,
            impact.phi,
            e_true * frac,
            trk_e * frac,
            trk_var * frac**2,
            rng,
            det.smear_tower_centres,
            is_ecal,
            scale,
        )
    track_cols = _track_columns(p, tracks, impact)
    out["Track"] = to_jagged(track_cols, n_events)
    if flow.track_pt_scale == 1.0:
        out["EFlowTrack"] = out["Track"]
    else:
        scaled = {k: track_cols[k] * flow.track_pt_scale for k in ("PT", "P", "ErrorPT")}
        out["EFlowTrack"] = to_jagged({**track_cols, **scaled}, n_events)
    out["Tower"] = ak.concatenate(
        [to_jagged(calos["ecal"].towers, n_events), to_jagged(calos["hcal"].towers, n_events)], axis=1
    )
    out["EFlowPhoton"] = to_jagged(calos["ecal"].neutrals, n_events)
    out["EFlowNeutralHadron"] = to_jagged(calos["hcal"].neutrals, n_events)
    return out


def _track_columns(p: Particles, tracks: Tracks, impact: Impact) -> dict[str, np.ndarray]:
    i = tracks.index
    eta = p.eta[i]
    pt = tracks.pt
    return {
        "event": p.event[i],
        "PID": p.pid[i].astype(np.int32),
        "Charge": p.charge[i].astype(np.int32),
        "P": pt * np.cosh(eta),
        "PT": pt,
        "Eta": eta,
        "Phi": p.phi[i],
        "CtgTheta": np.sinh(eta),
        "Mass": p.mass[i],
        "EtaOuter": impact.eta[i],
        "PhiOuter": impact.phi[i],
        "XOuter": impact.x_mm[i],
        "YOuter": impact.y_mm[i],
        "ZOuter": impact.z_mm[i],
        "T": np.zeros(len(i)),
        "X": np.zeros(len(i)),
        "Y": np.zeros(len(i)),
        "Z": np.zeros(len(i)),
        "D0": np.zeros(len(i)),
        "DZ": np.zeros(len(i)),
        "ErrorPT": tracks.sigma_pt_rel * pt,
        "Particle": p.gen_index[i].astype(np.int32),
    }


FLOAT_DTYPE = np.float32  # DELPHES stores floats in single precision


def to_jagged(columns: dict[str, np.ndarray], n_events: int) -> ak.Array:
    """Flat columns with an ``event`` column (sorted) -> jagged record array with one list per event.

    Floating columns become float32 as in DELPHES.
    """
    counts = np.bincount(columns["event"].astype(np.int64), minlength=n_events)
    fields = {}
    for name, values in columns.items():
        if name == "event":
            continue
        values = np.asarray(values)
        if values.dtype.kind == "f":
            values = values.astype(FLOAT_DTYPE)
        fields[name] = ak.from_numpy(values)
    return ak.unflatten(ak.zip(fields, depth_limit=1), counts)
