"""Toy per-jet datasets with known truth for the training tests: the label depends on one input feature."""

from __future__ import annotations

import numpy as np

from topcal.config import ProcessConfig
from topcal.io.dataset import write_dataset

N_CONSTITUENTS = 4


def toy_table(n: int, seed: int, noise_gev=lambda a: 20.0 + 40.0 * a, bimodal: bool = False) -> dict:
    """Jets whose feature ``a`` ~ U(0, 1) sits in every constituent's energy slot; the label is
    600 + 200 a GeV plus Gaussian noise of width ``noise_gev(a)`` (or, ``bimodal``, 600 or 750 GeV with
    probabilities 0.7 / 0.3 and width 25 GeV, independent of ``a``)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 1.0, n)
    x = np.zeros((n, N_CONSTITUENTS, 4), dtype=np.float32)
    x[:, :, 0] = a[:, None]
    if bimodal:
        label = np.where(rng.uniform(size=n) < 0.7, 600.0, 750.0) + 25.0 * rng.standard_normal(n)
    else:
        label = 600.0 + 200.0 * a + noise_gev(a) * rng.standard_normal(n)
    return {"constituents": x, "pt": 600.0 + 200.0 * a, "eta": np.zeros(n), "pt_truth": label,
            "feature": a}


def toy_dataset(path, n: int, seed: int = 0, **kwargs):
    cfg = ProcessConfig(max_constituents=N_CONSTITUENTS, flatten=False)
    return write_dataset(path, toy_table(n, seed, **kwargs), cfg, part_jets=max(1, n // 3))
