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
   and the nominal network with inputs scaled by 1 +- f (``input<pct>``);
5. ``plots/`` (PNG and PDF) and ``report.md`` with our numbers next to the paper's.

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

from topcal.config import SLIM_COLLECTIONS, RunConfig, TrainConfig, paper_process_config, paper_train_config
from topcal.errors import ConfigError
from topcal.reproduce import isr_study
from topcal.reproduce.scales import Scale, get_scale

PAPER_DATASET = paper_process_config()

def sample_config(seed: int, process: str = "ttbar", isr: bool = False) -> RunConfig:
    """Generation for the studies: the truth record compacted to tops, Ws and their daughters, and only the
    collections the studies read (a tenth of the full record's size, and faster to process)."""
    cfg = RunConfig(seed=seed)
    cfg.generator.process, cfg.generator.isr = process, isr
    cfg.output.truth, cfg.output.collections = "compact", list(SLIM_COLLECTIONS)
    return cfg


PAPER = {  # DESIGN.md section 7, pT,j 600..620 GeV, without ISR
    "rmse_noisr_gev": 50.6,
    "sigma_stoch_plateau_gev": 50.0,
    "table2": {"weights": [0.59, 0.30, 0.11], "means": [617.8, 659.8, 738.6], "sigmas": [16.6, 33.7, 78.6]},
}


@dataclass
class ReproduceSummary:
    out_dir: Path
    steps: list[tuple[str, float, str]] = field(default_factory=list)  # (step, seconds, what)

    def __str__(self) -> str:
        lines = [f"{name:<28s} {sec:8.1f} s  {what}" for name, sec, what in self.steps]
        return "\n".join([*lines, f"report: {self.out_dir / 'report.md'}", f"figures: {self.out_dir / 'plots'}"])


def _pct(f: float) -> str:
    return f"{round(100 * f):02d}"


def reproduce(scale_name: str, out, sample=None, progress: bool = True, command: str | None = None) -> ReproduceSummary:
    """Run every step of the chosen scale into ``out`` (see the module docstring)."""
    from topcal.generate.run import generate
    from topcal.io.dataset import open_dataset
    from topcal.process.run import process
    from topcal.train.data import split_rows
    from topcal.train.evaluate import evaluate
    from topcal.train.fit import train

    scale = get_scale(scale_name)
    out = Path(out)
    for sub in ("models", "reports", "plots"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    summary = ReproduceSummary(out)

    def step(name: str, done: Path, run) -> None:
        if done.exists():
            summary.steps.append((name, 0.0, "reused"))
            return
        t0 = time.perf_counter()
        run()
        summary.steps.append((name, time.perf_counter() - t0, "done"))

    sample_path = Path(sample) if sample else out / "samples" / "ttbar_noisr.root"
    if sample is None:
        sample_path.parent.mkdir(exist_ok=True)
        step("generate", sample_path, lambda: generate(sample_path, scale.events, sample_config(seed=1),
                                                       workers=scale.workers, progress=progress))
    step("process", out / "dataset" / "dataset.json",
         lambda: process([sample_path], out / "dataset", PAPER_DATASET, progress=progress, command=command))
    ds = open_dataset(out / "dataset")
    trainable = len(split_rows(ds.n_jets, TrainConfig().test_fraction)[0])
    sizes = [n for n in scale.train_sizes if n <= trainable]
    if not sizes:
        raise ConfigError(f"scale {scale_name}: {trainable} trainable jets, fewer than the smallest training "
                          f"size {min(scale.train_sizes)}")
    base = dict(hidden=list(scale.hidden), prior_sigma=scale.prior_sigma, learning_rate=scale.learning_rate,
                epochs=scale.epochs, patience=scale.patience)
    models: dict[str, TrainConfig] = {}
    for n in sizes:
        for rep in range(scale.repetitions):
            models[f"size{n}_rep{rep}"] = paper_train_config(train_size=n, seed=rep + 1, **base)
    nominal = f"size{sizes[-1]}_rep0"
    for lik in scale.likelihoods:
        if lik != "gauss":
            models[lik] = paper_train_config(train_size=sizes[-1], likelihood=lik, seed=1, **base)
    for f in scale.smear_fractions:
        for rep in range(scale.repetitions):
            models[_smear_name(f, rep)] = paper_train_config(train_size=sizes[-1], smear=f, seed=rep + 1, **base)
    for n in sizes:
        models[f"ensemble{n}"] = paper_train_config(train_size=n, ensemble=scale.ensemble_members, seed=1, **base)
    for n in sizes:
        models[f"default{n}"] = TrainConfig(train_size=n, seed=1, epochs=scale.default_epochs, **scale.default_network)
    for name, cfg in models.items():
        step(f"train {name}", out / "models" / name / "model.json",
             lambda name=name, cfg=cfg: train(out / "dataset", out / "models" / name, cfg, progress=progress,
                                              command=command))
    reports = {name: {} for name in models}
    for f in scale.smear_fractions:  # sigma_cal against the unsmeared network of the same seed
        for rep in range(scale.repetitions):
            reports[_smear_name(f, rep)] = {"reference": out / "models" / f"size{sizes[-1]}_rep{rep}"}
    for f in scale.smear_fractions:
        reports[f"input{_pct(f)}"] = {"model": nominal, "input_smear": f}
    for name, opts in reports.items():
        model = out / "models" / opts.get("model", name)
        step(f"evaluate {name}", out / "reports" / name / "report.json",
             lambda name=name, model=model, opts=opts: evaluate(
                 model, out / "dataset", out / "reports" / name, samples=scale.samples,
                 reference=opts.get("reference"), input_smear=opts.get("input_smear"), progress=progress,
                 figures=False, command=command))
    if scale.isr_events:
        isr_study.run_steps(out, scale, sizes, base, PAPER_DATASET, step, sample_config, progress, command)
    t0 = time.perf_counter()
    write_studies(out, scale, sizes, nominal, ds)
    summary.steps.append(("figures and report", time.perf_counter() - t0, "done"))
    return summary


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
        cov = f"{paper['network'][-1]['coverage68']:.3f} / {default['network'][-1]['coverage68']:.3f}"
        lines.append(f"| {n} | {fmt(paper['network'][-1])} | {fmt(default['network'][-1])} | "
                     f"{fmt(paper['baseline'][-1])} | {fmt(paper['network'][-2])} | {fmt(default['network'][-2])} | "
                     f"{fmt(paper['baseline'][-2])} | {cov} |")
    return lines


def _smear_name(f: float, rep: int) -> str:
    """Model name of the label-smearing training ``rep`` at fraction ``f`` (rep 0 keeps the plain name)."""
    return f"smear{_pct(f)}" + (f"_rep{rep}" if rep else "")


def _report(out: Path, name: str) -> dict:
    return json.loads((out / "reports" / name / "report.json").read_text())


def _predictions(out: Path, name: str) -> dict[str, np.ndarray]:
    table = pq.read_table(out / "reports" / name / "predictions.parquet")
    return {c: table.column(c).to_numpy() for c in table.column_names}


def write_studies(out: Path, scale: Scale, sizes: list[int], nominal: str, ds) -> None:
    """Figures in ``out/plots`` and ``out/report.md`` from the finished models and reports."""
    from topcal.plot import study_figures as fig
    from topcal.train.data import load_rows, smeared_labels
    from topcal.train.likelihood import predictive_density
    from topcal.train.model import load_model

    plots = out / "plots"
    note = f"$t\\bar t$ without ISR, anti-$k_T$ R = 1.2, {scale.samples} weight samples"
    lines = ["# topcal reproduce\n", f"Scale: {scale}\n"]

    # figure 3 left (and the slice): the dataset's own figures from topcal process
    for figure in sorted((out / "dataset" / "figures").glob("*")):
        shutil.copy2(figure, plots / figure.name)

    # figure 3 right and figure 6: the nominal network on the test jets
    pred = _predictions(out, nominal)
    fig.extracted_vs_truth(pred["pt_truth"], pred["mean"], plots, note)
    n_cons = ds.read(["n_constituents"])["n_constituents"][pred["row"]]
    fig.sigma_pred_distribution(pred["sigma_pred"], n_cons, plots, note)

    # figure 5: sigmas and sqrt(MSE) against the training size (all test jets), spread of the repetitions
    keys = ("sigma_pred", "sigma_stoch", "sigma_tot", "rmse")
    per_size = {k: [] for k in keys}
    for n in sizes:
        rows = [_report(out, f"size{n}_rep{r}")["network"][-1] for r in range(scale.repetitions)]
        for k in keys:
            vals = np.array([row[k] for row in rows])
            per_size[k].append((vals.mean(), vals.std()))
    series = {k: (np.array([m for m, _ in v]), np.array([s for _, s in v])) for k, v in per_size.items()}
    fig.versus_training_size(sizes, series, plots, note)

    # figure 7: the Bayesian network against the frequentist ensemble
    ens = [_report(out, f"ensemble{n}")["network"][-1] for n in sizes]
    compare = {
        r"$\sigma_{pred}$ BNN": series["sigma_pred"],
        r"$\sigma_{pred}$ ensemble": (np.array([r["sigma_pred"] for r in ens]), np.zeros(len(ens))),
        r"$\sigma_{stoch}$ BNN": series["sigma_stoch"],
        r"$\sigma_{stoch}$ ensemble": (np.array([r["sigma_stoch"] for r in ens]), np.zeros(len(ens))),
    }
    fig.versus_training_size(sizes, compare, plots, note + f", ensemble of {scale.ensemble_members}",
                             name="bnn_vs_ensemble")
    lines += ["## Training size (figure 5), all test jets, mean +- spread of the repetitions [GeV]\n",
              "| training jets | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for i, n in enumerate(sizes):
        lines.append(f"| {n} | " + " | ".join(f"{series[k][0][i]:.1f} +- {series[k][1][i]:.1f}" for k in keys) + " |")
    lines += [f"\n## Bayesian network against a frequentist ensemble of {scale.ensemble_members} (figure 7) [GeV]\n",
              "| training jets | sigma_pred BNN | sigma_pred ensemble | sigma_stoch BNN | sigma_stoch ensemble |",
              "|---|---|---|---|---|"]
    for i, n in enumerate(sizes):
        lines.append(f"| {n} | {series['sigma_pred'][0][i]:.1f} | {ens[i]['sigma_pred']:.1f} | "
                     f"{series['sigma_stoch'][0][i]:.1f} | {ens[i]['sigma_stoch']:.1f} |")

    # the narrow slice against the paper
    slice_row = _report(out, nominal)["network"][-2]
    lines += ["\n## The paper's anchors (pT,j 600..620 GeV, no ISR)\n", "| quantity | paper | topcal |",
              "|---|---|---|",
              f"| sqrt(MSE) [GeV] | {PAPER['rmse_noisr_gev']} | {slice_row.get('rmse', float('nan')):.1f} "
              f"({slice_row['jets']} test jets) |",
              f"| sigma_stoch plateau [GeV] | about {PAPER['sigma_stoch_plateau_gev']} | "
              f"{slice_row.get('sigma_stoch', float('nan')):.1f} |"]

    # figure 8 and table 2: mixtures in the narrow slice (all test jets when the slice has fewer than 20)
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
        take = lambda a: np.take_along_axis(a, order, axis=-1).mean(axis=(0, 1))  # noqa: E731
        table2.append((model.config.components, grid[np.argmax(dens)], take(w), take(mu), take(s)))
    fig.mixtures_in_slice(arrays.pt_truth, grid, densities, plots, note)
    lines += ["\n## Mixtures (figure 8, table 2): components ordered by mean, averaged over jets and samples\n",
              "| K | maximum [GeV] | weights | means [GeV] | sigmas [GeV] |", "|---|---|---|---|---|"]
    for k, peak, w, mu, s in table2:
        lines.append(f"| {k} | {peak:.0f} | {', '.join(f'{v:.2f}' for v in w)} | {', '.join(f'{v:.0f}' for v in mu)} "
                     f"| {', '.join(f'{v:.1f}' for v in s)} |")
    t2 = PAPER["table2"]
    lines.append(f"| paper, 3 | | {', '.join(map(str, t2['weights']))} | {', '.join(map(str, t2['means']))} | "
                 f"{', '.join(map(str, t2['sigmas']))} |")

    # figures 10 and 11: label smearing against the smearing applied, and against input smearing
    fracs = np.array(scale.smear_fractions)
    mean_truth = float(np.mean(pred["pt_truth"]))
    cals = np.array([[_report(out, _smear_name(f, r))["network"][-1]["sigma_cal"] for r in range(scale.repetitions)]
                     for f in fracs])
    cal, cal_spread = cals.mean(axis=1), cals.std(axis=1)
    inp = np.array([_report(out, f"input{_pct(f)}")["network"][-1]["sigma_input"] for f in fracs])
    fig.calibration_versus_smearing(fracs * mean_truth, cal, inp, fracs, plots, note, sigma_cal_spread=cal_spread)
    lines += [f"\n## Calibration by label smearing (figures 10, 11), all test jets, mean +- spread of "
              f"{scale.repetitions} trainings [GeV]\n",
              "| f | sigma_smear = f <pT,t> | <sigma_cal> | <sigma_input> |", "|---|---|---|---|"]
    for f, c, cs, i in zip(fracs, cal, cal_spread, inp):
        lines.append(f"| {f:.2f} | {f * mean_truth:.1f} | {c:.1f} +- {cs:.1f} | {i:.1f} |")
    # figure 9: the smeared labels against pT,j, for the smallest and the largest smearing
    for f in (fracs[0], fracs[-1]) if len(fracs) > 1 else fracs:
        smeared = _predictions(out, _smear_name(f, 0))
        label_values = smeared_labels(smeared["pt_truth"], smeared["row"], float(f), seed=1)
        fig.smeared_truth_vs_jet(smeared, label_values, float(f), plots, note)

    # topcal's default network against the paper's and the linear baseline, same test jets
    lines += default_network_table(out, sizes)

    # the calibration diagnostics the paper lacks
    rows = _report(out, nominal)["network"]
    fig.coverage_and_pulls(rows, plots, note)
    lines += ["\n## Calibration diagnostics of the nominal network\n",
              "| pT,j [GeV] | jets | coverage68 | pull width |",
              "|---|---|---|---|"]
    for r in rows:
        if r.get("jets"):
            lines.append(f"| {r['pt_jet_lo']:.0f}..{r['pt_jet_hi']:.0f} | {r['jets']} | {r['coverage68']:.3f} | "
                         f"{r['pull_width']:.3f} |")
    if scale.isr_events:
        lines += isr_study.write(out, scale, sizes, _predictions, note.replace("without ISR, ", ""))
    (out / "report.md").write_text("\n".join(lines) + "\n")
