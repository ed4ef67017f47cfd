"""The coffea processor of ``topcal process``: DELPHES events -> truth-matched R = 1.2 fat jets.

Per chunk it selects the energy-flow objects, clusters, matches to the truth tops, selects, pads the
constituents and fills the control histograms; the selected jets go to one staged Parquet part per chunk
(so memory stays bounded by a chunk), the accumulator carries the histograms, the cut flow and the list
of staged parts. Flattening in pT,t(truth) needs the whole sample's histogram, so it happens after the
run (:func:`topcal.process.run.finalize`), with a per-jet uniform number drawn here.

The staging directory must be visible to every worker (local disk for the iterative and futures executors
and a LocalCluster; a shared file system for a batch dask cluster).
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
from coffea import processor

from topcal.config import ProcessConfig
from topcal.io.dataset import write_part
from topcal.process.fatjets import cluster, eflow_inputs
from topcal.process.flatten import jet_uniforms
from topcal.process.histograms import fill_histograms, make_histograms
from topcal.process.selection import jet_acceptance, jet_table
from topcal.process.truth import match_tops, matched_label_pt, truth_tops

CUTFLOW = (
    "events",
    "events with a truth top",
    "jets above clustering threshold",
    "jets with |eta| < max",
    "jets in pT,j window",
    "jets truth-matched",
    "jets with finite pT,t(truth) in window",
)


def staged_name(file_index: int, entry_start: int) -> str:
    """Name of the staged part of one chunk; sorting the names gives file order, then entry order."""
    return f"{file_index:05d}-{entry_start:012d}.parquet"


class FatJetDatasetProcessor(processor.ProcessorABC):
    """Truth-matched fat jets with padded constituents, one staged Parquet part per chunk.

    ``files`` maps each input file name (as in the fileset) to its index; ``staging_dir`` receives the parts.
    """

    def __init__(self, config: ProcessConfig, files: dict[str, int], staging_dir: str | Path):
        self.config = config
        self.files = dict(files)
        self.staging_dir = str(staging_dir)
        self.flatten_edges = np.arange(
            config.jet_pt_min_gev, config.jet_pt_max_gev + 0.5 * config.flatten_bin_gev, config.flatten_bin_gev
        )

    def process(self, events):
        cfg = self.config
        meta = events.metadata
        entry = meta["entrystart"] + np.arange(len(events), dtype=np.int64)

        inputs = eflow_inputs(events, use_towers=cfg.use_towers, leptons=cfg.jet_leptons)
        jets, constituents = cluster(inputs, cfg.jet_radius, cfg.cluster_pt_min_gev)
        tops = truth_tops(events.Particle)
        top_index, matched = match_tops(jets, tops, cfg.jet_radius, cfg.match_decay_products)
        central, in_window = jet_acceptance(jets, cfg)
        label_pt = matched_label_pt(tops, top_index, cfg.top_label)  # NaN where unmatched or not finite
        in_truth_window = matched & (label_pt >= cfg.truth_pt_min_gev) & (label_pt < cfg.truth_pt_max_gev)
        selected = in_window & in_truth_window if cfg.truth_match else in_window

        table = jet_table(jets, constituents, selected, entry, ak.to_numpy(events.Event.Weight), cfg, tops, top_index)
        table["file"] = np.full(len(table["pt"]), meta["filename"], dtype=object)
        table["flatten_uniform"] = jet_uniforms(cfg.seed, meta["filename"], table["entry"], table["jet_index"])

        staged = []
        if len(table["pt"]):
            name = staged_name(self.files[meta["filename"]], meta["entrystart"])
            write_part(Path(self.staging_dir) / name, table, compression="lz4")  # read back once, soon
            staged.append({"name": name, "jets": len(table["pt"])})

        cutflow = {
            "events": len(events),
            "events with a truth top": int(ak.sum(ak.num(tops) > 0)),
            "jets above clustering threshold": int(ak.sum(ak.num(jets))),
            "jets with |eta| < max": int(ak.sum(central)),
            "jets in pT,j window": int(ak.sum(in_window)),
            "jets truth-matched": int(ak.sum(in_window & matched)),
            "jets with finite pT,t(truth) in window": int(ak.sum(in_window & in_truth_window)),
        }
        histograms = fill_histograms(self.empty_histograms(), table)
        return {"cutflow": cutflow, "histograms": histograms, "staged": staged}

    def empty_histograms(self):
        return make_histograms(self.flatten_edges)

    def postprocess(self, accumulator):
        return accumulator
