"""Calibrated fat jets for an analysis: :meth:`topcal.Calibrator.flat` with the truth top pT, and the same jets
in a sample generated with a shifted detector (same seed, same events).

All momenta in GeV. ``ptTruth`` is the label pT,t of the matched truth top (the model's matching and label
choice), -1 for unmatched jets; ``event`` the index of the jet's event in the file.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from topcal.predict.detector_closure import match


def calibrated_jets(calibrator, events) -> tuple[dict[str, np.ndarray], ak.Array]:
    """``(table, jets)``: the flat per-jet table of ``calibrator.flat(events)`` plus ``ptTruth`` (GeV),
    ``isTruthMatched`` and ``event`` (the event's index), and the clustered Momentum4D jets
    (``n_events * var``) for pairing with another sample.
    ``events``: DELPHES NanoEvents with the truth ``Particle`` collection."""
    from topcal.process.truth import match_tops, matched_label_pt, truth_tops

    cfg = calibrator.config
    counts, table, jets = calibrator.flat(events)
    table["event"] = np.repeat(np.arange(len(counts)), counts)
    tops = truth_tops(events.Particle)
    index, matched = match_tops(jets, tops, cfg.jet_radius, cfg.match_decay_products)
    table["isTruthMatched"] = ak.to_numpy(ak.flatten(matched))
    pt_truth = ak.to_numpy(ak.flatten(matched_label_pt(tops, index, cfg.top_label)))
    table["ptTruth"] = np.where(table["isTruthMatched"] & np.isfinite(pt_truth), pt_truth, -1.0)
    return table, jets


def selected(table: dict[str, np.ndarray], one_per_event: bool = True) -> np.ndarray:
    """The jets an analysis measures: inside the model's training window, matched to a truth top and, with
    ``one_per_event`` and an ``event`` field in the table, only the highest-pT,j such jet of each event.

    The two tops of a ttbar event have nearly the same pT, so two jets of one event land above or below a pT
    threshold together: their counts are not independent Poisson counts, which a binned likelihood assumes.
    One jet per event keeps them independent (a table without ``event`` counts every jet as its own event)."""
    mask = np.asarray(table["inTrainingRange"], bool) & (np.asarray(table["ptTruth"]) > 0)
    if not one_per_event or "event" not in table:
        return mask
    idx = np.flatnonzero(mask)
    event = np.asarray(table["event"])[idx]
    order = np.lexsort((-np.asarray(table["pt"])[idx], event))  # by event, highest pT,j first
    first = np.ones(len(idx), bool)
    first[1:] = event[order][1:] != event[order][:-1]
    out = np.zeros(len(mask), bool)
    out[idx[order][first]] = True
    return out


def paired(nominal_jets: ak.Array, shifted_jets: ak.Array, shifted_table: dict[str, np.ndarray],
           fields: tuple[str, ...], fallback: dict[str, np.ndarray], match_dr: float = 0.2) -> dict[str, np.ndarray]:
    """For every nominal jet, the ``fields`` of its partner in the shifted sample (the nearest jet of the same
    event within ``match_dr``: :func:`topcal.predict.detector_closure.match`); jets without a partner keep
    their ``fallback`` (nominal) values. Also ``matched`` (bool per nominal jet)."""
    index = match(nominal_jets, shifted_jets, match_dr)
    found = index >= 0
    out = {f: np.where(found, np.asarray(shifted_table[f])[np.maximum(index, 0)] if len(shifted_table[f]) else 0.0,
                       fallback[f]) for f in fields}
    out["matched"] = found
    return out
