"""``topcal evaluate``: a trained model on the test part of a dataset, against the fat-jet pT baseline.

Writes into ``REPORT_DIR``:

* ``report.json`` and ``report.md``: the figures of merit of :mod:`topcal.train.metrics` in 40 GeV pT,j
  bins, in the 600..620 GeV slice and for all jets; for the network, for the baseline (fat-jet pT with a
  linear response correction fitted on the training part), and with ``reference`` the calibration
  uncertainty sigma_cal = sqrt(sigma_stoch^2 - sigma_stoch,0^2); with ``input_smear`` f the input-smearing
  comparison, half the difference of the predictions on constituents scaled by 1 + f and 1 - f;
* ``predictions.parquet``: per test jet, pT,j, pT,t(truth), the prediction and its uncertainties (GeV);
* ``figures/``: the predictive distribution of single jets (paper figure 2) and the calibration summary.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import topcal
from topcal.console import progress_bar
from topcal.errors import ConfigError, InputFileError
from topcal.io.atomic import OutputKind, atomic_output, check_output
from topcal.io.dataset import open_dataset, write_part
from topcal.seeds import check_seed
from topcal.train.data import load_rows, split_rows
from topcal.train.inputs import Jets
from topcal.train.likelihood import sigma_cal, untruncated
from topcal.train.metrics import binned, keyed_rows, linear_response
from topcal.train.model import TrainedModel, load_model
from topcal.train.model_dir import check_jets, check_reference
from topcal.train.recalibration import factors_by_pt

# a report directory (report.json names topcal's version): --overwrite replaces only such a directory
OUTPUT = OutputKind("report", "report.json", "", ("report.md", "*.parquet", "*.json", "figures"))
REPORT_COLUMNS = ("jets", "rmse", "rmse_err", "rmse_rel", "bias", "sigma_stoch", "sigma_pred", "sigma_tot",
                  "sigma_cal", "sigma_input", "coverage68", "coverage95", "pull_width", "pull_iqr", "crps")


@dataclass
class EvaluationSummary:
    path: Path
    n_jets: int
    report: dict

    def __str__(self) -> str:
        net, base = keyed_rows(self.report["network"])["all"], keyed_rows(self.report["baseline"])["all"]
        raw = ""
        if "network_raw" in self.report:
            r = keyed_rows(self.report["network_raw"])["all"]
            factor = factors_by_pt(self.report["width_factor_pt"]) if self.report.get("width_factor_pt") else \
                f"x{self.report['width_factor']:.3f}"
            raw = (f"\n  without the recalibration ({factor}): 68% coverage "
                   f"{r['coverage68']:.3f}, 95% coverage {r['coverage95']:.3f}, pull width {r['pull_width']:.3f}")
        return (f"evaluated {self.n_jets} test jets -> {self.path}\n"
                f"  network:  sqrt(MSE) {net['rmse']:.1f} GeV, mean sigma_tot {net['sigma_tot']:.1f} GeV, "
                f"68% coverage {net['coverage68']:.3f}, 95% coverage {net['coverage95']:.3f}, "
                f"pull width {net['pull_width']:.3f}\n"
                f"  baseline (linear response): sqrt(MSE) {base['rmse']:.1f} GeV" + raw)


def predict_in_blocks(model: TrainedModel, jets: Jets, samples: int, seed: int, block: int = 20_000,
                      progress: bool = True, desc: str = "sampling the network") -> dict[str, np.ndarray]:
    """``model.predict`` over blocks of jets (bounded memory), with a progress bar; every block uses the
    same T weight draws (``samples``, ``seed``), so the numbers do not depend on ``block``."""
    parts = []
    with progress_bar(len(jets), desc, "jets", progress) as bar:
        for start in range(0, len(jets), block):
            parts.append(model.predict(jets.take(slice(start, start + block)), samples, seed))
            bar.update(len(parts[-1]["mean"]))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def evaluate(model_dir, dataset_dir, out, samples: int = 50, reference=None, input_smear: float | None = None,
             seed: int = 0, max_jets: int | None = None, overwrite: bool = False, progress: bool = True,
             figures: bool = True, command: str | None = None) -> EvaluationSummary:
    """Evaluate ``model_dir`` on the test part of ``dataset_dir`` and write the report directory ``out``."""
    inputs = [model_dir, dataset_dir, *([reference] if reference else [])]
    if samples < 2:
        raise ConfigError(f"samples: {samples} must be >= 2")
    if max_jets is not None and max_jets < 1:
        raise ConfigError(f"--max-jets: {max_jets} must be >= 1")
    if input_smear is not None and not 0 < input_smear < 1:
        raise ConfigError(f"--input-smear: {input_smear} must be a fraction between 0 and 1 (e.g. 0.05)")
    check_seed(seed)
    check_output(out, overwrite, inputs, kind=OUTPUT)  # before any work
    if reference is not None:
        check_reference(model_dir, reference)
    model = load_model(model_dir)
    ds = open_dataset(dataset_dir)
    if ds.config.max_constituents != model.n_constituents:
        raise InputFileError(f"{dataset_dir}: jets have {ds.config.max_constituents} constituents, the model "
                             f"{model_dir} was trained with {model.n_constituents}")
    check_jets(model.meta, ds.manifest["config"], model_dir, dataset_dir)
    trainable, test = split_rows(ds.n_jets, model.config.test_fraction)
    if max_jets is not None:
        test = test[:max_jets]
    arrays, _ = load_rows(ds, test)
    pred = predict_in_blocks(model, arrays.jets, samples, seed, progress=progress)
    if reference is not None:
        ref_model = load_model(reference)
        ref = predict_in_blocks(ref_model, arrays.jets, samples, seed, progress=progress, desc="reference model")
        pred["sigma_cal"] = sigma_cal(untruncated(pred, "sigma_stoch"), untruncated(ref, "sigma_stoch"))
    if input_smear:
        up = predict_in_blocks(model, arrays.jets.scaled(1 + input_smear), samples, seed, progress=progress,
                               desc="inputs up")
        down = predict_in_blocks(model, arrays.jets.scaled(1 - input_smear), samples, seed, progress=progress,
                                 desc="inputs down")
        pred["sigma_input"] = 0.5 * np.abs(up["mean"] - down["mean"])

    train_cols = ds.read(["pt", "pt_truth"])
    a, b, rms = linear_response(train_cols["pt"][trainable], train_cols["pt_truth"][trainable])
    base_mean = a + b * arrays.pt_jet
    baseline = {"mean": base_mean, "sigma_tot": np.full_like(base_mean, rms)}
    report = {
        "topcal_version": topcal.__version__,
        "command": command if command is not None else shlex.join(["topcal", *sys.argv[1:]]),
        "model": str(Path(model_dir).absolute()),
        "reference": str(Path(reference).absolute()) if reference else None,
        "dataset": str(Path(dataset_dir).absolute()),
        "samples": samples,
        "seed": seed,
        "input_smear": input_smear,
        "test_jets": len(test),
        "baseline_fit": {"offset_gev": a, "slope": b, "residual_rms_gev": rms},
        "width_factor": model.width_factor,
        "width_factor_pt": model.meta.get("calibration", {}).get("width_factor_pt"),
        "network": binned(arrays.pt_jet, arrays.pt_truth, pred),
        "baseline": binned(arrays.pt_jet, arrays.pt_truth, baseline),
    }
    if not model.width_calibration.is_identity:  # the raw network's figures beside the recalibrated ones
        report["network_raw"] = binned(arrays.pt_jet, arrays.pt_truth,
                                       unstretched(pred, model.width_factors(arrays.pt_jet)))
    with atomic_output(out, overwrite, inputs, kind=OUTPUT) as tmp:
        tmp.mkdir()
        (tmp / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        (tmp / "report.md").write_text(markdown_report(report))
        write_part(tmp / "predictions.parquet", {"pt_jet": arrays.pt_jet, "pt_truth": arrays.pt_truth,
                                                  "row": arrays.rows, **pred})
        if figures and len(test):
            from topcal.plot.evaluation_figures import calibration_summary, predictive_distribution

            predictive_distribution(model, arrays.jets, arrays.pt_truth, tmp / "figures", seed=seed)
            calibration_summary(report["network"], report["baseline"], tmp / "figures")
    return EvaluationSummary(Path(out), len(test), report)


def unstretched(pred: dict[str, np.ndarray], factor) -> dict[str, np.ndarray]:
    """The raw network's summaries from recalibrated ones: widths and interval ends back by ``factor`` (a
    number, or one per jet) about each jet's mean (:meth:`TrainedModel.sample`)."""
    out = {"mean": pred["mean"]}
    for key in ("sigma_stoch", "sigma_pred", "sigma_tot"):
        out[key] = pred[key] / factor
    for key in ("low", "high", "low95", "high95"):
        out[key] = pred["mean"] + (pred[key] - pred["mean"]) / factor
    return out


def shown_path(path: str) -> str:
    """``path`` as a report shows it: relative to the working directory when inside it, else its last two
    parts (no machine's absolute path in a report that may be shared or committed)."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(Path(*path.parts[-2:]))


def markdown_report(report: dict) -> str:
    """The report's tables in markdown (GeV); paths by :func:`shown_path`."""
    lines = ["# topcal evaluation\n", f"- model: `{shown_path(report['model'])}`",
             f"- dataset: `{shown_path(report['dataset'])}` "
             f"({report['test_jets']} test jets), {report['samples']} weight samples per jet",
             f"- command: `{report['command']}`", ""]
    if report.get("width_factor_pt"):
        lines += [f"The network's widths are recalibrated by a factor of pT,j fitted on its calibration jets "
                  f"({factors_by_pt(report['width_factor_pt'])}, linear in between); `network_raw` gives the "
                  f"figures without it.", ""]
    elif report.get("width_factor", 1.0) != 1.0:
        lines += [f"The network's widths are recalibrated by a factor {report['width_factor']:.3f} fitted on its "
                  f"calibration jets; `network_raw` gives the figures without it.", ""]
    for name in ("network", "network_raw", "baseline"):
        if name not in report:
            continue
        keyed = keyed_rows(report[name])
        rows = [*keyed["bins"], keyed["slice"], keyed["all"]]
        cols = [c for c in REPORT_COLUMNS if c in rows[-1]]
        lines.append(f"## {name}\n")
        lines.append("| pT,j [GeV] | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for row in rows:
            cells = [_fmt(row.get(c)) for c in cols]
            lines.append(f"| {row['pt_jet_lo']:.0f}..{row['pt_jet_hi']:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, int):
        return str(v)
    return f"{v:.4g}"
