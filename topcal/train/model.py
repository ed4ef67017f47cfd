"""A trained model loaded back: T weight samples per jet -> per-jet pT and its uncertainties (GeV).

For the Bayesian network each forward pass draws new weights (Flipout); for the ensemble the members are
the samples. :meth:`TrainedModel.predict` returns, per jet, ``mean`` (<pT>), ``sigma_stoch``,
``sigma_pred``, ``sigma_tot``, ``mode`` and the 68% interval ``low``..``high`` (:func:`summarize`).
A fixed ``seed`` gives identical numbers on every call.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import topcal.train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from topcal.config import TrainConfig
from topcal.errors import InputFileError
from topcal.train.likelihood import mixture_params_np, summarize
from topcal.train.model_dir import read_meta


@dataclass
class TrainedModel:
    path: Path
    meta: dict
    networks: list

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.meta["config"])

    @property
    def n_constituents(self) -> int:
        return int(self.meta["preprocessing"]["n_constituents"])

    @property
    def is_ensemble(self) -> bool:
        return self.meta["kind"] == "ensemble"

    def check_input(self, x: np.ndarray, source: str = "input") -> None:
        if x.ndim != 3 or x.shape[1:] != (self.n_constituents, 4):
            raise InputFileError(f"{source}: jets have shape {x.shape[1:]}, the model {self.path} expects "
                                 f"({self.n_constituents}, 4) (constituents x (E, px, py, pz))")

    def sample(self, x: np.ndarray, samples: int = 50, seed: int = 0, batch_jets: int = 65536):
        """Mixture parameters (weights, means in GeV, sigmas in GeV), each ``(T, n_jets, K)``."""
        import tensorflow as tf

        self.check_input(x)
        cfg = self.config
        pre = self.meta["preprocessing"]
        tf.keras.utils.set_random_seed(seed)
        passes = [(net, 1) for net in self.networks] if self.is_ensemble else [(self.networks[0], samples)]
        raws = []
        for net, repeat in passes:
            for _ in range(repeat):
                raws.append(np.concatenate([net(x[i:i + batch_jets], training=False).numpy()
                                            for i in range(0, len(x), batch_jets)]) if len(x) else
                            np.zeros((0, net.output_shape[-1]), np.float32))
        raw = np.stack(raws).astype(np.float64)
        w, mu, sigma = mixture_params_np(raw, cfg.components, cfg.sigma_floor)
        scale = pre["label_scale_gev"]
        return w, mu * scale + pre["label_mean_gev"], sigma * scale

    def predict(self, x: np.ndarray, samples: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
        """Per-jet summaries in GeV (see the module docstring)."""
        return summarize(*self.sample(x, samples, seed))


@contextlib.contextmanager
def _quiet_absl():
    from absl import logging as absl_logging

    before = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(before)


def load_model(path: str | Path) -> TrainedModel:
    """Load a model directory written by ``topcal train``."""
    from topcal.train.network import build_bnn, build_deterministic

    path = Path(path)
    meta = read_meta(path)
    cfg = TrainConfig.from_dict(meta["config"])
    n_cons = int(meta["preprocessing"]["n_constituents"])
    n_train = int(meta["training"]["members"][0]["n_train"])
    build = build_deterministic if meta["kind"] == "ensemble" else build_bnn
    networks = []
    for name in meta["weights"]:
        net = build(cfg, n_cons, n_train)
        try:
            with _quiet_absl():  # "Skipping variable loading for optimizer": inference needs no optimizer state
                net.load_weights(str(path / name))
        except Exception as exc:  # h5py / keras raise many types for damaged files
            raise InputFileError(f"{path / name}: cannot load weights ({exc})") from None
        networks.append(net)
    return TrainedModel(path, meta, networks)
