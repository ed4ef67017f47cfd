"""``topcal reproduce``: the paper's studies end to end, resumable, with figures and a markdown report.

Steps (each output is reused when it is already complete, so an interrupted run resumes):

1. ``samples/ttbar_noisr.root``: ``topcal generate`` (or ``--sample FILE``);
2. ``dataset/``: ``topcal process`` (flattened in pT,t(truth));
3. ``models/``: the paper's Bayesian network (:func:`topcal.config.paper_train_config`, with the scale's
   prior, learning rate and epochs) for the training-size study (``size<N>_rep<r>``), the mixtures
   (``gmm2``, ``gmm3``) and the label smearing (``smear<pct>[_rep<r>]``); frequentist ensembles
   (``ensemble<N>``); and topcal's default network at every training size (``default<N>``), reported
   side by side with the paper's and the linear baseline;
4. ``reports/``: ``topcal evaluate`` of each, the smeared ones against the nominal network (sigma_cal),
   and the nominal network with inputs scaled by 1 +- f (``input<pct>``); the closure of several label
   sources (:mod:`topcal.reproduce.label_closure`: ``models/label_rho00``, ``label_rho50``) and the label
   smearing each detector variation is worth (:mod:`topcal.reproduce.input_vs_label`);
5. ``plots/`` (PNG and PDF) and ``report.md`` with our numbers next to the paper's.

Steps 1 and 2 run here, their chunks spread over the workers; every training, evaluation and tagger of
steps 3 and 4 is a task (:mod:`topcal.reproduce.plan`) that runs on ``--executor futures`` or ``dask``
workers at the same time as the others it does not depend on. Seeds come from each task's configuration,
so the numbers are those of the iterative run.

Covered: figure 3 (right), figure 4 with table 1 (:mod:`topcal.reproduce.isr_study`: the ISR sample, QCD
samples and the LoLa top tagger), figure 5, figure 6, figure 7 (the ensemble has ``Scale.ensemble_members``
networks), figure 8 with table 2, figures 9 to 11 and the calibration diagnostics (coverage, pull width).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from topcal.config import TrainConfig
from topcal.errors import ConfigError
from topcal.io.atomic import OutputKind, claim_directory
from topcal.reproduce import input_vs_label, isr_study, label_closure
from topcal.reproduce.plan import (
    Estimate,
    SampleStep,
    estimate,
    measure_rates,
    pct,
    sample_steps,
    smear_name,
    study_tasks,
)
from topcal.reproduce.scales import Scale, get_scale
from topcal.train.metrics import keyed_rows
from topcal.workers import WorkerPool, run_tasks, worker_pool

PAPER = {  # docs/design.md section 4, pT,j 600..620 GeV, without ISR
    "rmse_noisr_gev": 50.6,
    "sigma_stoch_plateau_gev": 50.0,
    "table2": {"weights": [0.59, 0.30, 0.11], "means": [617.8, 659.8, 738.6], "sigmas": [16.6, 33.7, 78.6]},
}
# what a reproduction holds (it is reused to resume): a folder with anything else is not taken for one
OUTPUT = OutputKind("reproduction", contents=("samples", "dataset*", "models", "reports", "plots", "taggers",
                                              "report.md"), manifest_required=False)
JETS_PER_EVENT = 0.55  # trainable jets per ttbar event in the paper's data set (measured: 50,156 of 90,000)


@dataclass
class ReproduceSummary:
    out_dir: Path
    steps: list[tuple[str, float, str]] = field(default_factory=list)  # (step, seconds, what)
    estimate: Estimate | None = None
    dry_run: bool = False
    planned: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [str(self.estimate)] if self.estimate is not None else []
        if self.dry_run:
            return "\n".join([*lines, *self.planned, "dry run: nothing was run"])
        lines += [f"{name:<28s} {sec:8.1f} s  {what}" for name, sec, what in self.steps]
        return "\n".join([*lines, f"report: {self.out_dir / 'report.md'}", f"figures: {self.out_dir / 'plots'}"])


def reproduce(scale_name: str, out, sample=None, progress: bool = True, command: str | None = None,
              executor: str = "iterative", workers: int = 1, scheduler: str | None = None, dry_run: bool = False,
              project: bool | None = None) -> ReproduceSummary:
    """Run every step of the chosen scale into ``out`` (see the module docstring).

    ``executor``, ``workers``, ``scheduler``: where the steps run (:mod:`topcal.workers`); the numbers do not
    depend on it. ``dry_run``: list the tasks and the projected wall time, run nothing. ``project``: measure
    step times here first and print the projection (default: for every scale but ``tiny``).
    """
    from topcal.io.dataset import open_dataset

    scale = get_scale(scale_name)
    out = Path(out)
    if not dry_run:
        claim_directory(out, OUTPUT)  # new, empty or an earlier reproduction: never a folder of other files
    summary = ReproduceSummary(out, dry_run=dry_run)
    steps = sample_steps(out, scale, sample)
    with worker_pool(executor, workers, scheduler) as pool:
        sizes = _sizes(scale, out / "dataset", scale.events)[0] or [min(scale.train_sizes)]
        isr_trainable = _sizes(scale, out / "dataset_isr", scale.isr_events)[1]
        tasks = study_tasks(out, scale, sizes, min(sizes[-1], isr_trainable), command)
        if project if project is not None else (scale_name != "tiny" or dry_run):
            summary.estimate = estimate(steps, tasks, measure_rates(), pool.slots, JETS_PER_EVENT,
                                        TrainConfig().test_fraction)
            if not dry_run and progress:
                print(summary.estimate, flush=True)
        if dry_run:
            summary.planned = [f"  {'done' if s.complete else 'to do'}  {s.name}" for s in steps] + \
                              [f"  {'done' if t.complete else 'to do'}  {t.name}" for t in tasks]
            return summary
        for sub in ("models", "reports", "plots", "samples"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        for s in steps:
            _sample_step(s, pool, progress, command, summary)
        ds = open_dataset(out / "dataset")
        sizes, trainable = _sizes(scale, out / "dataset", scale.events)
        if not sizes:
            raise ConfigError(f"scale {scale_name}: {trainable} trainable jets, fewer than the smallest training "
                              f"size {min(scale.train_sizes)}")
        isr_trainable = _sizes(scale, out / "dataset_isr", scale.isr_events)[1]
        tasks = study_tasks(out, scale, sizes, min(sizes[-1], isr_trainable), command, progress=progress and pool.local)
        (out / "taggers").mkdir(exist_ok=True)
        run_tasks(tasks, pool, on_done=lambda t, sec, what: _record(summary, t.name, sec, what, progress, pool))
    t0 = time.perf_counter()
    write_studies(out, scale, sizes, f"size{sizes[-1]}_rep0", ds)
    summary.steps.append(("figures and report", time.perf_counter() - t0, "done"))
    return summary


def _sizes(scale: Scale, dataset: Path, events: int) -> tuple[list[int], int]:
    """(the scale's training sizes that ``dataset`` can give, its trainable jets); before the dataset is
    made, the trainable jets that ``events`` should give."""
    from topcal.io.dataset import open_dataset
    from topcal.train.data import split_rows

    test_fraction = TrainConfig().test_fraction
    if (dataset / "dataset.json").exists():
        trainable = len(split_rows(open_dataset(dataset).n_jets, test_fraction)[0])
    else:
        trainable = int(events * JETS_PER_EVENT * (1 - test_fraction))
    return [n for n in scale.train_sizes if n <= trainable], trainable


def _record(summary: ReproduceSummary, name: str, seconds: float, what: str, progress: bool, pool: WorkerPool) -> None:
    summary.steps.append((name, seconds, what))
    if progress and not pool.local and what == "done":
        print(f"{name:<28s} {seconds:8.1f} s  done", flush=True)


def _sample_step(step: SampleStep, pool: WorkerPool, progress: bool, command: str | None,
                 summary: ReproduceSummary) -> None:
    """Generate or process one sample, spreading its chunks over ``pool``'s workers (reused when complete)."""
    from topcal.generate.run import generate
    from topcal.process.run import process

    if step.complete:
        summary.steps.append((step.name, 0.0, "reused"))
        return
    t0 = time.perf_counter()
    if step.run is not None:
        step.output.parent.mkdir(parents=True, exist_ok=True)
        generate(step.output, step.events, step.run, progress=progress, pool=pool, command=command)
    else:
        process([step.source], step.output.parent, step.process, executor=pool.executor, workers=pool.slots,
                scheduler=pool.scheduler_address, progress=progress, command=command)
    summary.steps.append((step.name, time.perf_counter() - t0, "done"))


def default_network_table(out: Path, sizes: list[int]) -> list[str]:
    """report.md lines: sqrt(MSE) (bootstrap error) on all test jets and in the 600..620 GeV slice, and 68%
    coverage, for the paper's network (rep 0), topcal's default network and the linear baseline."""
    lines = ["\n## topcal's default network beside the paper's (same test jets) [GeV]\n",
             "| training jets | paper net, all | default net, all | linear pT,j, all | paper net, 600..620 | "
             "default net, 600..620 | linear pT,j, 600..620 | coverage68 paper / default |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = lambda r: f"{r['rmse']:.1f} +- {r['rmse_err']:.1f}" if r.get("jets") else "-"  # noqa: E731
    for n in sizes:
        paper, default = _report(out, f"size{n}_rep0"), _report(out, f"default{n}")
        cov = f"{paper['network']['all']['coverage68']:.3f} / {default['network']['all']['coverage68']:.3f}"
        lines.append(f"| {n} | {fmt(paper['network']['all'])} | {fmt(default['network']['all'])} | "
                     f"{fmt(paper['baseline']['all'])} | {fmt(paper['network']['slice'])} | "
                     f"{fmt(default['network']['slice'])} | {fmt(paper['baseline']['slice'])} | {cov} |")
    return lines


def _report(out: Path, name: str) -> dict:
    """The report of evaluation ``name``, its rows keyed (``bins``, ``slice``, ``all``)."""
    report = json.loads((out / "reports" / name / "report.json").read_text())
    for key in ("network", "network_raw", "baseline"):
        if key in report:
            report[key] = keyed_rows(report[key])
    return report


def _predictions(out: Path, name: str) -> dict[str, np.ndarray]:
    table = pq.read_table(out / "reports" / name / "predictions.parquet")
    return {c: table.column(c).to_numpy() for c in table.column_names}


def write_studies(out: Path, scale: Scale, sizes: list[int], nominal: str, ds) -> None:
    """Figures in ``out/plots`` and ``out/report.md`` from the finished models and reports."""
    plots = out / "plots"
    note = f"$t\\bar t$ without ISR, anti-$k_T$ R = 1.2, {scale.samples} weight samples"
    lines = ["# topcal reproduce\n", f"Scale: {scale}\n"]
    # figure 3 left (and the slice): the dataset's own figures from topcal process
    for figure in sorted((out / "dataset" / "figures").glob("*")):
        shutil.copy2(figure, plots / figure.name)
    pred = _predictions(out, nominal)
    _nominal_figures(pred, ds, plots, note)
    series, size_lines = _training_size_study(out, scale, sizes, plots, note)
    lines += size_lines
    lines += _ensemble_study(out, scale, sizes, series, plots, note)
    lines += _paper_anchors(out, nominal)
    lines += _mixture_study(out, scale, nominal, pred, ds, plots, note)
    lines += _smearing_study(out, scale, pred, plots, note)
    lines += default_network_table(out, sizes)
    lines += _calibration_diagnostics(out, nominal, sizes, plots, note)
    lines += label_closure.write(out, plots, note)
    lines += input_vs_label.write(out, plots, note)
    if scale.isr_events:
        lines += isr_study.write(out, scale, sizes, _predictions, note.replace("without ISR, ", ""))
    (out / "report.md").write_text("\n".join(lines) + "\n")


def _nominal_figures(pred: dict[str, np.ndarray], ds, plots: Path, note: str) -> None:
    """Figure 3 right and figure 6: the nominal network's predictions ``pred`` on the test jets."""
    from topcal.plot import study_figures as fig

    fig.extracted_vs_truth(pred["pt_truth"], pred["mean"], plots, note)
    n_cons = ds.read(["n_constituents"])["n_constituents"][pred["row"]]
    fig.sigma_pred_distribution(pred["sigma_pred"], n_cons, plots, note)


SIZE_KEYS = ("sigma_pred", "sigma_stoch", "sigma_tot", "rmse")  # the training-size study's columns [GeV]


def _training_size_study(out: Path, scale: Scale, sizes: list[int], plots: Path,
                         note: str) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """Figure 5: the sigmas and sqrt(MSE) on all test jets against the training size, mean and spread of the
    repetitions. Returns them (name -> (means, spreads) per size) and the report.md lines."""
    from topcal.plot import study_figures as fig

    per_size = {k: [] for k in SIZE_KEYS}
    for n in sizes:
        rows = [_report(out, f"size{n}_rep{r}")["network"]["all"] for r in range(scale.repetitions)]
        for k in SIZE_KEYS:
            vals = np.array([row[k] for row in rows])
            per_size[k].append((vals.mean(), vals.std()))
    series = {k: (np.array([m for m, _ in v]), np.array([s for _, s in v])) for k, v in per_size.items()}
    fig.versus_training_size(sizes, series, plots, note)
    lines = ["## Training size (figure 5), all test jets, mean +- spread of the repetitions [GeV]\n",
             "| training jets | " + " | ".join(SIZE_KEYS) + " |", "|---|" + "---|" * len(SIZE_KEYS)]
    for i, n in enumerate(sizes):
        lines.append(f"| {n} | " + " | ".join(f"{series[k][0][i]:.1f} +- {series[k][1][i]:.1f}" for k in SIZE_KEYS)
                     + " |")
    return series, lines


def _ensemble_study(out: Path, scale: Scale, sizes: list[int], series: dict, plots: Path, note: str) -> list[str]:
    """Figure 7: sigma_pred and sigma_stoch of the Bayesian network (``series`` of the training-size study)
    against the frequentist ensemble's, per training size; returns the report.md lines."""
    from topcal.plot import study_figures as fig

    ens = [_report(out, f"ensemble{n}")["network"]["all"] for n in sizes]
    compare = {
        ("sigma_pred", "BNN"): series["sigma_pred"],
        ("sigma_pred", "ensemble"): (np.array([r["sigma_pred"] for r in ens]), np.zeros(len(ens))),
        ("sigma_stoch", "BNN"): series["sigma_stoch"],
        ("sigma_stoch", "ensemble"): (np.array([r["sigma_stoch"] for r in ens]), np.zeros(len(ens))),
    }
    fig.versus_training_size(sizes, compare, plots, note + f", ensemble of {scale.ensemble_members}",
                             name="bnn_vs_ensemble")
    lines = [f"\n## Bayesian network against a frequentist ensemble of {scale.ensemble_members} (figure 7) [GeV]\n",
             "| training jets | sigma_pred BNN | sigma_pred ensemble | sigma_stoch BNN | sigma_stoch ensemble |",
             "|---|---|---|---|---|"]
    for i, n in enumerate(sizes):
        lines.append(f"| {n} | {series['sigma_pred'][0][i]:.1f} | {ens[i]['sigma_pred']:.1f} | "
                     f"{series['sigma_stoch'][0][i]:.1f} | {ens[i]['sigma_stoch']:.1f} |")
    return lines


def _paper_anchors(out: Path, nominal: str) -> list[str]:
    """report.md lines: the nominal network in the narrow slice (pT,j 600..620 GeV) beside the paper's numbers."""
    slice_row = _report(out, nominal)["network"]["slice"]
    return ["\n## The paper's anchors (pT,j 600..620 GeV, no ISR)\n", "| quantity | paper | topcal |",
            "|---|---|---|",
            f"| sqrt(MSE) [GeV] | {PAPER['rmse_noisr_gev']} | {slice_row.get('rmse', float('nan')):.1f} "
            f"({slice_row['jets']} test jets) |",
            f"| sigma_stoch plateau [GeV] | about {PAPER['sigma_stoch_plateau_gev']} | "
            f"{slice_row.get('sigma_stoch', float('nan')):.1f} |"]


def _mixture_study(out: Path, scale: Scale, nominal: str, pred: dict[str, np.ndarray], ds, plots: Path,
                   note: str) -> list[str]:
    """Figure 8 and table 2: the predictive density of each likelihood's network, averaged over the test jets
    in the narrow slice (all test jets when the slice has fewer than 20), and its mixture components ordered
    by mean; returns the report.md lines."""
    from topcal.plot import study_figures as fig
    from topcal.train.data import load_rows
    from topcal.train.likelihood import predictive_density
    from topcal.train.model import load_model

    sel = (pred["pt_jet"] >= 600) & (pred["pt_jet"] < 620)
    if sel.sum() < 20:
        sel = np.ones_like(sel)
    arrays, _ = load_rows(ds, np.sort(pred["row"][sel]))
    grid = np.linspace(400, 1000, 301)
    densities, table2 = {}, []
    for lik in scale.likelihoods:
        name = nominal if lik == "gauss" else lik
        model = load_model(out / "models" / name)
        w, mu, s = model.sample(arrays.jets, scale.samples, seed=1)
        dens = predictive_density(np.broadcast_to(grid, (len(arrays.x), len(grid))), w, mu, s).mean(axis=0)
        densities[f"{model.config.components} Gaussian(s)"] = dens
        order = np.argsort(mu, axis=-1)
        w, mu, s = (np.take_along_axis(a, order, axis=-1).mean(axis=(0, 1)) for a in (w, mu, s))
        table2.append((model.config.components, grid[np.argmax(dens)], w, mu, s))
    fig.mixtures_in_slice(arrays.pt_truth, grid, densities, plots, note)
    lines = ["\n## Mixtures (figure 8, table 2): components ordered by mean, averaged over jets and samples\n",
             "| K | maximum [GeV] | weights | means [GeV] | sigmas [GeV] |", "|---|---|---|---|---|"]
    for k, peak, w, mu, s in table2:
        lines.append(f"| {k} | {peak:.0f} | {', '.join(f'{v:.2f}' for v in w)} | {', '.join(f'{v:.0f}' for v in mu)} "
                     f"| {', '.join(f'{v:.1f}' for v in s)} |")
    t2 = PAPER["table2"]
    lines.append(f"| paper, 3 | | {', '.join(map(str, t2['weights']))} | {', '.join(map(str, t2['means']))} | "
                 f"{', '.join(map(str, t2['sigmas']))} |")
    return lines


def _smearing_study(out: Path, scale: Scale, pred: dict[str, np.ndarray], plots: Path, note: str) -> list[str]:
    """Figures 9 to 11: sigma_cal of the networks trained on smeared labels against the smearing applied and
    against sigma_input of input smearing, and the smeared labels against pT,j for the smallest and the
    largest smearing; returns the report.md lines."""
    from topcal.plot import study_figures as fig
    from topcal.train.data import smeared_labels

    fracs = np.array(scale.smear_fractions)
    mean_truth = float(np.mean(pred["pt_truth"]))
    cals = np.array([[_report(out, smear_name(f, r))["network"]["all"]["sigma_cal"] for r in range(scale.repetitions)]
                     for f in fracs])
    cal, cal_spread = cals.mean(axis=1), cals.std(axis=1)
    inp = np.array([_report(out, f"input{pct(f)}")["network"]["all"]["sigma_input"] for f in fracs])
    fig.calibration_versus_smearing(fracs * mean_truth, cal, inp, fracs, plots, note, sigma_cal_spread=cal_spread)
    lines = [f"\n## Calibration by label smearing (figures 10, 11), all test jets, mean +- spread of "
             f"{scale.repetitions} trainings [GeV]\n",
             "| f | sigma_smear = f <pT,t> | <sigma_cal> | <sigma_input> |", "|---|---|---|---|"]
    for f, c, cs, i in zip(fracs, cal, cal_spread, inp):
        lines.append(f"| {f:.2f} | {f * mean_truth:.1f} | {c:.1f} +- {cs:.1f} | {i:.1f} |")
    for f in (fracs[0], fracs[-1]) if len(fracs) > 1 else fracs:
        smeared = _predictions(out, smear_name(f, 0))
        label_values = smeared_labels(smeared["pt_truth"], smeared["row"], float(f), seed=1)
        fig.smeared_truth_vs_jet(smeared, label_values, float(f), plots, note)
    return lines


def _calibration_diagnostics(out: Path, nominal: str, sizes: list[int], plots: Path, note: str) -> list[str]:
    """Coverage and pull width of the nominal network per pT,j bin, in the slice and on all test jets (a
    figure and the report.md lines)."""
    from topcal.plot import study_figures as fig

    keyed = _report(out, nominal)["network"]
    fig.coverage_and_pulls(keyed, plots, f"{note}; the paper's network, {sizes[-1]} training jets")
    lines = ["\n## Calibration diagnostics of the nominal network\n",
             "| pT,j [GeV] | jets | coverage68 | pull width |",
             "|---|---|---|---|"]
    for r in [*keyed["bins"], keyed["slice"], keyed["all"]]:
        if r.get("jets"):
            lines.append(f"| {r['pt_jet_lo']:.0f}..{r['pt_jet_hi']:.0f} | {r['jets']} | {r['coverage68']:.3f} | "
                         f"{r['pull_width']:.3f} |")
    return lines
