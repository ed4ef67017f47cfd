"""The detector simulation recovers the configured efficiencies and resolutions (particle guns)."""

import awkward as ak
import numpy as np
import pytest

from topcal.config import DetectorConfig
from topcal.generate import detector
from topcal.generate.detector import Particles

PION_MASS = 0.13957
N = 20000


def _gun_pt(pid, pt, eta, charge, mass, n=N, seed=1):
    rng = np.random.default_rng(seed)
    eta = np.full(n, eta) if np.isscalar(eta) else eta
    phi = rng.uniform(-np.pi, np.pi, n)
    energy = np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)
    return Particles.gun(pid, energy, eta, phi, mass, charge)


def _binomial_ok(k, n, p):
    return abs(k / n - p) <= 4 * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("pt, eta, expected", [(5.0, 0.7, 0.95), (0.5, 0.7, 0.70), (5.0, 2.0, 0.85),
                                                (0.5, 2.0, 0.60), (5.0, 2.7, 0.0), (0.05, 0.1, 0.0)])
def test_charged_pion_tracking_efficiency(pt, eta, expected):
    det = DetectorConfig()
    rng = np.random.default_rng(2)
    tracks = detector.reconstruct_tracks(_gun_pt(211, pt, eta, 1.0, PION_MASS), det, rng)
    assert _binomial_ok(len(tracks.index), N, expected)


def test_electron_and_muon_efficiency_tables():
    det = DetectorConfig()
    rng = np.random.default_rng(3)
    e = detector.reconstruct_tracks(_gun_pt(11, 200.0, 0.3, -1.0, 0.000511), det, rng)
    mu = detector.reconstruct_tracks(_gun_pt(13, 20.0, 2.0, -1.0, 0.10566), det, rng)
    assert _binomial_ok(len(e.index), N, 0.99)
    assert _binomial_ok(len(mu.index), N, 0.98)


@pytest.mark.parametrize("pid, pt, eta, a, b", [(211, 50.0, 0.2, 0.06, 1.3e-3), (211, 200.0, 1.0, 0.10, 1.7e-3),
                                                (13, 500.0, 2.0, 0.025, 3.5e-4)])
def test_track_pt_resolution(pid, pt, eta, a, b):
    det = DetectorConfig()
    rng = np.random.default_rng(4)
    tracks = detector.reconstruct_tracks(_gun_pt(pid, pt, eta, 1.0, PION_MASS), det, rng)
    ratio = tracks.pt / pt
    expected = np.sqrt(a**2 + (pt * b) ** 2)
    assert abs(ratio.mean() - 1) < 4 * expected / np.sqrt(len(ratio))  # unbiased (log-normal with that mean)
    assert ratio.std() == pytest.approx(expected, rel=0.05)


def test_helix_reaches_barrel_with_the_expected_bend():
    solenoid = DetectorConfig().solenoid
    p = _gun_pt(211, 10.0, 0.0, 1.0, PION_MASS, n=3)
    impact = detector.propagate(p, solenoid)
    radius = 10.0 / (0.299792458 * 2.0)
    bend = np.arcsin(1.15 / (2 * radius))  # half the turning angle
    assert impact.reached.all()
    np.testing.assert_allclose(((p.phi - impact.phi + np.pi) % (2 * np.pi)) - np.pi, bend, rtol=1e-9)
    np.testing.assert_allclose(np.hypot(impact.x_mm, impact.y_mm), 1150.0, rtol=1e-9)
    # opposite charge bends the other way
    q = _gun_pt(-211, 10.0, 0.0, -1.0, PION_MASS, n=3)
    np.testing.assert_allclose(((q.phi - detector.propagate(q, solenoid).phi + np.pi) % (2 * np.pi)) - np.pi, -bend)


def test_loopers_and_neutrals():
    solenoid = DetectorConfig().solenoid
    # 0.3 GeV at eta = 0: helix diameter 1.0 m < 1.15 m and no pz: never reaches the calorimeter
    looper = detector.propagate(_gun_pt(211, 0.3, 0.0, 1.0, PION_MASS, n=2), solenoid)
    assert not looper.reached.any()
    # with some pz it spirals into the endcap at |z| = 3.51 m
    forward = detector.propagate(_gun_pt(211, 0.3, 1.0, 1.0, PION_MASS, n=2), solenoid)
    assert forward.reached.all()
    np.testing.assert_allclose(forward.z_mm, 3510.0)
    # photons fly straight
    g = _gun_pt(22, 5.0, 1.3, 0.0, 0.0, n=4)
    straight = detector.propagate(g, solenoid)
    np.testing.assert_allclose(straight.eta, 1.3)
    np.testing.assert_allclose(straight.phi, g.phi)


def _tower_energy_per_event(collection: ak.Array) -> np.ndarray:
    return ak.to_numpy(ak.sum(collection.E, axis=1))


def test_photon_gun_gives_ecal_resolution():
    det = DetectorConfig()
    energy = 100.0
    p = Particles.gun(22, np.full(N, energy), np.full(N, 0.3), np.random.default_rng(5).uniform(-3, 3, N), 0.0, 0.0)
    out = detector.simulate(p, N, det, np.random.default_rng(6))
    e = _tower_energy_per_event(out["EFlowPhoton"])
    expected = np.sqrt((0.0017 * energy) ** 2 + 0.101**2 * energy)
    assert e.mean() == pytest.approx(energy, abs=4 * expected / np.sqrt(N))
    assert e.std() == pytest.approx(expected, rel=0.05)
    assert ak.all(ak.num(out["EFlowNeutralHadron"]) == 0)


def test_pion_gun_gives_hcal_resolution():
    det = DetectorConfig()
    energy = 100.0
    p = Particles.gun(211, np.full(N, energy), np.full(N, 0.3), np.random.default_rng(7).uniform(-3, 3, N),
                      PION_MASS, 1.0)
    out = detector.simulate(p, N, det, np.random.default_rng(8))
    towers = out["Tower"]
    e = ak.to_numpy(ak.sum(towers.Ehad, axis=1))
    expected = np.sqrt((0.0302 * energy) ** 2 + 0.5205**2 * energy + 1.59**2)
    assert e.mean() == pytest.approx(energy, abs=4 * expected / np.sqrt(N))
    assert e.std() == pytest.approx(expected, rel=0.05)
    # energy flow: with a track, the tower's neutral remainder is rarely significant
    with_track = ak.num(out["EFlowTrack"]) == 1
    assert ak.mean(ak.num(out["EFlowNeutralHadron"][with_track])) < 0.1


def test_neutral_hadron_without_track_is_an_eflow_neutral_hadron():
    det = DetectorConfig()
    p = Particles.gun(130, np.full(1000, 50.0), np.full(1000, -0.85), np.zeros(1000), 0.4976, 0.0)
    out = detector.simulate(p, 1000, det, np.random.default_rng(9))
    assert ak.all(ak.num(out["EFlowTrack"]) == 0)
    assert ak.mean(ak.num(out["EFlowNeutralHadron"])) > 0.99
    # tower centres are smeared uniformly inside the 0.1 x 10 degree HCAL tower
    eta = ak.to_numpy(ak.flatten(out["EFlowNeutralHadron"].Eta))
    assert -0.9 <= eta.min() and eta.max() <= -0.8 and eta.std() > 0.02


def test_thresholds_remove_small_deposits():
    det = DetectorConfig()
    p = Particles.gun(22, np.full(2000, 0.2), np.zeros(2000), np.zeros(2000), 0.0, 0.0)  # far below 0.5 GeV
    out = detector.simulate(p, 2000, det, np.random.default_rng(10))
    assert ak.sum(ak.num(out["Tower"])) == 0


def test_tower_grid_numbering_round_trip():
    grid = detector.TowerGrid(DetectorConfig().hcal)
    rng = np.random.default_rng(11)
    eta, phi = rng.uniform(-4.8, 4.8, 5000), rng.uniform(-np.pi, np.pi, 5000)
    tower, inside = grid.tower_of(eta, phi)
    assert inside.all()
    lo, hi, plo, phi_hi = grid.edges_of(tower)
    assert np.all((lo <= eta) & (eta < hi) & (plo <= phi + 1e-12) & (phi < phi_hi + 1e-12))
