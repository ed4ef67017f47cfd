"""A measurement with topcal's per-jet uncertainties: the fraction of tops with pT,t > 800 GeV.

The MC (simulated events with truth, never seen by the network) gives the templates of ptPred for tops above
and below 800 GeV; the data are fitted with a binned profile likelihood (pyhf, ``pip install topcal[analysis]``)
whose nuisance parameters are topcal's variations: the detector sources, the statistical eigen-variations
``stat<k>`` and any label shift source of the model (:mod:`topcal.analysis.fraction`)::

    python docs/analysis_example.py MODEL mc_events.root data_events.root
"""

from __future__ import annotations

import sys

import numpy as np

from topcal.analysis import fraction as fr
from topcal.analysis.jets import selected


def measure(mc: dict, data: dict, threshold: float = fr.THRESHOLD_GEV, independent: bool = False) -> dict:
    """The fraction of selected data jets (one per event) whose top has pT,t > ``threshold`` (GeV), with its
    68% interval.
    ``mc``, ``data``: per-jet tables (:func:`topcal.analysis.jets.calibrated_jets`; the data's ``ptTruth`` is
    only used to select jets in the training window: set it to 1 for real data)."""
    keep, use = selected(mc), selected(data)  # one jet per event (the highest-pT,j one)
    templates = fr.templates(fr.topcal_observable(mc).take(keep), np.asarray(mc["ptTruth"])[keep], threshold,
                             min_count=fr.min_count(int(keep.sum()), float(use.sum())))
    counts = fr.histogram(np.asarray(data["ptPred"])[use], templates.edges)
    model, bins = fr.build_model(templates, expected_jets=float(use.sum()), independent=independent)
    ratio, low, high = fr.fit(model, counts[bins])
    return {"fraction": float(templates.fraction(ratio)), "low": float(templates.fraction(low)),
            "high": float(templates.fraction(high)), "nuisance_parameters": sorted(templates.variations["high"])}


if __name__ == "__main__":
    import topcal
    from topcal.analysis.jets import calibrated_jets
    from topcal.io.delphes_reader import open_events

    cal = topcal.Calibrator(sys.argv[1], samples=50, seed=0)
    mc, _ = calibrated_jets(cal, open_events(sys.argv[2]))
    data, _ = calibrated_jets(cal, open_events(sys.argv[3]))
    r = measure(mc, data)
    print(f"fraction of tops above {fr.THRESHOLD_GEV:.0f} GeV: {r['fraction']:.3f} "
          f"[{r['low']:.3f}, {r['high']:.3f}] (68%), nuisance parameters {r['nuisance_parameters']}")
