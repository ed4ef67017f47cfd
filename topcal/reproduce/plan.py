"""The steps of ``topcal reproduce`` as tasks (:class:`topcal.workers.Task`), and their projected wall time.

Two kinds of step:

* **samples** (:func:`sample_steps`): generating the event samples and processing them into datasets.
  They run one after the other in this process, and each spreads its own work over the workers
  (generation chunks, coffea chunks);
* **studies** (:func:`study_tasks`): every training, evaluation and tagger is one task that reads its
  inputs from disk and writes one output directory, so independent ones run at the same time on the
  workers of a local pool or a dask cluster, and an interrupted run resumes from the outputs that exist.

:func:`estimate` projects the wall time from step times measured here, on this machine, before a run
starts (``topcal reproduce --dry-run`` prints the tasks and the projection, and runs nothing).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from topcal.config import (
    DEFAULT_MAX_CONSTITUENTS,
    ProcessConfig,
    RunConfig,
    TaggerConfig,
    TrainConfig,
    paper_process_config,
    paper_train_config,
    slim_output,
)
from topcal.data import EMBEDDED_EVENTS, EMBEDDED_SAMPLE
from topcal.reproduce import input_vs_label, label_closure
from topcal.reproduce.scales import Scale
from topcal.workers import Task

PAPER_DATASET = paper_process_config()


def sample_config(seed: int, process: str = "ttbar", isr: bool = False) -> RunConfig:
    """Generation for the studies: the truth record compacted to tops, Ws and their daughters, and only the
    collections the studies read (a tenth of the full record's size, and faster to process)."""
    cfg = RunConfig(seed=seed, output=slim_output())
    cfg.generator.process, cfg.generator.isr = process, isr
    return cfg


def pct(f: float) -> str:
    return f"{round(100 * f):02d}"


def smear_name(f: float, rep: int) -> str:
    """Model name of the label-smearing training ``rep`` at fraction ``f`` (rep 0 keeps the plain name)."""
    return f"smear{pct(f)}" + (f"_rep{rep}" if rep else "")


@dataclass
class SampleStep:
    """A generation (``events`` of ``run``) or a processing (``dataset`` of ``source`` with ``process``)."""

    name: str
    output: Path
    events: int = 0
    run: RunConfig | None = None
    source: Path | None = None
    process: ProcessConfig | None = None

    @property
    def complete(self) -> bool:
        return self.output.exists()


def sample_steps(out: Path, scale: Scale, sample: Path | None) -> list[SampleStep]:
    """The samples and datasets of a scale, in the order they are made."""
    samples = out / "samples"
    main = Path(sample) if sample else samples / "ttbar_noisr.root"
    steps = [] if sample else [SampleStep("generate ttbar_noisr", main, scale.events, sample_config(1))]
    steps.append(SampleStep("process ttbar_noisr", out / "dataset" / "dataset.json", source=main,
                            process=PAPER_DATASET))
    if scale.isr_events:
        background = replace(PAPER_DATASET, truth_match=False, flatten=False)
        for name, events, cfg, dataset, pcfg in (
                ("ttbar_isr", scale.isr_events, sample_config(2, "ttbar", True), "dataset_isr",
                 replace(PAPER_DATASET, max_constituents=200)),
                ("qcd_noisr", scale.qcd_events, sample_config(3, "qcd", False), "dataset_qcd_noisr", background),
                ("qcd_isr", scale.qcd_events, sample_config(4, "qcd", True), "dataset_qcd_isr",
                 replace(background, max_constituents=200))):
            steps.append(SampleStep(f"generate {name}", samples / f"{name}.root", events, cfg))
            steps.append(SampleStep(f"process {name}", out / dataset / "dataset.json", source=samples / f"{name}.root",
                                    process=pcfg))
    return steps


def training_configs(scale: Scale, sizes: list[int]) -> dict[str, TrainConfig]:
    """Every regression network of the no-ISR studies, by model name."""
    base = dict(hidden=list(scale.hidden), prior_sigma=scale.prior_sigma, learning_rate=scale.learning_rate,
                epochs=scale.epochs, patience=scale.patience)
    models: dict[str, TrainConfig] = {}
    for n in sizes:
        for rep in range(scale.repetitions):
            models[f"size{n}_rep{rep}"] = paper_train_config(train_size=n, seed=rep + 1, **base)
    for lik in scale.likelihoods:
        if lik != "gauss":
            models[lik] = paper_train_config(train_size=sizes[-1], likelihood=lik, seed=1, **base)
    for f in scale.smear_fractions:
        for rep in range(scale.repetitions):
            models[smear_name(f, rep)] = paper_train_config(train_size=sizes[-1], smear=f, seed=rep + 1, **base)
    for n in sizes:
        models[f"ensemble{n}"] = paper_train_config(train_size=n, ensemble=scale.ensemble_members, seed=1, **base)
    for n in sizes:
        models[f"default{n}"] = TrainConfig(train_size=n, seed=1, epochs=scale.default_epochs, **scale.default_network)
    return models


def study_tasks(out: Path, scale: Scale, sizes: list[int], isr_train_size: int | None, command: str | None,
                progress: bool = False) -> list[Task]:
    """Trainings, evaluations, taggers and the ISR networks: one task each, in an order that respects
    their dependencies (an evaluation after its model, a smeared network's after its reference)."""
    from topcal.tagger.run import train_tagger
    from topcal.train.evaluate import evaluate
    from topcal.train.fit import member_done_path, train

    models, reports = out / "models", out / "reports"
    tasks: list[Task] = []
    configs = training_configs(scale, sizes)
    for name, cfg in configs.items():
        model, args = models / name / "model.json", (out / "dataset", models / name, cfg)
        # an ensemble's members train as tasks of their own (on any worker), then one task assembles them
        members = [Task(f"train {name} member {m}", member_done_path(models / name, m), train, args,
                        dict(progress=False, command=command, members=[m]), superseded_by=model)
                   for m in range(cfg.ensemble)]
        tasks.extend(members)
        tasks.append(Task(f"train {name}", model, train, args,
                          dict(progress=progress, command=command, resume=bool(members)),
                          after=tuple(t.name for t in members)))
    nominal = f"size{sizes[-1]}_rep0"
    evaluations: dict[str, dict] = {name: {} for name in configs}
    for f in scale.smear_fractions:  # sigma_cal against the unsmeared network of the same seed
        for rep in range(scale.repetitions):
            evaluations[smear_name(f, rep)] = {"reference": f"size{sizes[-1]}_rep{rep}"}
        evaluations[f"input{pct(f)}"] = {"model": nominal, "input_smear": f}
    for name, opts in evaluations.items():
        model = opts.get("model", name)
        reference = opts.get("reference")
        tasks.append(Task(f"evaluate {name}", reports / name / "report.json", evaluate,
                          (models / model, out / "dataset", reports / name),
                          dict(samples=scale.samples, reference=models / reference if reference else None,
                               input_smear=opts.get("input_smear"), progress=progress, figures=False,
                               command=command),
                          after=(f"train {model}", *((f"train {reference}",) if reference else ()))))
    # several label-uncertainty sources: topcal's default network at the largest size (label_closure.py)
    closure_cfg = TrainConfig(train_size=sizes[-1], seed=1, epochs=scale.default_epochs, **scale.default_network)
    tasks += label_closure.tasks(out, out / "dataset", closure_cfg, scale.samples, command, progress=progress)
    tasks += input_vs_label.tasks(out, scale.samples, label_closure.model_name(0.0))
    if scale.isr_events:
        tagger_cfg = TaggerConfig(epochs=scale.tagger_epochs)
        for tag, tops, qcd in (("noisr", "dataset", "dataset_qcd_noisr"), ("isr", "dataset_isr", "dataset_qcd_isr")):
            tasks.append(Task(f"tagger {tag}", out / "taggers" / tag / "tagger.json", train_tagger,
                              (out / tops, out / qcd, out / "taggers" / tag, tagger_cfg),
                              dict(progress=progress, command=command)))
        base = dict(hidden=list(scale.hidden), prior_sigma=scale.prior_sigma, learning_rate=scale.learning_rate,
                    epochs=scale.epochs, patience=scale.patience)
        for r in range(scale.repetitions):
            name = f"isr_rep{r}"
            cfg = paper_train_config(train_size=isr_train_size, seed=r + 1, **base)
            tasks.append(Task(f"train {name}", models / name / "model.json", train,
                              (out / "dataset_isr", models / name, cfg), dict(progress=progress, command=command)))
            tasks.append(Task(f"evaluate {name}", reports / name / "report.json", evaluate,
                              (models / name, out / "dataset_isr", reports / name),
                              dict(samples=scale.samples, progress=progress, figures=False, command=command),
                              after=(f"train {name}",)))
    return tasks


@dataclass
class Rates:
    """Step times measured on this machine, per worker (:func:`measure_rates`)."""

    generate_s_per_event: float
    process_s_per_event: float
    train_s_per_jet_epoch: dict[str, float]   # "paper", "default"
    predict_s_per_jet_sample: dict[str, float]


def measure_rates(events: int = 100, jets: int = 2000) -> Rates:
    """Time a generation chunk, the processing of the embedded sample, one training epoch of each network
    on ``jets`` jets of random inputs of the real shapes, and a batched prediction, on one worker's share."""
    import tempfile

    from topcal.generate.run import generate_chunk
    from topcal.process.run import process

    t0 = time.perf_counter()
    generate_chunk(sample_config(99), 0, events)
    gen = (time.perf_counter() - t0) / events
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        process([EMBEDDED_SAMPLE], Path(tmp) / "ds", PAPER_DATASET, progress=False, figures=False)
        proc = (time.perf_counter() - t0) / EMBEDDED_EVENTS
    train_rate, predict_rate = {}, {}
    for name, cfg in (("paper", paper_train_config()), ("default", TrainConfig())):
        train_rate[name], predict_rate[name] = _network_rates(cfg, jets, DEFAULT_MAX_CONSTITUENTS)
    return Rates(gen, proc, train_rate, predict_rate)


def _network_rates(cfg: TrainConfig, jets: int, n_constituents: int, samples: int = 10) -> tuple[float, float]:
    """Seconds per jet-epoch of training (batch ``cfg.batch_size``) and per jet-sample of prediction."""
    from topcal.train.inputs import feature_names
    from topcal.train.loop import EpochLoop
    from topcal.train.network import build_network, sample_outputs

    rng = np.random.default_rng(0)
    c = min(cfg.n_constituents or n_constituents, n_constituents)
    if cfg.architecture == "deepset":  # the features of a dataset that says what each constituent is
        constituent_names, jet_names = feature_names(True)
        x = {"constituents": rng.standard_normal((jets, c, len(constituent_names)), np.float32),
             "mask": np.ones((jets, c), np.float32),
             "jet": rng.standard_normal((jets, len(jet_names)), np.float32)}
    else:
        x = {"flat": rng.standard_normal((jets, 4 * c), np.float32)}
    y = rng.standard_normal(jets).astype(np.float32)
    model = build_network(cfg, {k: v.shape[1:] for k, v in x.items()}, jets)
    loop = EpochLoop(model, x, y, cfg.batch_size)
    loop.train_epoch(np.arange(2 * cfg.batch_size))  # graph building outside the timing
    t0 = time.perf_counter()
    loop.train_epoch(np.arange(jets))
    train_s = (time.perf_counter() - t0) / jets
    t0 = time.perf_counter()
    sample_outputs(model, cfg, x, samples, rng)
    return train_s, (time.perf_counter() - t0) / (jets * samples)


def task_seconds(task: Task, rates: Rates, test_jets: int) -> float:
    """Projected seconds of one study task on one worker: every epoch run (an upper bound: early stopping
    ends most trainings sooner), evaluations with the scale's samples on the test jets."""
    fn = getattr(task.fn, "__name__", "")
    if fn in ("train", "train_network"):
        cfg = task.args[2]
        kind = "default" if cfg.architecture == "deepset" else "paper"
        if "members" in task.kwargs:  # some members of an ensemble
            members = len(task.kwargs["members"])
        else:  # a whole training, or the assembly of an ensemble whose members are tasks of their own
            members = 0 if task.kwargs.get("resume") and cfg.ensemble else max(cfg.ensemble, 1)
        return members * (cfg.train_size or test_jets) * cfg.epochs * rates.train_s_per_jet_epoch[kind]
    if fn == "evaluate":
        samples = task.kwargs.get("samples", 50) * (3 if task.kwargs.get("input_smear") else 2
                                                    if task.kwargs.get("reference") else 1)
        return test_jets * samples * rates.predict_s_per_jet_sample["default"]
    if fn == "train_tagger":
        return 2 * test_jets * task.args[3].epochs * rates.train_s_per_jet_epoch["paper"]
    return 0.0


def schedule_seconds(tasks: list[Task], seconds: dict[str, float], slots: int) -> float:
    """Wall time of running ``tasks`` (with their ``after`` order) on ``slots`` workers, each task started as
    soon as a worker is free and its inputs are there (list scheduling, in the given order)."""
    finish: dict[str, float] = {}
    free = [0.0] * max(slots, 1)
    heapq.heapify(free)
    for t in tasks:
        start = max([heapq.heappop(free), *(finish.get(a, 0.0) for a in t.after)])
        finish[t.name] = start + seconds[t.name]
        heapq.heappush(free, finish[t.name])
    return max(finish.values(), default=0.0)


@dataclass
class Estimate:
    sample_seconds: float
    study_seconds: float
    cpu_seconds: float
    slots: int
    lines: list[str]

    @property
    def wall_seconds(self) -> float:
        return self.sample_seconds + self.study_seconds

    def __str__(self) -> str:
        return "\n".join([f"projected wall time on {self.slots} worker(s): {_hours(self.wall_seconds)} (samples "
                          f"{_hours(self.sample_seconds)}, studies {_hours(self.study_seconds)}; "
                          f"{self.cpu_seconds / 3600:.1f} worker-hours), an upper bound: every training runs all "
                          f"its epochs", *self.lines])


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def estimate(steps: list[SampleStep], tasks: list[Task], rates: Rates, slots: int, jets_per_event: float,
             test_fraction: float) -> Estimate:
    """Projected wall time of the steps still to do on ``slots`` workers (see :func:`task_seconds`)."""
    lines = []
    sample_s = 0.0
    for s in steps:
        if s.complete:
            continue
        per_event = rates.generate_s_per_event if s.run is not None else rates.process_s_per_event
        events = s.events if s.run is not None else next((g.events for g in steps if g.output == s.source), 0)
        sample_s += events * per_event / slots
    events = max([s.events for s in steps if s.run is not None and "ttbar_noisr" in s.name] or [0])
    test_jets = int(events * jets_per_event * test_fraction)
    seconds = {t.name: (0.0 if t.complete else task_seconds(t, rates, test_jets)) for t in tasks}
    study_s = schedule_seconds(tasks, seconds, slots)
    cpu = sample_s * slots + sum(seconds.values())
    for kind in ("train", "evaluate", "tagger"):
        chosen = [t for t in tasks if t.name.startswith(kind) and not t.complete]
        if chosen:
            lines.append(f"  {len(chosen):4d} {kind} tasks: {sum(seconds[t.name] for t in chosen) / 3600:8.1f} "
                         f"worker-hours")
    return Estimate(sample_s, study_s, cpu, slots, lines)
