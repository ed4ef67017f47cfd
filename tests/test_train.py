"""The Bayesian network on toys with known answers: noise, training size, mixtures, label smearing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from toys import toy_dataset

from topcal.config import TrainConfig
from topcal.errors import ConfigError, InputFileError
from topcal.train.data import load_rows, split_rows
from topcal.train.fit import train
from topcal.train.model import load_model

FAST = dict(hidden=[32, 32], learning_rate=3e-3, prior_sigma=1.0, patience=5)


def _test_arrays(ds):
    _, test = split_rows(ds.n_jets, 0.2)
    arrays, extra = load_rows(ds, test, extra=("feature",))
    return arrays, extra["feature"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """25k toy jets with noise 20 + 40 a GeV, and a Gaussian network trained on the 20k trainable ones."""
    base = tmp_path_factory.mktemp("toy")
    ds = toy_dataset(base / "ds", 25_000, seed=1)
    summary = train(ds.path, base / "model", TrainConfig(epochs=25, **FAST), progress=False)
    return ds, base / "model", summary


def test_sigma_stoch_recovers_the_noise(toy):
    ds, model_dir, _ = toy
    x, a = _test_arrays(ds)
    pred = load_model(model_dir).predict(x.x, samples=30, seed=1)
    for lo in (0.0, 0.45, 0.9):
        sel = (a >= lo) & (a < lo + 0.1)
        true_noise = np.mean(20.0 + 40.0 * a[sel])
        assert pred["sigma_stoch"][sel].mean() == pytest.approx(true_noise, rel=0.10)
        assert abs(np.mean(pred["mean"][sel] - x.pt_truth[sel])) < 0.2 * true_noise
    # the interval covers about 68% of the test jets
    inside = (x.pt_truth >= pred["low"]) & (x.pt_truth <= pred["high"])
    assert inside.mean() == pytest.approx(0.68, abs=0.03)
    assert np.mean(pred["sigma_pred"]) < 0.2 * np.mean(pred["sigma_stoch"])


def test_sigma_pred_shrinks_with_ten_times_more_data(toy, tmp_path):
    ds, model_dir, _ = toy
    x, _ = _test_arrays(ds)
    train(ds.path, tmp_path / "small", TrainConfig(epochs=25, train_size=2000, **FAST), progress=False)
    big = load_model(model_dir).predict(x.x, samples=30, seed=2)
    small = load_model(tmp_path / "small").predict(x.x, samples=30, seed=2)
    assert np.mean(big["sigma_pred"]) < 0.8 * np.mean(small["sigma_pred"])


def test_round_trip_and_fixed_seed(toy):
    ds, model_dir, summary = toy
    x, _ = _test_arrays(ds)
    one = load_model(model_dir).predict(x.x[:500], samples=10, seed=7)
    two = load_model(model_dir).predict(x.x[:500], samples=10, seed=7)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])
    other = load_model(model_dir).predict(x.x[:500], samples=10, seed=8)
    assert not np.array_equal(one["mean"], other["mean"])  # the weights really are sampled
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["config"]["hidden"] == [32, 32] and meta["dataset"]["n_jets"] == 25_000
    assert summary.n_train + summary.n_val == 20_000


def test_two_gaussians_fit_a_bimodal_label(tmp_path):
    """Label 600 or 750 GeV (0.7 / 0.3, width 25): mode and 68% band match the true distribution."""
    ds = toy_dataset(tmp_path / "ds", 15_000, seed=3, bimodal=True)
    train(ds.path, tmp_path / "m", TrainConfig(epochs=20, likelihood="gmm2", **FAST), progress=False)
    x, _ = _test_arrays(ds)
    pred = load_model(tmp_path / "m").predict(x.x[:400], samples=20, seed=1)
    grid = np.linspace(400, 950, 5501)
    dens = 0.7 * np.exp(-0.5 * ((grid - 600) / 25) ** 2) + 0.3 * np.exp(-0.5 * ((grid - 750) / 25) ** 2)
    cdf = np.cumsum(dens) / dens.sum()
    end = np.searchsorted(cdf, cdf + 0.68)  # the shortest interval holding 68%
    ok = end < len(grid)
    start = np.argmin(np.where(ok, grid[np.minimum(end, len(grid) - 1)] - grid, np.inf))
    inside = grid[[start, end[start]]]
    assert np.median(pred["mode"]) == pytest.approx(600, abs=10)
    assert np.median(pred["low"]) == pytest.approx(inside.min(), abs=15)
    assert np.median(pred["high"]) == pytest.approx(inside.max(), abs=15)
    assert np.median(pred["mean"]) == pytest.approx(645, abs=10)


def test_label_smearing_adds_its_width_in_quadrature(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 25_000, seed=4, noise_gev=lambda a: np.full_like(a, 30.0))
    train(ds.path, tmp_path / "m", TrainConfig(epochs=25, smear=0.05, **FAST), progress=False)
    x, a = _test_arrays(ds)
    pred = load_model(tmp_path / "m").predict(x.x, samples=30, seed=1)
    for lo in (0.0, 0.9):
        sel = (a >= lo) & (a < lo + 0.1)
        expected = np.sqrt(30.0**2 + (0.05 * (600 + 200 * a[sel])) ** 2).mean()
        assert pred["sigma_stoch"][sel].mean() == pytest.approx(expected, rel=0.10)


def test_ensemble_members_give_the_spread(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 6000, seed=5)
    summary = train(ds.path, tmp_path / "ens", TrainConfig(epochs=4, ensemble=3, train_size=1500, **FAST),
                    progress=False)
    assert len(summary.members) == 3
    meta = json.loads((tmp_path / "ens" / "model.json").read_text())
    assert meta["kind"] == "ensemble" and meta["training"]["disjoint_subsamples"]
    x, _ = _test_arrays(ds)
    pred = load_model(tmp_path / "ens").predict(x.x[:200])
    assert np.all(pred["sigma_pred"] > 0) and np.all(np.isfinite(pred["sigma_tot"]))


def test_bad_inputs(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 300, seed=6)
    with pytest.raises(InputFileError, match="not a complete topcal model"):
        (tmp_path / "half").mkdir()
        load_model(tmp_path / "half")
    with pytest.raises(ConfigError, match="train_size: 5000 jets requested"):
        train(ds.path, tmp_path / "m", TrainConfig(train_size=5000), progress=False)
    bad = toy_dataset(tmp_path / "nan", 300, seed=6)
    table = bad.read()
    table["pt_truth"][17] = np.nan
    from topcal.io.dataset import write_dataset
    from topcal.config import ProcessConfig

    nan_ds = write_dataset(tmp_path / "nan2", table, ProcessConfig(max_constituents=4, flatten=False))
    with pytest.raises(InputFileError, match="'pt_truth' has non-finite values in 1 jets"):
        train(nan_ds.path, tmp_path / "m", TrainConfig(epochs=1), progress=False)
    assert not (tmp_path / "m").exists()
    with pytest.raises(InputFileError, match="dataset directory not found"):
        train(tmp_path / "nothing", tmp_path / "m", progress=False)


def test_resume_after_interruption(tmp_path, monkeypatch):
    """An interrupted training keeps its checkpoint in MODEL.partial; --resume finishes it."""
    import topcal.train.fit as fit

    ds = toy_dataset(tmp_path / "ds", 3000, seed=7)
    cfg = TrainConfig(epochs=4, patience=10, **{k: v for k, v in FAST.items() if k != "patience"})
    real_after_epoch = fit._after_epoch
    epochs_seen = []

    def crash_in_epoch_three(book, model, loss, val_loss):
        epochs_seen.append(book.state["epoch"] + 1)
        if epochs_seen[-1] == 3:
            raise KeyboardInterrupt
        real_after_epoch(book, model, loss, val_loss)

    monkeypatch.setattr(fit, "_after_epoch", crash_in_epoch_three)
    monkeypatch.setattr(fit, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every epoch
    with pytest.raises(KeyboardInterrupt):
        train(ds.path, tmp_path / "m", cfg, progress=False)
    assert not (tmp_path / "m").exists() and (tmp_path / "m.partial").exists()
    epochs_seen.clear()
    monkeypatch.setattr(fit, "_after_epoch", lambda *a: (epochs_seen.append(a[0].state["epoch"] + 1),
                                                          real_after_epoch(*a)))
    train(ds.path, tmp_path / "m", cfg, resume=True, progress=False)
    history = json.loads((tmp_path / "m" / "history.json").read_text())[0]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert epochs_seen == [3, 4]  # epochs 1 and 2 came from the checkpoint
    assert not (tmp_path / "m.partial").exists()


def test_nan_loss_stops_training_with_a_message(tmp_path):
    from types import SimpleNamespace

    import topcal.train.fit as fit

    state = {"epoch": 4, "history": [], "best_val_loss": 1.0, "best_epoch": 4, "wait": 0}
    book = SimpleNamespace(member=0, state=state, ckpt_dir=tmp_path / "ckpt", error=None)
    model = SimpleNamespace(stop_training=False)
    fit._after_epoch(book, model, float("nan"), 1.0)
    assert model.stop_training and state["epoch"] == 4
    assert isinstance(book.error, fit.TrainingDiverged)
    assert "loss became nan" in str(book.error) and "in epoch 5" in str(book.error)
