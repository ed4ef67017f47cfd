"""Toy per-jet datasets with known truth for the training tests.

Each toy jet is three prongs of ``N_CONSTITUENTS / 3`` massless constituents each, at distance
``0.1 + 0.3 a`` from the axis, with ``a`` ~ U(0, 1) hidden: the jet mass grows with ``a``. The fat-jet
kinematics (pt, eta, phi, mass) are computed from the constituents, as ``topcal process`` would. The label is
``pT,j (1 + response_slope a)`` plus Gaussian noise of width ``noise_gev(a)``, so the truth depends on the jet
mass at fixed pT,j, which a linear correction of pT,j cannot see (or, ``bimodal``, 600 or 750 GeV with
probabilities 0.7 / 0.3 and width 25 GeV, independent of everything).
"""

from __future__ import annotations

import numpy as np
import vector

from topcal.config import ProcessConfig
from topcal.io.dataset import write_dataset

N_CONSTITUENTS = 12


def toy_table(n: int, seed: int, noise_gev=lambda a: 20.0 + 40.0 * a, bimodal: bool = False,
              response_slope: float = 0.3, pt_range=(450.0, 950.0), types: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    if types:  # the constituents' origins, charges and lepton ids
        return _typed(toy_table(n, seed, noise_gev, bimodal, response_slope, pt_range), rng)
    a = rng.uniform(0.0, 1.0, n)
    pt_j = rng.uniform(*pt_range, n)
    eta_j = rng.uniform(-1.5, 1.5, n)
    phi_j = rng.uniform(-np.pi, np.pi, n)
    per = N_CONSTITUENTS // 3
    radius = 0.1 + 0.3 * a
    angle = rng.uniform(0, 2 * np.pi, n)[:, None] + np.repeat(2 * np.pi / 3 * np.arange(3), per)[None, :]
    eta = eta_j[:, None] + radius[:, None] * np.cos(angle) + 0.02 * rng.standard_normal((n, N_CONSTITUENTS))
    phi = phi_j[:, None] + radius[:, None] * np.sin(angle) + 0.02 * rng.standard_normal((n, N_CONSTITUENTS))
    share = rng.dirichlet(np.full(N_CONSTITUENTS, 2.0), n)
    pt = pt_j[:, None] * share
    order = np.argsort(-pt, axis=1)
    pt, eta, phi = (np.take_along_axis(v, order, axis=1) for v in (pt, eta, phi))
    p4 = vector.array({"pt": pt, "eta": eta, "phi": phi, "mass": np.zeros_like(pt)})
    x = np.stack([p4.E, p4.px, p4.py, p4.pz], axis=-1) / 1000.0
    jet = vector.array({"px": p4.px.sum(axis=1), "py": p4.py.sum(axis=1), "pz": p4.pz.sum(axis=1),
                        "E": p4.E.sum(axis=1)})
    if bimodal:
        label = np.where(rng.uniform(size=n) < 0.7, 600.0, 750.0) + 25.0 * rng.standard_normal(n)
    else:
        label = jet.pt * (1.0 + response_slope * a) + noise_gev(a) * rng.standard_normal(n)
    return {"constituents": x.astype(np.float32), "pt": jet.pt, "eta": jet.eta, "phi": jet.phi, "mass": jet.mass,
            "n_constituents": np.full(n, N_CONSTITUENTS, dtype=np.int32), "pt_truth": label, "feature": a}


def _typed(table: dict, rng) -> dict:
    """``table`` with the dataset's per-constituent origin (track, photon, neutral hadron), charge (+-1 for
    tracks) and lepton id (11 or 13 for a few tracks), and a label that falls with the neutral hadrons' pT
    fraction f (``pT,j (1 + 0.6 (0.3 - f))`` instead of ``pT,j``, a calorimeter that under-measures them;
    f's mean is about 0.3): the origin, not the kinematics, sets the response."""
    n = len(table["pt"])
    origin = rng.choice(np.array([1, 2, 3], np.int8), size=(n, N_CONSTITUENTS), p=[0.4, 0.3, 0.3])
    charge = np.where(origin == 1, rng.choice(np.array([-1, 1], np.int8), size=origin.shape), 0).astype(np.int8)
    lepton = np.where((origin == 1) & (rng.uniform(size=origin.shape) < 0.05),
                      rng.choice(np.array([11, 13], np.int8), size=origin.shape), 0).astype(np.int8)
    pt_i = np.hypot(table["constituents"][..., 1], table["constituents"][..., 2]) * 1000.0
    f = np.sum(pt_i * (origin == 3), axis=1) / table["pt"]
    table["pt_truth"] = table["pt_truth"] + table["pt"] * 0.6 * (0.3 - f)
    return {**table, "constituent_origin": origin, "constituent_charge": charge, "constituent_lepton": lepton,
            "neutral_fraction": f}


def toy_dataset(path, n: int, seed: int = 0, **kwargs):
    cfg = ProcessConfig(max_constituents=N_CONSTITUENTS, flatten=False)
    return write_dataset(path, toy_table(n, seed, **kwargs), cfg, part_jets=max(1, n // 3))


def small_model(base, n: int = 1500, seed: int = 1):
    """A quickly trained default-architecture model (two epochs, 16-unit layers) on ``n`` toy jets, in
    ``base/model`` (its dataset in ``base/ds``): enough to exercise prediction paths, not to be accurate."""
    from topcal.config import TrainConfig
    from topcal.train.fit import train

    ds = toy_dataset(base / "ds", n, seed=seed)
    train(ds.path, base / "model", TrainConfig(phi_hidden=[16], hidden=[16], epochs=2), progress=False)
    return base / "model"
