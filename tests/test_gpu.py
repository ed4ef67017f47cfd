"""On a GPU (``pip install -e ".[gpu]"``): training and prediction run there and give the CPU's numbers
within float tolerance. Skipped where TensorFlow sees no GPU."""

from __future__ import annotations

import numpy as np
import pytest
from toys import toy_dataset

import topcal.train.backend  # noqa: F401  (TensorFlow set up before use)
from topcal.config import TrainConfig
from topcal.train.data import load_rows, split_rows
from topcal.train.fit import train
from topcal.train.model import load_model

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.skipif(not tf.config.list_physical_devices("GPU"), reason="TensorFlow sees no GPU")


def test_gpu_training_and_prediction_match_the_cpu(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 3000, seed=4)
    cfg = TrainConfig(epochs=3, phi_hidden=[32, 32], hidden=[32, 32])
    with tf.device("/GPU:0"):
        train(ds.path, tmp_path / "gpu", cfg, progress=False)
    with tf.device("/CPU:0"):
        train(ds.path, tmp_path / "cpu", cfg, progress=False)
    _, test = split_rows(ds.n_jets, 0.2)
    jets = load_rows(ds, test)[0].jets
    model = load_model(tmp_path / "gpu")
    with tf.device("/GPU:0"):
        on_gpu = model.predict(jets, samples=10, seed=1)
    with tf.device("/CPU:0"):
        on_cpu = model.predict(jets, samples=10, seed=1)
    for key in ("mean", "sigma_tot"):
        np.testing.assert_allclose(on_gpu[key], on_cpu[key], rtol=1e-3)
    cpu_model = load_model(tmp_path / "cpu").predict(jets, samples=10, seed=1)
    # two trainings on different devices: the same fit within float round-off accumulated over 3 epochs
    assert np.sqrt(np.mean((cpu_model["mean"] - on_cpu["mean"]) ** 2)) < 0.02 * np.mean(on_cpu["mean"])
