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
are extrapolations), ``sigmaCal`` when built with a ``reference`` (unsmeared) model, and the statistical
eigen-variations ``ptPred_stat0`` .. ``ptPred_stat<K-1>`` (shifts of ptPred in GeV, each fully correlated
across jets: :mod:`topcal.train.variations`) when the model stores them for ``samples`` and ``seed``; a model
trained with ``--label-systematics`` adds its own fields (:mod:`topcal.predict.label_systematics`); and the detector
variations ``ptPred_<source>Up``/``Down`` and ``pt_<source>Up``/``Down``
(:mod:`topcal.predict.detector_systematics`; ``systematics=False`` skips them).

One fixed posterior: ``samples = T`` and ``seed = S`` select one set of T weight draws, used for every jet
of every chunk, so the same jet gets the same numbers for any chunk size, file order, executor and worker
count, here and in ``topcal predict --seed S``. ``prior``: the analysis's pT,t spectrum
(:mod:`topcal.predict.prior`); without it the outputs are the likelihood of pT,t over the training window
(a flat training prior).

It is picklable and small: the model is loaded lazily, once per worker process.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from topcal.errors import InputFileError
from topcal.predict.prior import Prior, summaries
from topcal.train import variations as stat

_MODELS: dict[str, object] = {}
_VARIATIONS: dict[tuple, object] = {}

FIELDS = ("pt", "eta", "phi", "mass", "nConstituents", "ptPred", "sigmaStoch", "sigmaPred", "sigmaTot", "ptMode",
          "ptLow68", "ptHigh68", "inTrainingRange")


def cached_model(path: str):
    """The model at ``path``, loaded at most once per process, and again when the folder was replaced or
    rewritten (:func:`topcal.train.model_dir.model_stamp`)."""
    from topcal.train.model_dir import model_stamp

    key = (path, model_stamp(path))
    if _MODELS.get(path, (None,))[0] != key:
        from topcal.train.model import load_model

        _MODELS[path] = (key, load_model(path))
    return _MODELS[path][1]


def cached_variations(model_dir: str, key: tuple[int, int]):
    """The stored eigen-variations ``key`` = (T, seed) of the model at ``model_dir``, loaded once per process."""
    if (model_dir, key) not in _VARIATIONS:
        _VARIATIONS[(model_dir, key)] = stat.load(model_dir, *key)
    return _VARIATIONS[(model_dir, key)]


class Calibrator:
    """Per-jet calibrated pT and its uncertainties for DELPHES NanoEvents (see the module docstring).

    ``model_dir``: a ``topcal train`` model; ``samples``: weight samples T per jet (>= 2); ``seed``: the
    sampling seed; ``reference``: an unsmeared model of the same inputs, for ``sigmaCal``; ``prior``: the
    analysis's pT,t spectrum (``FILE.root:HIST``, a ``hist`` histogram or ``(values, edges)`` in GeV);
    ``stat_variations``: None gives the statistical variations when the model stores them for ``(samples,
    seed)``, True requires them (an error names the call that computes them), False leaves them out;
    ``systematics``: the detector sources (``None``: the defaults, ``False``: none, ``{name: size}``: the
    defaults with these sizes; see :func:`topcal.predict.detector_systematics.resolve_sizes`). Models trained
    on towers get no detector variations (the sources scale energy-flow objects).
    """

    def __init__(self, model_dir, samples: int = 50, seed: int = 0, reference=None, prior=None,
                 stat_variations: bool | None = None, systematics=None):
        from topcal.predict.detector_systematics import resolve_sizes
        from topcal.predict.label_systematics import label_fields
        from topcal.seeds import check_seed
        from topcal.train.model_dir import check_reference, model_process_config, read_meta
        from topcal.train.spectrum import read_spectrum

        if samples < 2:
            raise InputFileError(f"samples: {samples} must be >= 2")
        check_seed(seed)
        self.model_dir = str(Path(model_dir).absolute())
        self.reference_dir = str(Path(reference).absolute()) if reference else None
        meta = read_meta(self.model_dir)  # a clear error now, not in a worker later
        if self.reference_dir:
            check_reference(model_dir, reference)
        self.config = model_process_config(meta, model_dir)
        self.samples, self.seed = int(samples), int(seed)
        self.systematics = {} if self.config.use_towers else resolve_sizes(systematics)

        self.label_fields = label_fields(self.model_dir, reference)  # a --label-systematics model's own fields
        self.prior = Prior.from_input(prior) if prior is not None else None
        self.spectra = {d: read_spectrum(d) for d in (self.model_dir, self.reference_dir) if d and self.prior}
        found = _stat_variations(self.model_dir, meta, self.samples, self.seed, stat_variations)
        self.stat_key = (found.samples, found.seed) if found else None  # the coefficients: loaded per worker
        self.stat_summary = found.to_dict() if found else None

    @property
    def stat_fields(self) -> tuple[str, ...]:
        """``ptPred_stat0`` .. ``ptPred_stat<K-1>``: the statistical eigen-variations (GeV)."""
        return tuple(f"ptPred_stat{k}" for k in range(self.stat_summary["k"])) if self.stat_summary else ()

    @property
    def fields(self) -> tuple[str, ...]:
        from topcal.predict.detector_systematics import field_names

        return (FIELDS + (("sigmaCal",) if self.reference_dir else ()) + self.stat_fields + self.label_fields
                + field_names(self.systematics))

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
        from topcal.train.likelihood import sigma_cal, untruncated

        cfg = self.config
        model = cached_model(self.model_dir)
        try:
            inputs = eflow_inputs(events, use_towers=cfg.use_towers, leptons=cfg.jet_leptons)
        except (ak.errors.FieldNotFoundError, AttributeError) as exc:  # events of another schema
            raise InputFileError(f"events: not DELPHES events of topcal's schema (TopcalDelphesSchema) with the "
                                 f"collections the model needs ({exc})") from None
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
        # the nominal jets encoded once: for the prediction and, with their subjet members, for the variations
        encoded = model.encode(network_jets, keep_subjets=bool(self.systematics))
        pred = self._summaries(self.model_dir, network_jets, encoded)
        table.update({"ptPred": pred["mean"], "sigmaStoch": pred["sigma_stoch"], "sigmaPred": pred["sigma_pred"],
                      "sigmaTot": pred["sigma_tot"], "ptMode": pred["mode"], "ptLow68": pred["low"],
                      "ptHigh68": pred["high"]})
        table["inTrainingRange"] = ak.to_numpy(ak.flatten(jet_acceptance(jets, cfg)[1]))
        if self.reference_dir:
            ref = self._summaries(self.reference_dir, network_jets)
            table["sigmaCal"] = sigma_cal(untruncated(pred, "sigma_stoch"), untruncated(ref, "sigma_stoch"))
        if self.stat_key:
            shifts = cached_variations(self.model_dir, self.stat_key).shifts(pred["draw_means"])
            table.update(zip(self.stat_fields, shifts))
        if self.label_fields:
            from topcal.predict.label_systematics import label_systematics

            raw = None if self.prior is None else \
                model.predict(network_jets, self.samples, self.seed, raw=True, arrays=encoded)["sigma_stoch"]
            table.update(label_systematics(self.model_dir, network_jets, self.samples, self.seed, nominal=pred,
                                           raw_stoch=raw))
        if self.systematics:
            table.update(detector_systematics.variations(model, network_jets, pred["mean"], self.systematics,
                                                         self.seed, sums=detector_systematics.origin_sums(per_jet),
                                                         encoded=encoded))
        return counts, table, jets

    def _summaries(self, model_dir: str, jets, arrays: dict | None = None) -> dict:
        """The per-jet summaries of one model (:func:`topcal.predict.prior.summaries`) for the fixed posterior;
        ``arrays``: the jets encoded for this model, when already encoded."""
        model = cached_model(model_dir)
        w, mu, sigma = model.sample(jets, self.samples, self.seed, arrays=arrays)
        return summaries(w, mu, sigma, self.prior, self.spectra.get(model_dir), window=model.label_window,
                         moments_window=model.moments_window)

    def describe(self) -> dict:
        """What a friend file records about the prediction: T, seed, the prior and the statistical variations."""
        return {"samples": self.samples, "seed": self.seed,
                "prior": self.prior.to_dict() if self.prior else None,
                "stat_variations": self.stat_summary}

    def constituents(self, events) -> ak.Array:
        """The constituents of the same fat jets (``n_events * var(jets) * var``, pT-ordered), clustered as
        for the calibration: four-vectors (``px``, ``py``, ``pz``, ``E`` in GeV) and what the detector says
        each one is (``origin``, ``charge``, ``lepton``: :data:`topcal.process.fatjets.CONSTITUENT_INFO`)."""
        from topcal.process.fatjets import cluster, eflow_inputs

        cfg = self.config
        _, constituents = cluster(eflow_inputs(events, use_towers=cfg.use_towers, leptons=cfg.jet_leptons),
                                  cfg.jet_radius, cfg.cluster_pt_min_gev)
        return constituents[ak.argsort(constituents.rho, axis=-1, ascending=False)]

    def __repr__(self) -> str:
        return f"Calibrator({self.model_dir!r}, samples={self.samples}, seed={self.seed})"


def _stat_variations(model_dir: str, meta: dict, samples: int, seed: int, wanted: bool | None):
    """The stored eigen-variations for the fixed posterior ``(samples, seed)`` (see :class:`Calibrator`)."""
    if wanted is False:
        return None
    key = stat.posterior_key(meta, samples, seed)
    found = stat.load(model_dir, *key)
    if found is None and wanted:
        have = ", ".join(f"samples={t} seed={s}" for t, s in stat.stored(model_dir)) or "none"
        raise InputFileError(f"{model_dir}: no statistical variations for samples={key[0]} seed={key[1]} "
                             f"(stored: {have}); `topcal variations {model_dir} --samples {key[0]} "
                             f"--seed {key[1]}` computes them")
    return found
