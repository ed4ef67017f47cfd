"""Closure of the detector variations against a sample generated with a shifted energy-flow scale.

The nominal sample and a shifted one (``topcal generate`` with the same seed and one
``[detector.energy_flow]`` scale at ``1 + size``) hold the same events, reconstructed with a different
calibration. Each nominal fat jet is paired with the nearest jet of the same event in the shifted sample
(Delta R below ``match_dr``); per bin of the nominal pT,j (GeV), the mean change of ptPred between the
samples (what a real miscalibration does, with its reclustering and its objects crossing thresholds) is
compared with the mean of the nominal sample's variation ``ptPred_<source>Up - ptPred`` (a rescaling of
the fixed jet). They agree when the difference is within ``relative`` of the variation or ``absolute_gev``.
"""

from __future__ import annotations

from collections.abc import Sequence

import awkward as ak
import numpy as np

DEFAULT_EDGES = tuple(float(e) for e in range(400, 1001, 100))


def match(nominal_jets: ak.Array, shifted_jets: ak.Array, match_dr: float = 0.2) -> np.ndarray:
    """For every nominal jet (flat, in order), the flat index of the nearest shifted jet of the same event
    within ``match_dr``, or -1. Both arguments are ``n_events * var * Momentum4D`` of the same events."""
    pairs = ak.cartesian({"a": nominal_jets, "b": shifted_jets}, axis=1, nested=True)
    dr = pairs.a.deltaR(pairs.b)
    best = ak.argmin(dr, axis=2)
    best_dr = ak.to_numpy(ak.fill_none(ak.flatten(ak.min(dr, axis=2)), np.inf))
    offsets = np.cumsum(ak.to_numpy(ak.num(shifted_jets))) - ak.to_numpy(ak.num(shifted_jets))
    index = ak.to_numpy(ak.fill_none(ak.flatten(best + offsets), -1))
    return np.where(best_dr < match_dr, index, -1)


def closure_table(nominal: tuple, shifted: tuple, source: str, edges: Sequence[float] = DEFAULT_EDGES,
                  match_dr: float = 0.2, relative: float = 0.2, absolute_gev: float = 1.0) -> list[dict]:
    """Per pT,j bin: jets, the mean ptPred change in the shifted sample (``sample``, with its standard
    error ``sample_error``), the nominal sample's mean variation ``ptPred_<source>Up - ptPred``
    (``variation``), the same for pT,j (``pt_sample``, ``pt_variation``), all in GeV, and ``agrees``.

    ``nominal``, ``shifted``: :meth:`topcal.Calibrator.flat` of the two samples (the nominal one with the
    ``source`` variation, both with the same model, samples and seed); only jets in the training range
    whose pair is found count."""
    _, a, jets_a = nominal
    _, b, jets_b = shifted
    pair = match(jets_a, jets_b, match_dr)
    use = (pair >= 0) & np.asarray(a["inTrainingRange"], bool)

    def paired(values):
        return np.asarray(values)[np.maximum(pair, 0)] if len(values) else np.full(len(pair), np.nan)

    sample = paired(b["ptPred"]) - a["ptPred"]
    variation = a[f"ptPred_{source}Up"] - a["ptPred"]
    pt_sample = paired(b["pt"]) - a["pt"]
    pt_variation = a[f"pt_{source}Up"] - a["pt"]
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = np.asarray(a["inTrainingRange"], bool) & (a["pt"] >= lo) & (a["pt"] < hi)
        sel = use & in_bin
        n = int(sel.sum())
        row = {"pt_low": lo, "pt_high": hi, "jets": n,
               "matched_fraction": float(n / in_bin.sum()) if in_bin.any() else float("nan")}
        for name, values in (("sample", sample), ("variation", variation), ("pt_sample", pt_sample),
                             ("pt_variation", pt_variation)):
            row[name] = float(values[sel].mean()) if n else float("nan")
        row["sample_error"] = float(sample[sel].std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        row["agrees"] = bool(n) and abs(row["sample"] - row["variation"]) <= max(relative * abs(row["variation"]),
                                                                                  absolute_gev)
        rows.append(row)
    return rows
