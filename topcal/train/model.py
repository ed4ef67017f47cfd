"""A trained model loaded back: T weight samples per jet -> per-jet pT and its uncertainties (GeV).

The model takes :class:`topcal.train.inputs.Jets` (padded constituents and jet kinematics), encodes them
as in training, and for the Bayesian network draws T weight samples from the posterior, evaluated in one
batched pass (:func:`topcal.train.network.sample_outputs`); for the ensemble the members are the samples.
A response model's outputs are multiplied by pT,j. :meth:`TrainedModel.predict` returns, per jet, ``mean``
(<pT>), ``sigma_stoch``, ``sigma_pred``, ``sigma_tot``, ``mode`` and the 68% interval ``low``..``high``
(:func:`summarize`).
One fixed posterior: with ``samples = T`` and ``seed = S`` the model is one set of T weight draws
(:meth:`TrainedModel.draws`, drawn once per model and cached), used for every jet of every call, so a jet's
numbers depend neither on the jets evaluated with it nor on how a file is chunked.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from topcal.config import TrainConfig
from topcal.errors import InputFileError
from topcal.train.backend import deterministic  # TensorFlow set up before use
from topcal.train.inputs import Jets, Standardiser, encode
from topcal.train.likelihood import mixture_params_np, summarize
from topcal.train.model_dir import read_meta
from topcal.train.recalibration import WidthCalibration, stretch


@dataclass
class TrainedModel:
    path: Path
    meta: dict
    networks: list
    standardiser: Standardiser | None = None  # the input statistics of model.json, built once at load
    _draws: dict = field(default_factory=dict, repr=False)  # (T, seed) -> the weight draws (posterior_draws)

    @property
    def config(self) -> TrainConfig:
        return model_config(self.meta)

    @property
    def n_constituents(self) -> int:
        """Constituents per jet in the training dataset (the stored ones; the network may use fewer)."""
        return int(self.meta["preprocessing"]["n_constituents"])

    @property
    def is_ensemble(self) -> bool:
        return self.meta["kind"] == "ensemble"

    def check_input(self, jets: Jets, source: str = "input") -> None:
        c = jets.constituents
        if c.ndim != 3 or c.shape[1:] != (self.n_constituents, 4):
            raise InputFileError(f"{source}: jets have shape {c.shape[1:]}, the model {self.path} expects "
                                 f"({self.n_constituents}, 4) (constituents x (E, px, py, pz))")

    def encode(self, jets: Jets, keep_subjets: bool = False) -> dict[str, np.ndarray]:
        """The network's input arrays for ``jets``, scaled as in training (:func:`topcal.train.inputs.encode`;
        ``keep_subjets``: with the jets' exclusive-kT subjet members, ``subjets``, for the jet-frame inputs)."""
        self.check_input(jets)
        cfg = self.config
        return encode(jets, cfg.inputs, cfg.n_constituents, self.standardiser, keep_subjets)

    def posterior_key(self, samples: int, seed: int) -> tuple[int, int]:
        """``(T, seed)`` that identify the weight draws (:func:`topcal.train.variations.posterior_key`)."""
        from topcal.train.variations import posterior_key

        return posterior_key(self.meta, samples, seed)

    def draws(self, samples: int, seed: int) -> tuple[tuple, tuple]:
        """The T = ``samples`` weight draws of the Bayesian network's Flipout layers from ``seed`` (every
        layer, or the head only when Phi is a point estimate; :func:`topcal.train.network.posterior_draws`),
        drawn at the first call and kept: one fixed set per ``(samples, seed)`` for every jet. At most 4 sets
        are kept."""
        from topcal.train.network import posterior_draws

        key = (int(samples), int(seed))
        if key not in self._draws:
            if len(self._draws) >= 4:
                self._draws.pop(next(iter(self._draws)))
            self._draws[key] = posterior_draws(self.networks[0], key[0], np.random.default_rng(key[1]))
        return self._draws[key]

    @property
    def width_calibration(self) -> WidthCalibration:
        """The recalibration of the predictive widths fitted on the calibration jets
        (:mod:`topcal.train.recalibration`): a factor per pT,j, or one factor for every jet (1 when off)."""
        return WidthCalibration.from_calibration(self.meta.get("calibration"))

    @property
    def width_factor(self) -> float:
        """The global recalibration factor of the predictive widths (1 when off); the factor applied to a jet
        is :meth:`width_factors`, which depends on pT,j when the model was recalibrated per pT,j."""
        return float(self.meta.get("calibration", {}).get("width_factor", 1.0))

    def width_factors(self, pt_jet) -> np.ndarray:
        """The recalibration factor applied to jets of pT,j ``pt_jet`` (GeV)."""
        return self.width_calibration(pt_jet)

    def sample(self, jets: Jets, samples: int = 50, seed: int = 0, batch_jets: int = 65536, raw: bool = False,
               arrays: dict[str, np.ndarray] | None = None):
        """Mixture parameters (weights, means in GeV, sigmas in GeV), each ``(T, n_jets, K)``: T weight samples
        of the Bayesian network, drawn from ``seed`` and evaluated in one batched pass
        (:func:`topcal.train.network.sample_outputs` with the fixed draws :meth:`draws`), or the ensemble's
        members. With a recalibrated model (and not ``raw``) the
        whole predictive distribution of each jet is stretched about its mean by its factor
        (:meth:`width_factors`): every component's distance from the jet's mean and every width (so
        sigma_stoch, sigma_pred, sigma_tot and the intervals) scale by the factor, the mean stays. ``arrays``:
        the jets' input arrays (:meth:`encode`), when already encoded."""
        deterministic()
        if arrays is None:
            arrays = self.encode(jets)
        arrays = {k: v for k, v in arrays.items() if k != "subjets"}
        cfg, pre = self.config, self.meta["preprocessing"]
        n = len(jets)
        if self.is_ensemble:  # the members are the samples
            raws = np.stack([np.concatenate([net({k: v[i:i + batch_jets] for k, v in arrays.items()},
                                                 training=False).numpy() for i in range(0, n, batch_jets)]) if n else
                             np.zeros((0, net.output_shape[-1]), np.float32) for net in self.networks])
        else:
            from topcal.train.network import sample_outputs

            raws = sample_outputs(self.networks[0], cfg, arrays, samples, None, draws=self.draws(samples, seed))
        outputs = raws.astype(np.float64)
        w, mu, sigma = mixture_params_np(outputs, cfg.components, cfg.sigma_floor)
        mu = mu * pre["target_scale"] + pre["target_mean"]
        sigma = sigma * pre["target_scale"]
        if pre["target"] == "response":  # pT,t = response x pT,j: the mean and every width scale with pT,j
            scale = np.asarray(jets.pt, dtype=np.float64)[None, :, None]
            mu, sigma = mu * scale, sigma * scale
        calibration = self.width_calibration
        if raw or calibration.is_identity:
            return w, mu, sigma
        return stretch(w, mu, sigma, calibration(jets.pt))

    def predict(self, jets: Jets, samples: int = 50, seed: int = 0, raw: bool = False,
                arrays: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Per-jet summaries in GeV (see the module docstring); ``raw``: without the recalibration; ``arrays``:
        the jets' input arrays (:meth:`encode`), when already encoded."""
        return summarize(*self.sample(jets, samples, seed, raw=raw, arrays=arrays), window=self.label_window,
                         moments_window=self.moments_window)

    @property
    def label_window(self) -> tuple[float, float] | None:
        """The pT,t(truth) window (GeV) that held every training label, which bounds the intervals (None:
        the dataset's window was open or did not hold them all, or a model written without it)."""
        window = self.meta.get("validity", {}).get("label_window_gev")
        return (float(window[0]), float(window[1])) if window else None

    @property
    def moments_window(self) -> tuple[float, float] | None:
        """The window whose truncation gives the predictive mean and sigmas
        (:func:`topcal.train.likelihood.draw_moments`): the label window of a model that records
        ``validity.mean_in_label_window`` (every model trained since), None for a model written before (its
        moments are those of the untruncated mixtures, as when it was written)."""
        return self.label_window if self.meta.get("validity", {}).get("mean_in_label_window") else None


@contextlib.contextmanager
def _quiet_absl():
    from absl import logging as absl_logging

    before = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(before)


def model_config(meta: dict) -> TrainConfig:
    """The training configuration a ``model.json`` records. A model written before ``calibration_jets``
    existed was calibrated on its validation jets: its missing key reads as ``"validation"``, not as
    today's default."""
    config = dict(meta["config"])
    config.setdefault("calibration_jets", "validation")
    return TrainConfig.from_dict(config)


def load_model(path: str | Path) -> TrainedModel:
    """Load a model directory written by ``topcal train``."""
    from topcal.train.network import build_network

    path = Path(path)
    meta = read_meta(path)
    cfg = model_config(meta)
    shapes = {k: tuple(v) for k, v in meta["preprocessing"]["input_shapes"].items()}
    n_train = int(meta["training"]["members"][0]["n_train"])
    try:
        standardiser = Standardiser.from_dict(meta["preprocessing"]["standardiser"])
    except ValueError as exc:
        raise InputFileError(f"{path}: {exc}") from None
    networks = []
    for name in meta["weights"]:
        net = build_network(cfg, shapes, n_train, bayesian=meta["kind"] != "ensemble")
        try:
            with _quiet_absl():  # "Skipping variable loading for optimizer": inference needs no optimizer state
                net.load_weights(str(path / name))
        except Exception as exc:  # h5py / keras raise many types for damaged files
            raise InputFileError(f"{path / name}: cannot load weights ({exc})") from None
        networks.append(net)
    return TrainedModel(path, meta, networks, standardiser)
