"""The coffea processor of ``topcal predict``: per-jet pT and its uncertainties for every fat jet.

Per chunk, :class:`topcal.Calibrator` (the same object users put in their own processors) clusters the fat
jets exactly as the model's training dataset did and samples the network T times; this processor adds the
truth match when the input has truth, and stages one Parquet part per chunk with one entry per event
(jagged per jet, NanoAOD-style fields). The friend files are assembled from the parts in entry order after
the run (:func:`topcal.predict.run.predict`), so chunks may finish in any order.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
from coffea import processor

from processors.fatjet_dataset import staged_name
from topcal.predict.calibrator import Calibrator
from topcal.process.truth import match_tops, matched_label_pt, truth_tops


class FatJetPredictProcessor(processor.ProcessorABC):
    """Predictions for all fat jets above the clustering threshold, one staged part per chunk."""

    def __init__(self, calibrator: Calibrator, files: dict[str, int], staging_dir: str | Path):
        self.calibrate = calibrator
        self.files = dict(files)
        self.staging_dir = str(staging_dir)

    def process(self, events):
        cfg = self.calibrate.config
        meta = events.metadata
        counts, fatjet, jets = self.calibrate.flat(events)
        if "Particle" in events.fields:
            tops = truth_tops(events.Particle)
            top_index, matched = match_tops(jets, tops, cfg.jet_radius, cfg.match_decay_products)
            fatjet["isTruthMatched"] = ak.to_numpy(ak.flatten(matched))
            pt_truth = ak.to_numpy(ak.flatten(matched_label_pt(tops, top_index, cfg.top_label)))
            fatjet["ptTruth"] = np.where(fatjet["isTruthMatched"] & np.isfinite(pt_truth), pt_truth, -1.0)

        table = ak.zip({k: ak.unflatten(np.asarray(v), counts) for k, v in fatjet.items()})
        name = staged_name(self.files[meta["filename"]], meta["entrystart"])
        ak.to_parquet(table, Path(self.staging_dir) / name)
        part = {"file": meta["filename"], "entry_start": meta["entrystart"], "entry_stop": meta["entrystop"],
                "name": name, "jets": int(counts.sum())}
        return {"parts": [part], "events": len(events), "jets": int(counts.sum())}

    def postprocess(self, accumulator):
        return accumulator
