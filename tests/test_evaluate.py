"""topcal evaluate: the report against the baseline, sigma_cal from a reference, input smearing, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from toys import toy_dataset

from topcal.config import ProcessConfig, TrainConfig
from topcal.errors import InputFileError
from topcal.io.dataset import write_dataset
from topcal.train.evaluate import evaluate
from topcal.train.fit import train
from topcal.train.metrics import crps_gaussian, linear_response

QUICK = dict(phi_hidden=[16], hidden=[16], epochs=3)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("evaluate")
    ds = toy_dataset(base / "ds", 3000, seed=2)
    train(ds.path, base / "nominal", TrainConfig(**QUICK), progress=False)
    train(ds.path, base / "smeared", TrainConfig(smear=0.1, **QUICK), progress=False)
    return ds, base


def test_report_tables_predictions_and_figures(models, tmp_path):
    ds, base = models
    summary = evaluate(base / "smeared", ds.path, tmp_path / "r", samples=8, reference=base / "nominal",
                       input_smear=0.05, progress=False)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["test_jets"] == 600 == summary.n_jets
    everything = report["network"]["all"]
    assert everything["jets"] == 600
    for key in ("rmse", "rmse_err", "sigma_stoch", "sigma_pred", "sigma_tot", "sigma_cal", "sigma_input",
                "coverage68", "coverage95", "pull_width", "pull_iqr", "crps"):
        assert np.isfinite(everything[key]), key
    assert 0 <= everything["coverage68"] <= 1
    # the toy's label is pT,j (1 + 0.3 a), a ~ U(0, 1) independent of pT,j: the linear baseline has slope 1.15
    assert report["baseline_fit"]["slope"] == pytest.approx(1.15, abs=0.1)
    assert "| 600..620 |" in (tmp_path / "r" / "report.md").read_text()
    assert {p.name for p in (tmp_path / "r" / "figures").iterdir()} >= {"predictive_distribution.png",
                                                                         "calibration_summary.png"}


def test_constituent_mismatch_is_refused(models, tmp_path):
    _, base = models
    table = {"constituents": np.zeros((50, 7, 4), np.float32), "pt": np.full(50, 600.0),
             "pt_truth": np.full(50, 610.0)}
    other = write_dataset(tmp_path / "other", table, ProcessConfig(max_constituents=7, flatten=False))
    with pytest.raises(InputFileError, match="jets have 7 constituents, the model .* was trained with 12"):
        evaluate(base / "nominal", other.path, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_metrics_closed_forms():
    rng = np.random.default_rng(0)
    truth = rng.normal(0.0, 2.0, 200_000)
    # CRPS of the true N(0, 2) averaged over its own draws: 2 / sqrt(pi)
    assert crps_gaussian(truth, np.zeros_like(truth), np.full_like(truth, 2.0)).mean() == pytest.approx(
        2.0 / np.sqrt(np.pi), rel=0.01)
    pt = rng.uniform(400, 1000, 10_000)
    a, b, rms = linear_response(pt, 30.0 + 1.05 * pt + rng.normal(0, 20.0, pt.size))
    assert (a, b, rms) == pytest.approx((30.0, 1.05, 20.0), rel=0.05)


def test_paired_bootstrap_recovers_the_spread_of_a_known_difference():
    """Two calibrations share a 30 GeV detector error, the second has 15 GeV more of its own: sqrt(MSE)
    30 and 33.5 GeV. Over 200 independent test sets of 4000 jets the paired bootstrap error matches the
    real spread of the difference, which is well below the two separate bootstrap errors combined."""
    from topcal.train.metrics import bootstrap_rmse, paired_rmse_difference

    rng = np.random.default_rng(5)
    diffs, errs, unpaired = [], [], []
    for trial in range(200):
        truth = rng.uniform(400.0, 1000.0, 4000)
        shared = rng.normal(0.0, 30.0, truth.size)
        a, b = truth + shared, truth + shared + rng.normal(0.0, 15.0, truth.size)
        d, err = paired_rmse_difference(truth, b, a, n_boot=200, seed=trial)
        diffs.append(d)
        errs.append(err)
        unpaired.append(np.hypot(bootstrap_rmse(truth, a, 200, trial), bootstrap_rmse(truth, b, 200, trial)))
    assert np.mean(diffs) == pytest.approx(np.sqrt(30.0**2 + 15.0**2) - 30.0, abs=0.05)
    assert np.mean(errs) == pytest.approx(np.std(diffs), rel=0.2)
    assert np.mean(errs) < 0.6 * np.mean(unpaired)
    assert paired_rmse_difference(truth, a, a) == (0.0, 0.0)


def test_width_factor_recovers_a_known_miscalibration():
    """Predicted densities of width 1 GeV on truth drawn with width 2 GeV: the global factor fitted from each
    jet's needed stretch is 2, and the raw figures are recovered from the stretched ones."""
    from scipy import stats

    from topcal.train.evaluate import unstretched
    from topcal.train.recalibration import global_calibration, needed_stretch

    rng = np.random.default_rng(1)
    truth = rng.normal(0.0, 2.0, 20_000)
    ones = np.ones((1, len(truth), 1))
    factor = global_calibration(needed_stretch(ones, 0 * ones, ones, truth)).factors[0]
    assert factor == pytest.approx(2.0, rel=0.03)
    half = np.full_like(truth, stats.norm.ppf(0.84))
    mean = np.zeros_like(truth)
    stretched = {"mean": mean, "sigma_stoch": 2 * np.ones_like(truth), "sigma_pred": np.zeros_like(truth),
                 "sigma_tot": 2 * np.ones_like(truth), "low": -2 * half, "high": 2 * half, "low95": -4 * half,
                 "high95": 4 * half}
    raw = unstretched(stretched, 2.0)
    np.testing.assert_allclose(raw["high"], half)
    np.testing.assert_allclose(raw["sigma_tot"], 1.0)


def test_library_refuses_too_few_weight_samples(tmp_path):
    from topcal.errors import ConfigError

    with pytest.raises(ConfigError, match="samples: 1 must be >= 2"):
        evaluate(tmp_path / "model", tmp_path / "dataset", tmp_path / "report", samples=1)


def test_markdown_report_holds_no_absolute_path(tmp_path, monkeypatch):
    from topcal.train.evaluate import shown_path

    monkeypatch.chdir(tmp_path)
    assert shown_path(str(tmp_path / "out" / "demo" / "model")) == "out/demo/model"
    assert shown_path("/elsewhere/runs/demo/model") == "demo/model"


def test_a_pt_dependent_width_factor_applies_in_predict_and_evaluate(models, tmp_path):
    """model.json's factor of pT,j stretches each jet by its own factor (linear between the points, flat
    beyond), the report's raw figures undo it, and an older model.json with the scalar alone applies the
    scalar to every jet."""
    import shutil

    from topcal.io.dataset import open_dataset
    from topcal.train.data import load_rows, split_rows
    from topcal.train.model import load_model

    ds, base = models
    model_dir = tmp_path / "m"
    shutil.copytree(base / "nominal", model_dir)
    meta = json.loads((model_dir / "model.json").read_text())
    by_pt = {"pt_jet_gev": [500.0, 900.0], "factor": [0.5, 2.0]}
    meta["calibration"].update(width_factor=1.25, width_factor_pt=by_pt)
    (model_dir / "model.json").write_text(json.dumps(meta))
    arrays, _ = load_rows(open_dataset(ds.path), split_rows(ds.n_jets, 0.2)[1])
    model = load_model(model_dir)
    raw, pred = model.predict(arrays.jets, 8, 0, raw=True), model.predict(arrays.jets, 8, 0)
    factor = np.interp(arrays.pt_jet, [500.0, 900.0], [0.5, 2.0])
    assert factor.min() == 0.5 and factor.max() == 2.0  # jets on both flat ends
    np.testing.assert_allclose(pred["mean"], raw["mean"])
    np.testing.assert_allclose(pred["sigma_tot"], factor * raw["sigma_tot"], rtol=1e-9)

    evaluate(model_dir, ds.path, tmp_path / "r", samples=8, progress=False, figures=False)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["width_factor_pt"] == by_pt and "x0.500 at pT,j 500 GeV" in (tmp_path / "r" / "report.md").read_text()
    assert report["network_raw"]["all"]["sigma_tot"] == pytest.approx(raw["sigma_tot"].mean(), rel=1e-9)
    assert report["network"]["all"]["sigma_tot"] == pytest.approx(pred["sigma_tot"].mean(), rel=1e-9)

    del meta["calibration"]["width_factor_pt"]  # as written before the factor of pT,j existed
    (model_dir / "model.json").write_text(json.dumps(meta))
    old = load_model(model_dir).predict(arrays.jets, 8, 0)
    np.testing.assert_allclose(old["sigma_tot"], 1.25 * raw["sigma_tot"], rtol=1e-9)
