"""The coffea processor of ``topcal predict``: per-jet pT and its uncertainties for every fat jet.

Per chunk it clusters the fat jets exactly as the model's training dataset did (radius, threshold, inputs),
builds the network input of every jet, samples the network T times, and stages one Parquet part per chunk
with one entry per event (jagged per jet, NanoAOD-style fields). The friend files are assembled from the
parts in entry order after the run (:func:`topcal.predict.run.predict`), so chunks may finish in any order.
The model is loaded once per worker process and kept (:func:`cached_model`).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import awkward as ak
import numpy as np
from coffea import processor

from topcal.config import ProcessConfig
from processors.fatjet_dataset import staged_name
from topcal.process.fatjets import cluster, eflow_inputs, padded_constituents
from topcal.process.selection import jet_acceptance
from topcal.process.truth import match_tops, matched_label_pt, truth_tops
from topcal.train.inputs import Jets
from topcal.train.likelihood import sigma_cal

_MODELS: dict[str, object] = {}


def cached_model(path: str):
    """The model at ``path``, loaded at most once per process."""
    if path not in _MODELS:
        from topcal.train.model import load_model

        _MODELS[path] = load_model(path)
    return _MODELS[path]


def chunk_seed(seed: int, filename: str, entry_start: int) -> int:
    """Sampling seed of one chunk: the same chunk gives the same numbers on any executor."""
    return (seed * 1_000_003 + zlib.crc32(Path(filename).name.encode()) + entry_start) % 2**31


class FatJetPredictProcessor(processor.ProcessorABC):
    """Predictions for all fat jets above the clustering threshold, one staged part per chunk."""

    def __init__(self, model_dir: str | Path, process_config: ProcessConfig, files: dict[str, int],
                 staging_dir: str | Path, samples: int = 50, seed: int = 0, reference_dir: str | Path | None = None):
        self.model_dir = str(Path(model_dir).absolute())
        self.reference_dir = str(Path(reference_dir).absolute()) if reference_dir else None
        self.config = process_config
        self.files = dict(files)
        self.staging_dir = str(staging_dir)
        self.samples, self.seed = samples, seed

    def process(self, events):
        cfg = self.config
        meta = events.metadata
        model = cached_model(self.model_dir)

        inputs = eflow_inputs(events, use_towers=cfg.use_towers, leptons=cfg.jet_leptons)
        jets, constituents = cluster(inputs, cfg.jet_radius, cfg.cluster_pt_min_gev)
        counts = ak.to_numpy(ak.num(jets))
        flat_jets = ak.flatten(jets)
        fatjet = {
            "pt": ak.to_numpy(flat_jets.rho),
            "eta": ak.to_numpy(flat_jets.eta),
            "phi": ak.to_numpy(flat_jets.phi),
            "mass": ak.to_numpy(flat_jets.tau),
            "nConstituents": ak.to_numpy(ak.flatten(ak.num(constituents, axis=2))).astype(np.int32),
        }
        x = padded_constituents(ak.flatten(constituents, axis=1), model.n_constituents, cfg.input_scale_gev)
        network_jets = Jets(x, fatjet["pt"], fatjet["eta"], fatjet["phi"], fatjet["mass"], fatjet["nConstituents"],
                            cfg.input_scale_gev)
        seed = chunk_seed(self.seed, meta["filename"], meta["entrystart"])
        pred = model.predict(network_jets, self.samples, seed)
        fatjet.update({
            "ptPred": pred["mean"],
            "sigmaStoch": pred["sigma_stoch"],
            "sigmaPred": pred["sigma_pred"],
            "sigmaTot": pred["sigma_tot"],
            "ptMode": pred["mode"],
            "ptLow68": pred["low"],
            "ptHigh68": pred["high"],
        })
        if self.reference_dir:
            ref = cached_model(self.reference_dir).predict(network_jets, self.samples, seed)
            fatjet["sigmaCal"] = sigma_cal(pred["sigma_stoch"], ref["sigma_stoch"])
        fatjet["inTrainingRange"] = ak.to_numpy(ak.flatten(jet_acceptance(jets, cfg)[1]))
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
