"""``topcal.Calibrator``: a trained model applied inside any coffea processor, and behind ``topcal predict``.

::

    import topcal

    class MyAnalysis(processor.ProcessorABC):
        def __init__(self, model_dir):
            self.calibrate = topcal.Calibrator(model_dir, samples=50, seed=0)
        def process(self, events):             # DELPHES NanoEvents (topcal's schema)
            jets = self.calibrate(events)      # per event: R = 1.2 fat jets with ptPred, sigmaTot, ...

The calibrator clusters the event's fat jets exactly as the model's training dataset was made (inputs,
radius, threshold: the configuration stored in the model), and gives every jet above the clustering
threshold its prediction, in GeV: ``pt``, ``eta``, ``phi``, ``mass``, ``nConstituents`` (the fat jet),
``ptPred`` (<pT>), ``sigmaStoch``, ``sigmaPred``, ``sigmaTot``, ``ptMode``, ``ptLow68``, ``ptHigh68``
(the 68% interval), ``inTrainingRange`` (pT,j and |eta| inside the training window: outside it the numbers
are extrapolations), ``sigmaCal`` when built with a ``reference`` (unsmeared) model, and the detector
variations ``ptPred_<source>Up``/``Down`` and ``pt_<source>Up``/``Down``
(:mod:`topcal.predict.detector_systematics`; ``systematics=False`` skips them).

It is picklable and small: the model is loaded lazily, once per worker process. The weight samples of a
chunk are drawn from a seed made of ``seed``, the file name and the chunk's first entry, so the same
model, ``samples``, ``seed`` and chunking give identical numbers in a user's processor, in ``topcal
predict --seed`` and on any executor.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import awkward as ak
import numpy as np

from topcal.errors import InputFileError

_MODELS: dict[str, object] = {}

FIELDS = ("pt", "eta", "phi", "mass", "nConstituents", "ptPred", "sigmaStoch", "sigmaPred", "sigmaTot", "ptMode",
          "ptLow68", "ptHigh68", "inTrainingRange")


def cached_model(path: str):
    """The model at ``path``, loaded at most once per process."""
    if path not in _MODELS:
        from topcal.train.model import load_model

        _MODELS[path] = load_model(path)
    return _MODELS[path]


def chunk_seed(seed: int, filename: str, entry_start: int) -> int:
    """Sampling seed of one chunk: the same chunk gives the same numbers on any executor."""
    return (seed * 1_000_003 + zlib.crc32(Path(filename).name.encode()) + entry_start) % 2**31


class Calibrator:
    """Per-jet calibrated pT and its uncertainties for DELPHES NanoEvents (see the module docstring).

    ``model_dir``: a ``topcal train`` model; ``samples``: weight samples T per jet (>= 2); ``seed``: the
    sampling seed; ``reference``: an unsmeared model of the same inputs, for ``sigmaCal``; ``systematics``:
    the detector sources (``None``: the defaults, ``False``: none, ``{name: size}``: the defaults with
    these sizes; see :func:`topcal.predict.detector_systematics.resolve_sizes`). Models trained on towers
    get no detector variations (the sources scale energy-flow objects).
    """

    def __init__(self, model_dir, samples: int = 50, seed: int = 0, reference=None, systematics=None):
        from topcal.predict.detector_systematics import resolve_sizes

        from topcal.predict.run import model_process_config
        from topcal.train.model_dir import read_meta

        if samples < 2:
            raise InputFileError(f"samples: {samples} must be >= 2")
        self.model_dir = str(Path(model_dir).absolute())
        self.reference_dir = str(Path(reference).absolute()) if reference else None
        meta = read_meta(self.model_dir)  # a clear error now, not in a worker later
        if self.reference_dir:
            ref = read_meta(self.reference_dir)
            if ref["preprocessing"]["n_constituents"] != meta["preprocessing"]["n_constituents"]:
                raise InputFileError(f"{reference}: reference model has {ref['preprocessing']['n_constituents']} "
                                     f"constituents, {model_dir} has {meta['preprocessing']['n_constituents']}")
        self.config = model_process_config(meta, model_dir)
        self.samples, self.seed = int(samples), int(seed)
        self.systematics = {} if self.config.use_towers else resolve_sizes(systematics)

    @property
    def fields(self) -> tuple[str, ...]:
        from topcal.predict.detector_systematics import field_names

        return FIELDS + (("sigmaCal",) if self.reference_dir else ()) + field_names(self.systematics)

    def __call__(self, events) -> ak.Array:
        """The fat jets of every event (``n_events * var * record`` with :attr:`fields`)."""
        counts, table, _ = self.flat(events)
        return ak.zip({k: ak.unflatten(np.asarray(v), counts) for k, v in table.items()})

    def flat(self, events):
        """``(jets per event, {field: numpy array over all jets}, clustered jets)``: the same numbers as
        :meth:`__call__`, flat, with the clustered Momentum4D jets (for truth matching)."""
        from topcal.predict import detector_systematics
        from topcal.process.fatjets import cluster, eflow_inputs, groomed, padded_jets
        from topcal.process.selection import jet_acceptance
        from topcal.train.inputs import Jets
        from topcal.train.likelihood import sigma_cal

        cfg = self.config
        model = cached_model(self.model_dir)
        inputs = eflow_inputs(events, use_towers=cfg.use_towers, leptons=cfg.jet_leptons)
        jets, constituents = cluster(inputs, cfg.jet_radius, cfg.cluster_pt_min_gev)
        counts = ak.to_numpy(ak.num(jets))
        flat_jets = ak.flatten(jets)
        table = {
            "pt": ak.to_numpy(flat_jets.rho),
            "eta": ak.to_numpy(flat_jets.eta),
            "phi": ak.to_numpy(flat_jets.phi),
            "mass": ak.to_numpy(flat_jets.tau),
            "nConstituents": ak.to_numpy(ak.flatten(ak.num(constituents, axis=2))).astype(np.int32),
        }
        per_jet = ak.flatten(constituents, axis=1)
        network_cons = groomed(per_jet, table["pt"], cfg.groom, cfg.trim_radius, cfg.trim_pt_fraction)
        x, info = padded_jets(network_cons, model.n_constituents, cfg.input_scale_gev)
        network_jets = Jets(x, table["pt"], table["eta"], table["phi"], table["mass"], table["nConstituents"],
                            cfg.input_scale_gev, **info)
        seed = self._seed(events)
        pred = model.predict(network_jets, self.samples, seed)
        table.update({"ptPred": pred["mean"], "sigmaStoch": pred["sigma_stoch"], "sigmaPred": pred["sigma_pred"],
                      "sigmaTot": pred["sigma_tot"], "ptMode": pred["mode"], "ptLow68": pred["low"],
                      "ptHigh68": pred["high"]})
        table["inTrainingRange"] = ak.to_numpy(ak.flatten(jet_acceptance(jets, cfg)[1]))
        if self.reference_dir:
            ref = cached_model(self.reference_dir).predict(network_jets, self.samples, seed)
            table["sigmaCal"] = sigma_cal(pred["sigma_stoch"], ref["sigma_stoch"])
        if self.systematics:
            table.update(detector_systematics.variations(model, network_jets, pred["mean"], self.systematics, seed,
                                                         sums=detector_systematics.origin_sums(per_jet)))
        return counts, table, jets

    def _seed(self, events) -> int:
        meta = getattr(events, "metadata", None) or {}
        if "filename" in meta and "entrystart" in meta:
            return chunk_seed(self.seed, meta["filename"], meta["entrystart"])
        return self.seed

    def __repr__(self) -> str:
        return f"Calibrator({self.model_dir!r}, samples={self.samples}, seed={self.seed})"
