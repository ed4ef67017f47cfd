"""``topcal train``: fit the Bayesian network (or the frequentist ensemble) on a per-jet dataset.

The training jets are read once (streamed part by part), encoded once into the network's arrays
(:mod:`topcal.train.inputs`, standardised with statistics that ``model.json`` keeps), and batched inside
TensorFlow by gathering shuffled indices, so the data is never copied per epoch. The target is the response
pT,t(truth) / pT,j or pT,t(truth) itself (``TrainConfig.target``), standardised.

Early stopping watches the validation negative log-likelihood (not the total loss, whose KL part does not
measure the fit), halves the learning rate after ``lr_patience`` epochs without improvement, stops after
``patience`` and restores the best weights. TensorFlow runs with op determinism and fixed seeds, so the same
seed gives the same model. The weights, the optimiser state and the history go to a checkpoint in
``MODEL_DIR.partial`` (at most every 30 s, and at the end); ``resume=True`` continues from there, only with
the configuration and the dataset (its manifest's content) of the interrupted run. A NaN loss stops training
with a message and keeps the last good checkpoint.

What a resumed training restores: the weights, the optimiser state (Adam's moments and step count, the
learning rate), the history, the early-stopping bookkeeping and, through the seed, every epoch's shuffle.
What it does not: the state of TensorFlow's stateful random kernels, which draw the Flipout weight
perturbations and sign patterns (and dropout masks); they start again from their seeds. A resumed Bayesian
network therefore sees other random draws after the resume than an uninterrupted one and ends at other
(equally trained, not bit-identical) weights and width factor.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import topcal
from topcal.config import TrainConfig
from topcal.console import finish_early, progress_bar
from topcal.errors import ConfigError, InputFileError, OutputError, TopcalError
from topcal.io.atomic import check_output, publish, refuse_overlap
from topcal.io.dataset import dataset_fingerprint, open_dataset
from topcal.train import variations
from topcal.train.backend import deterministic  # TensorFlow set up before use
from topcal.train.data import load_rows, smeared_labels, split_rows
from topcal.train.inputs import Standardiser, raw_inputs
from topcal.train.model import TrainedModel, load_model
from topcal.train.model_dir import FORMAT, HISTORY, META, partial_dir, weights_name
from topcal.train.model_dir import OUTPUT as MODEL_OUTPUT
from topcal.train.recalibration import factors_by_pt
from topcal.train.spectrum import label_spectrum, write_spectrum

CHECKPOINT = "checkpoint"
INPUTS = "inputs"  # the training arrays for members on a worker pool (InputFiles), while they train
META_STARTED = "config-started.json"  # the configuration of the run that made a .partial directory
CHECKPOINT_SECONDS = 30.0  # a resumable checkpoint at most this often (and at the end), not every epoch
CALIBRATION_JETS = 50_000  # validation jets for the coverage and the width factor (binomial error 0.002)
CALIBRATION_MIN_JETS = 2000  # fewer validation jets are topped up with training jets (see _calibration)
CALIBRATION_APART_JETS = 10_000  # calibration jets apart from training: coverage binomial error 0.005
APART_STREAM = 0xCA1  # the random stream that draws the calibration jets apart from training (_apart_rows)


class TrainingDiverged(TopcalError):
    """The loss became NaN or infinite."""


@dataclass
class TrainSummary:
    path: Path
    n_train: int
    n_val: int
    members: list[dict]
    seconds: float
    calibration: dict | None = None
    epoch_seconds: list[list[float]] | None = None  # per member, wall seconds of each epoch (training + validation)

    def __str__(self) -> str:
        lines = [f"wrote model to {self.path} ({self.n_train} training jets, {self.n_val} validation jets, "
                 f"{self.seconds:.0f} s)"]
        for i, m in enumerate(self.members):
            lines.append(f"  network {i}: {m['epochs']} epochs, best validation NLL {m['best_val_loss']:.4f} "
                         f"at epoch {m['best_epoch']}")
        if self.calibration:
            c = self.calibration
            lines.append(f"  calibration jets: 68% coverage {c['coverage68_raw']:.3f}, 95% coverage "
                         f"{c['coverage95_raw']:.3f}, pull width {c['pull_width_raw']:.3f}"
                         + (f"; widths recalibrated by x{c['width_factor']:.3f}" if c["width_factor"] != 1 else "")
                         + (f" ({factors_by_pt(c['width_factor_pt'])})" if c.get("width_factor_pt") else ""))
        return "\n".join(lines)


def train(dataset_dir, out, cfg: TrainConfig | None = None, overwrite: bool = False, resume: bool = False,
          progress: bool = True, command: str | None = None, executor: str = "iterative", workers: int = 1,
          scheduler: str | None = None, members: Sequence[int] | None = None,
          variation=None) -> TrainSummary | None:
    """Train on ``dataset_dir`` and write the model directory ``out``.

    The members of an ensemble (``cfg.ensemble``) are independent: with ``executor`` ``futures`` or ``dask``
    (:mod:`topcal.workers`) they train at the same time on ``workers`` processes or on the cluster at
    ``scheduler``, each with its own seed, so the model is the same as with ``iterative``.

    ``members`` (a list of member numbers) trains only those members into the checkpoint directory
    ``out.partial``, marks each done (:func:`member_done_path`) and returns None, writing no model: separate
    tasks of ``topcal reproduce`` train an ensemble's members this way, each on any worker of a cluster,
    and a last call without ``members`` (with ``resume``) finds them done and assembles the model.

    ``variation``: a :class:`topcal.train.label_sources.LabelVariation` whose labels replace pT,t(truth)
    (in place of ``cfg.smear``); ``model.json`` records it as ``label_variation``."""
    from topcal.workers import check_executor

    deterministic()
    cfg = cfg or TrainConfig()
    cfg.validate()
    workers = check_executor(executor, workers, scheduler)
    if members is not None:
        _check_members(cfg, members)
        resume = True  # the members share one checkpoint directory
    out, work, started = _check_outputs(out, dataset_dir, cfg, overwrite, resume)
    t0 = time.perf_counter()

    ds = _open_training_dataset(dataset_dir, work, started)
    plan = _plan_subsamples(ds, dataset_dir, cfg)
    data = _load_training_jets(ds, dataset_dir, cfg, plan)  # bad data is an error here, before anything is written
    work.mkdir(exist_ok=True)
    _write_atomically(work / META_STARTED, json.dumps({  # member tasks may start together: the same text
        "config": cfg.to_dict(), "dataset": {"path": str(Path(dataset_dir).absolute()),
                                             "fingerprint": dataset_fingerprint(ds)}}))
    x_all, y_all, prepared = _prepare_inputs(data, cfg, plan, variation, ds.config)
    del data  # the jets and the row lists are not needed in training
    plan.subsamples = None
    chosen = list(range(len(prepared.splits))) if members is None else sorted({int(m) for m in members})
    results, networks = _fit_members(cfg, {m: prepared.splits[m] for m in chosen}, x_all, y_all, work, progress,
                                     executor, workers, scheduler)
    if members is not None:
        for m, result in zip(chosen, results):
            _write_atomically(member_done_path(out, m), json.dumps({"member": m, "epochs": result["epochs"]}))
        return None
    input_shapes = {k: list(v.shape[1:]) for k, v in x_all.items()}
    del x_all  # the last reference: the training loops dropped theirs (EpochLoop.close)

    meta = _model_meta(cfg, ds, dataset_dir, command, plan, prepared, input_shapes, results, variation)
    epoch_seconds = [r.pop("epoch_seconds") for r in results]  # timings: in the summary, not in the model files
    (work / HISTORY).write_text(json.dumps([r.pop("history") for r in results], indent=1) + "\n")
    (work / META).write_text(json.dumps(meta, indent=1) + "\n")  # the model is complete (a fallback loads it back)
    _calibrate_and_store(work, meta, networks, prepared, ds, cfg, variation)
    _publish(work, out, overwrite)
    n_val = results[0]["n_val"]
    return TrainSummary(out, plan.n_member - n_val, n_val, results, time.perf_counter() - t0, meta["calibration"],
                        epoch_seconds)


@dataclass
class _Subsamples:
    """The jets each network trains on: ``n_member`` rows of the ``n_trainable`` trainable ones per network
    (``subsamples``, disjoint when the data allow), drawn with ``rng``, which then also shuffles the splits;
    ``apart``: the calibration jets kept apart from training (:func:`_apart_rows`; empty when there are none)."""

    rng: np.random.Generator
    n_trainable: int
    n_member: int
    subsamples: list[np.ndarray] | None
    disjoint: bool
    apart: np.ndarray


@dataclass
class _Prepared:
    """What the training arrays leave for the model files: per network the (training, validation) positions
    in the loaded rows, the target's standardisation, the input standardiser, the training pT,t spectrum and
    the calibration jets (dataset rows; their labels are read with the jets, :func:`_calibrate_and_store`)."""

    splits: list[tuple[np.ndarray, np.ndarray]]
    target_mean: float
    target_scale: float
    n_constituents: int
    standardiser: Standardiser | None
    spectrum: tuple[np.ndarray, np.ndarray]
    val_rows: np.ndarray
    n_topped_up: int = 0  # training jets of network 0 among the calibration jets (the last of val_rows)
    n_apart: int = 0  # calibration jets apart from training (then all of val_rows)
    label_window: list[float] | None = None  # the training labels' pT,t window in GeV (_label_window)


def _check_members(cfg: TrainConfig, members: Sequence[int]) -> None:
    """Every number in ``members`` is a member of the configured ensemble (or 0 for one network)."""
    bad = [m for m in members if not 0 <= int(m) < max(cfg.ensemble, 1)]
    if bad:
        raise ConfigError(f"members: {bad} are not members of an ensemble of {max(cfg.ensemble, 1)}")


def _check_outputs(out, dataset_dir, cfg: TrainConfig, overwrite: bool, resume: bool) -> tuple[Path, Path, dict]:
    """The model directory ``out`` and its checkpoint directory checked before any work: returns both and the
    record of the interrupted run that ``resume`` continues (empty when there is none)."""
    out = check_output(out, overwrite, inputs=[dataset_dir], kind=MODEL_OUTPUT)
    work = partial_dir(out)
    refuse_overlap(work, [dataset_dir])
    if work.is_symlink() or (work.exists() and not work.is_dir()):
        raise OutputError(f"{work}: exists and is not a training checkpoint directory; move it away")
    if work.exists() and not resume:
        if not overwrite:
            raise OutputError(f"{work}: an interrupted training's checkpoint is there; pass --resume to continue "
                              f"it or --overwrite to start again")
        shutil.rmtree(work)
    started = json.loads((work / META_STARTED).read_text()) if resume and (work / META_STARTED).is_file() else {}
    if started and started.get("config", started) != cfg.to_dict():
        raise ConfigError(f"{work}: --resume with a configuration different from the interrupted run's; "
                          f"pass --overwrite to start again")
    return out, work, started


def _open_training_dataset(dataset_dir, work: Path, started: dict):
    """The dataset, which must be the interrupted run's (same content) when ``started`` records one."""
    ds = open_dataset(dataset_dir)
    if started.get("dataset", {}).get("fingerprint", dataset_fingerprint(ds)) != dataset_fingerprint(ds):
        raise ConfigError(f"{work}: --resume on another dataset than the interrupted run's "
                          f"({started['dataset'].get('path')}); pass --overwrite to start again")
    return ds


def _plan_subsamples(ds, dataset_dir, cfg: TrainConfig) -> _Subsamples:
    """Each network's training rows: ``cfg.train_size`` (default: all) of the trainable jets (the dataset
    minus its last ``cfg.test_fraction``), at least 10."""
    trainable, _ = split_rows(ds.n_jets, cfg.test_fraction)
    n_member = cfg.train_size if cfg.train_size is not None else len(trainable)
    if n_member > len(trainable):
        raise ConfigError(f"train_size: {n_member} jets requested, but {dataset_dir} has only {len(trainable)} "
                          f"trainable jets ({ds.n_jets} minus the test fraction {cfg.test_fraction})")
    if n_member < 10:
        raise InputFileError(f"{dataset_dir}: only {n_member} trainable jets; at least 10 are needed")
    rng = np.random.default_rng([cfg.seed, 0x7A1])
    subsamples, disjoint = _subsamples(rng, trainable, n_member, max(cfg.ensemble, 1))
    return _Subsamples(rng, len(trainable), n_member, subsamples, disjoint, _apart_rows(trainable, subsamples, cfg))


def _apart_rows(trainable: np.ndarray, subsamples: list[np.ndarray], cfg: TrainConfig) -> np.ndarray:
    """With ``cfg.calibration_jets = "apart"``, the calibration jets that no network trains or validates on:
    at most ``CALIBRATION_APART_JETS`` of the trainable rows outside every subsample, in an order drawn from the
    seed (its own stream: the subsamples and splits are those of ``"validation"``); none (an empty array)
    when fewer than ``CALIBRATION_MIN_JETS`` are left, or with ``"validation"``."""
    spare = np.setdiff1d(trainable, np.concatenate(subsamples)) if cfg.calibration_jets == "apart" else trainable[:0]
    if len(spare) < CALIBRATION_MIN_JETS:
        return spare[:0]
    return np.random.default_rng([cfg.seed, APART_STREAM]).permutation(spare)[:CALIBRATION_APART_JETS]


def _load_training_jets(ds, dataset_dir, cfg: TrainConfig, plan: _Subsamples):
    """The jets of every subsample (their sorted union), checked for the columns the inputs need."""
    data, _ = load_rows(ds, np.unique(np.concatenate(plan.subsamples)))
    if cfg.inputs == "jet-frame":
        for name in ("eta", "phi", "mass", "n_constituents"):
            if not np.all(np.isfinite(getattr(data.jets, name))):
                raise InputFileError(f"{dataset_dir}: column '{name}' is missing or not finite; the "
                                     f"'{cfg.inputs}' inputs need it")
    return data


def _prepare_inputs(data, cfg: TrainConfig, plan: _Subsamples, variation,
                    process_config) -> tuple[dict, np.ndarray, _Prepared]:
    """The network's input arrays (standardised in place) and standardised targets for every loaded jet, and
    each network's shuffled (training, validation) split of its subsample.

    The labels are pT,t(truth) (smeared by ``cfg.smear``) or ``variation``'s; the target is the response
    label / pT,j or the label in GeV (``cfg.target``), standardised with its mean and width."""
    n_constituents = data.x.shape[1]
    labels = _labels(data.pt_truth, data.rows, cfg, variation)
    spectrum = label_spectrum(labels)  # the training pT,t spectrum, stored with the model
    target = labels / data.pt_jet if cfg.target == "response" else labels
    target_mean, target_scale = float(target.mean()), float(target.std()) or 1.0
    label_window = _label_window(process_config, labels)

    raw = raw_inputs(data.jets, cfg.inputs, cfg.n_constituents)
    standardiser = Standardiser.fit(raw)
    x_all = standardiser.apply(raw, in_place=True) if standardiser else raw  # batches are gathered from it
    del raw
    splits = _member_splits(data.rows, plan, cfg)
    # the calibration jets' dataset rows: they are read for the calibration after training (a copy held
    # through the training would add to its peak memory)
    if len(plan.apart):
        val_rows, n_topped_up = plan.apart, 0
    else:
        positions, n_topped_up = _calibration_positions(splits)
        val_rows = data.rows[positions]
    y_all = ((target - target_mean) / target_scale).astype(np.float32)
    return x_all, y_all, _Prepared(splits, target_mean, target_scale, int(n_constituents), standardiser, spectrum,
                                   val_rows, int(n_topped_up), len(plan.apart), label_window)


def _labels(pt_truth: np.ndarray, rows: np.ndarray, cfg: TrainConfig, variation) -> np.ndarray:
    """The labels (GeV) of the jets at dataset ``rows``: pT,t(truth) ``pt_truth`` smeared by ``cfg.smear``, or
    ``variation``'s; fixed per row by the seed, so the calibration jets read again get the same ones."""
    if variation is not None:
        return variation.labels(pt_truth, rows, cfg.seed)
    return smeared_labels(pt_truth, rows, cfg.smear, cfg.seed)


def _member_splits(rows: np.ndarray, plan: _Subsamples, cfg: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each network's shuffled (training, validation) positions in ``rows`` (the sorted union of the
    subsamples), as int32: half the memory of the member's row lists (8 MB for 1M jets)."""
    splits = []
    for sub in plan.subsamples:
        idx = plan.rng.permutation(np.searchsorted(rows, sub).astype(np.int32))
        n_val = max(1, int(round(len(idx) * cfg.validation_fraction)))
        splits.append((idx[n_val:], idx[:n_val]))
    return splits


def _calibration_positions(splits: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, int]:
    """The calibration jets (positions, as in ``splits``) and how many of them are training jets of network 0
    (:func:`_calibration`)."""
    trn0, val0 = splits[0]  # random subsets: the split is a permutation
    n_topped_up = max(0, min(CALIBRATION_MIN_JETS - len(val0), len(trn0)))
    return np.concatenate([val0[:CALIBRATION_JETS], trn0[:n_topped_up]]), int(n_topped_up)


def calibration_rows(dataset_dir, cfg: TrainConfig) -> np.ndarray:
    """The dataset rows of the calibration jets that a training of ``cfg`` on ``dataset_dir`` uses (the jets
    apart from training, or its validation jets topped up with training jets; :func:`_calibration`), in
    that training's order."""
    ds = open_dataset(dataset_dir)
    plan = _plan_subsamples(ds, dataset_dir, cfg)
    if len(plan.apart):
        return plan.apart
    rows = np.unique(np.concatenate(plan.subsamples))
    return rows[_calibration_positions(_member_splits(rows, plan, cfg))[0]]


def _model_meta(cfg: TrainConfig, ds, dataset_dir, command: str | None, plan: _Subsamples, prepared: _Prepared,
                input_shapes: dict, results: list[dict], variation) -> dict:
    """``model.json``: configuration, preprocessing, validity window, dataset, training record, weight files
    (and the label variation trained on)."""
    meta = {
        "format": FORMAT,
        "kind": "ensemble" if cfg.ensemble else "bnn",
        "topcal_version": topcal.__version__,
        "command": command if command is not None else shlex.join(["topcal", *sys.argv[1:]]),
        "config": cfg.to_dict(),
        "preprocessing": {
            "target": cfg.target,
            "target_mean": prepared.target_mean,
            "target_scale": prepared.target_scale,
            "n_constituents": prepared.n_constituents,
            "input_scale_gev": ds.config.input_scale_gev,
            "input_shapes": input_shapes,
            "standardiser": prepared.standardiser.to_dict() if prepared.standardiser else None,
        },
        "validity": {
            "jet_pt_min_gev": ds.config.jet_pt_min_gev,
            "jet_pt_max_gev": ds.config.jet_pt_max_gev,
            "jet_eta_max": ds.config.jet_eta_max,
            "label_window_gev": prepared.label_window,
            "mean_in_label_window": prepared.label_window is not None,
        },
        "dataset": {"path": str(Path(dataset_dir).absolute()), "n_jets": ds.n_jets,
                    "trainable_jets": plan.n_trainable, "process_config": ds.manifest["config"],
                    "process_command": ds.manifest.get("command")},
        "training": {"jets_per_network": plan.n_member, "disjoint_subsamples": plan.disjoint, "members": results},
        "weights": [weights_name(m) for m in range(max(cfg.ensemble, 1))],
    }
    if variation is not None:
        meta["label_variation"] = variation.to_dict()
    return meta


def _calibrate_and_store(work: Path, meta: dict, networks: list | None, prepared: _Prepared, ds,
                         cfg: TrainConfig, variation=None) -> None:
    """The model in ``work`` (the networks just trained, or loaded back from ``work`` when they trained on a
    pool): its calibration on the validation jets into ``meta`` and ``model.json``, then its uncertainty model."""
    in_memory = networks is not None and len(networks) == max(cfg.ensemble, 1)
    model = TrainedModel(work, meta, networks, prepared.standardiser) if in_memory else load_model(work)
    val_jets, pt_truth = _read_jets(ds, prepared.val_rows)
    labels = _labels(pt_truth, prepared.val_rows, cfg, variation)
    meta["calibration"] = _calibration(model, val_jets, labels, cfg, prepared.n_topped_up, prepared.n_apart)
    (work / META).write_text(json.dumps(meta, indent=1) + "\n")
    _store_uncertainty_model(work, model, val_jets, prepared.spectrum)


def _publish(work: Path, out: Path, overwrite: bool) -> None:
    """Drop the checkpoint and the run record from ``work`` and move it to ``out`` in one step."""
    shutil.rmtree(work / CHECKPOINT, ignore_errors=True)
    (work / META_STARTED).unlink()
    publish(work, out, overwrite, MODEL_OUTPUT)


def _calibration(model, jets, labels: np.ndarray, cfg: TrainConfig, training_jets: int = 0, apart_jets: int = 0,
                 samples: int = 50) -> dict:
    """The raw coverage of the trained ``model`` (a :class:`TrainedModel`: the networks just trained, with
    their best weights, or the model directory loaded back) on the calibration jets and, with
    ``cfg.recalibrate``, the width factor that makes their 68% intervals hold 68% of their labels.

    With ``cfg.calibration_jets = "apart"`` and enough trainable jets outside the training subsamples, the
    calibration jets are ``apart_jets`` of those (:func:`_apart_rows`), which no network trained or stopped
    early on. Otherwise they are the validation jets of network 0 (at most ``CALIBRATION_JETS`` of them:
    beyond, the binomial error of the coverage, 0.002, no longer limits the factor, and the copy of the
    jets and their predictions would cost memory and time), topped up to ``CALIBRATION_MIN_JETS`` with the
    last ``training_jets`` of ``jets``, training jets of network 0, when there are fewer. With 400
    validation jets (2k training jets) the binomial error of their coverage, 0.023, moved the factor as
    much as the over-coverage it corrects (one training: raw coverage 0.748 on them, 0.736 on 6,465 test
    jets, factor 0.842 and test coverage 0.654). The Bayesian network's intervals cover its training jets
    as they cover unseen jets (0.739 on its 1,600 training jets in that training), so the 2,000 jets fix
    the factor to about 0.010 in coverage (test coverage 0.673 in that training).

    The factor is always fitted, however close the raw coverage is to 68%: leaving deviations within two
    binomial standard errors uncorrected keeps a systematic over-coverage at small training sizes
    (docs/error_bars.md).

    Each calibration jet's need (:func:`topcal.train.recalibration.needed_stretch`: the smallest stretch
    whose 68% interval, truncated to the label window as in prediction, holds its label) gives the global
    factor ``width_factor`` (their 68% quantile) and, with ``cfg.recalibrate_bins`` > 1, the factor as a
    function of pT,j ``width_factor_pt`` (:func:`topcal.train.recalibration.calibration_in_bins`), the one
    applied when present."""
    from topcal.train.likelihood import summarize
    from topcal.train.metrics import summary_row
    from topcal.train.recalibration import calibration_in_bins, global_calibration, needed_stretch

    mixture = model.sample(jets, samples, seed=cfg.seed, raw=True)
    pred = summarize(*mixture, window=model.label_window, moments_window=model.moments_window)
    row = summary_row(jets.pt, labels, pred)
    out = {"validation_jets": len(labels) - training_jets - apart_jets, "training_jets": training_jets,
           "apart_jets": apart_jets, "samples": samples,
           "coverage68_raw": row["coverage68"],
           "coverage95_raw": row["coverage95"], "pull_width_raw": row["pull_width"], "width_factor": 1.0}
    if cfg.recalibrate:
        need = needed_stretch(*mixture, labels, model.label_window)
        out["width_factor"] = global_calibration(need).factors[0]
        by_pt = calibration_in_bins(jets.pt, need, cfg.recalibrate_bins)
        if len(by_pt.factors) > 1:
            out["width_factor_pt"] = by_pt.to_record()
    return out


def _store_uncertainty_model(work: Path, model, val_jets, spectrum: tuple[np.ndarray, np.ndarray]) -> None:
    """Store with the model what its per-object uncertainties need: the statistical eigen-variations of
    the default posterior (T = ``DEFAULT_SAMPLES``, seed ``DEFAULT_SEED``) on the validation jets
    (:mod:`topcal.train.variations`) and the training pT,t spectrum (:mod:`topcal.train.spectrum`)."""
    samples, seed = model.posterior_key(variations.DEFAULT_SAMPLES, variations.DEFAULT_SEED)
    variations.save(work, variations.fit(variations.draw_means(model, val_jets, samples, seed), samples, seed))
    write_spectrum(work, *spectrum)


def _label_window(config, labels: np.ndarray) -> list[float] | None:
    """The dataset's pT,t(truth) window (GeV) when it is finite and holds every training label (they are
    what the network learns; the predictive intervals are bounded by it, TrainedModel.label_window);
    otherwise None."""
    window = [float(config.truth_pt_min_gev), float(config.truth_pt_max_gev)]
    inside = np.isfinite(window).all() and labels.min() >= window[0] and labels.max() <= window[1]
    return window if config.truth_match and inside else None


def _read_jets(ds, rows: np.ndarray):
    """The jets of dataset rows ``rows`` and their pT,t(truth) (GeV), in that order."""
    ordered = np.sort(rows)
    arrays = load_rows(ds, ordered)[0]
    order = np.searchsorted(ordered, rows)
    return arrays.jets.take(order), arrays.pt_truth[order]


def _subsamples(rng, trainable: np.ndarray, n: int, members: int) -> tuple[list[np.ndarray], bool]:
    """Independent subsamples of ``n`` rows: disjoint when the data allow, otherwise drawn independently."""
    shuffled = rng.permutation(trainable)
    if members * n <= len(trainable):
        return [np.sort(shuffled[m * n:(m + 1) * n]) for m in range(members)], True
    return [np.sort(rng.choice(trainable, n, replace=False)) for _ in range(members)], False


def member_done_path(out, member: int) -> Path:
    """The file that marks member ``member`` of the training into ``out`` as trained (``train(members=...)``)."""
    return partial_dir(out) / CHECKPOINT / f"{member:02d}" / "done.json"


def _write_atomically(path: Path, text: str) -> None:
    """``path`` holds ``text`` whole or not at all, also for a reader in another process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fit_members(cfg: TrainConfig, splits: dict[int, tuple], x_all: dict, y_all, work: Path, progress: bool,
                 executor: str, workers: int, scheduler: str | None) -> tuple[list[dict], list | None]:
    """Train the members ``splits`` (member number -> training and validation rows): one after the other here,
    or at the same time on a worker pool. Returns their results and, when they trained in this process, the
    networks with their best weights (None from a pool)."""
    from topcal.workers import worker_pool

    if len(splits) == 1 or (executor == "iterative" and not scheduler):
        networks: list = []
        return [_fit_member(cfg, m, trn, val, x_all, y_all, work, progress, networks)
                for m, (trn, val) in splits.items()], networks
    files = InputFiles.write(work / INPUTS, x_all, y_all)  # each worker maps them: no copy per member
    try:
        with worker_pool(executor, workers, scheduler) as pool:
            futures = [pool.submit(_fit_member_on_worker, cfg, m, trn, val, files, work)
                       for m, (trn, val) in splits.items()]
            results = []
            with progress_bar(len(futures), "training ensemble members", "network", progress) as bar:
                for future in futures:
                    results.append(future.result())
                    bar.update(1)
    finally:
        shutil.rmtree(files.directory, ignore_errors=True)
    return results, None


@dataclass(frozen=True)
class InputFiles:
    """The training arrays (network inputs and standardised targets) as ``.npy`` files in ``directory``, for
    members that train in other processes or on other machines (which see the checkpoint directory as this
    process does: they write their checkpoints there). Each member maps the files (:meth:`load`) instead of
    receiving a pickled copy: nothing goes over the network, the workers of one machine share one copy of
    the inputs in the page cache, and the mapped arrays are page-aligned, so the training loop gathers from
    them directly (:func:`topcal.train.loop.shared_tensor`)."""

    directory: Path
    names: tuple[str, ...]

    @classmethod
    def write(cls, directory: Path, x_all: dict[str, np.ndarray], y_all: np.ndarray) -> InputFiles:
        shutil.rmtree(directory, ignore_errors=True)  # an interrupted run's files: written again, whole
        try:
            directory.mkdir(parents=True)
            for name, array in (*((f"x_{k}", v) for k, v in x_all.items()), ("y", y_all)):
                np.save(directory / f"{name}.npy", np.asarray(array, dtype=np.float32))
        except OSError as err:
            shutil.rmtree(directory, ignore_errors=True)
            raise OutputError(f"{directory}: cannot write the training inputs for the workers "
                              f"({err.strerror or err})") from None
        return cls(directory, tuple(sorted(x_all)))

    def load(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The arrays, memory-mapped copy-on-write (writeable, as DLPack needs; the files stay unchanged)."""
        try:
            return ({name: np.load(self.directory / f"x_{name}.npy", mmap_mode="c") for name in self.names},
                    np.load(self.directory / "y.npy", mmap_mode="c"))
        except FileNotFoundError as err:
            raise InputFileError(f"{err.filename}: training inputs not found; this worker must see the "
                                 f"checkpoint directory {self.directory.parent} at the same path") from None


def _fit_member_on_worker(cfg: TrainConfig, member: int, trn: np.ndarray, val: np.ndarray, files: InputFiles,
                          work: Path) -> dict:
    """:func:`_fit_member` in a pool's worker, on the arrays mapped from ``files``."""
    x_all, y_all = files.load()
    return _fit_member(cfg, member, trn, val, x_all, y_all, work, False)


def _fit_member(cfg: TrainConfig, member: int, trn: np.ndarray, val: np.ndarray, x_all: dict, y_all, work: Path,
                progress: bool, keep: list | None = None) -> dict:
    """Train network ``member`` (its seed: ``cfg.seed + 7919 x member``), with checkpoints under ``work``.

    Each epoch is one compiled call (:class:`topcal.train.loop.EpochLoop`) over the training rows in an order
    drawn from the member's seed and the epoch number. The best weights (by validation NLL) are kept in
    memory and written with every checkpoint and at the end. ``keep``: a list that gets the network, set to
    its best weights (the calibration uses it instead of building it again from the files)."""
    import tensorflow as tf

    from topcal.train.loop import EpochLoop
    from topcal.train.network import build_network

    deterministic()
    seed = cfg.seed + 7919 * member
    tf.keras.utils.set_random_seed(seed)  # the same weights wherever the member trains

    shapes = {k: v.shape[1:] for k, v in x_all.items()}
    model = build_network(cfg, shapes, len(trn), bayesian=not cfg.ensemble)
    trn, val = np.sort(trn), np.sort(val)

    ckpt_dir = work / CHECKPOINT / f"{member:02d}"
    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(ckpt, str(ckpt_dir), max_to_keep=1)
    run = _MemberRun(member, model, manager, ckpt_dir, work / weights_name(member), cfg)
    if manager.latest_checkpoint and run.state_path.is_file():
        ckpt.restore(manager.latest_checkpoint)
        run.state = json.loads(run.state_path.read_text())
        if run.weights_path.is_file():
            run.best = run.weights_from(run.weights_path)
        if run.state.get("done"):
            run.keep_best(keep)
            return _member_result(run.state, len(trn), len(val), run.epoch_seconds)

    state = run.state
    with progress_bar(cfg.epochs, f"training network {member}", "epoch", progress, initial=state["epoch"]) as bar, \
            contextlib.closing(EpochLoop(model, x_all, y_all, cfg.batch_size)) as loop:
        while state["epoch"] < cfg.epochs and state["wait"] < cfg.patience:
            started = time.perf_counter()
            order = np.random.default_rng([seed, state["epoch"]]).permutation(trn)
            loss, nll, val_nll = loop.epoch(order, val)
            run.epoch_seconds.append(time.perf_counter() - started)
            run.after_epoch(loss, nll, val_nll)
            bar.set_postfix(nll=f"{nll:.4f}", val_nll=f"{state['history'][-1]['val_nll']:.4f}")
            bar.update(1)
        if state["epoch"] < cfg.epochs:
            finish_early(bar, f"stopped early at epoch {state['epoch']} (best {state['best_epoch']})")
    state["done"] = True
    run.save()
    run.keep_best(keep)
    return _member_result(state, len(trn), len(val), run.epoch_seconds)


class _MemberRun:
    """The bookkeeping of one member's training: history, best weights (by validation NLL), learning-rate
    halving, patience, NaN check, and the resumable checkpoint (at most every ``CHECKPOINT_SECONDS``)."""

    def __init__(self, member: int, model, manager, ckpt_dir: Path, weights_path: Path, cfg: TrainConfig):
        self.member, self.model, self.manager, self.cfg = member, model, manager, cfg
        self.ckpt_dir, self.weights_path, self.state_path = ckpt_dir, weights_path, ckpt_dir / "state.json"
        self.state = {"epoch": 0, "history": [], "best_val_loss": float("inf"), "best_epoch": 0, "wait": 0,
                      "lr_wait": 0, "learning_rate": cfg.learning_rate}
        self.best, self.best_written, self.last_save = None, True, time.monotonic()
        self._variables: list | None = None  # the network's weights, listed at first use (see variables)
        self.epoch_seconds: list[float] = []  # this run's epochs (a resumed run: the epochs after the resume)

    def after_epoch(self, loss: float, nll: float, val_nll: float) -> None:
        state, cfg = self.state, self.cfg
        if not (np.isfinite(loss) and np.isfinite(val_nll)):
            raise TrainingDiverged(
                f"network {self.member}: loss became {loss} (validation NLL {val_nll}) in epoch "
                f"{state['epoch'] + 1}; the last good checkpoint is in {self.ckpt_dir} (lower the learning rate, "
                f"then --resume)")
        state["epoch"] += 1
        state["history"].append({"epoch": state["epoch"], "loss": loss, "nll": nll, "val_nll": val_nll,
                                 "learning_rate": state["learning_rate"]})
        if val_nll < state["best_val_loss"]:
            state.update(best_val_loss=val_nll, best_epoch=state["epoch"], wait=0, lr_wait=0)
            self.best, self.best_written = self.get_weights(), False
        else:
            state["wait"] += 1
            state["lr_wait"] += 1
        if cfg.lr_patience is not None and state["lr_wait"] >= cfg.lr_patience:
            state["learning_rate"] *= 0.5
            state["lr_wait"] = 0
            self.model.optimizer.learning_rate.assign(state["learning_rate"])
        if time.monotonic() - self.last_save > CHECKPOINT_SECONDS:
            self.save()

    def keep_best(self, keep: list | None) -> None:
        """Set the network to its best weights and append it to ``keep`` (when given, and when there are
        best weights)."""
        if keep is not None and self.best is not None:
            self.set_weights(self.best)
            keep.append(self.model)

    @property
    def variables(self) -> list:
        """``model.weights``, listed once: Keras walks every layer (and TFP's distributions in them) each
        time it lists them, 60 ms for the paper's network, at every improved epoch and every save."""
        if self._variables is None:
            self._variables = self.model.weights
        return self._variables

    def get_weights(self) -> list:
        """The network's weights as numpy arrays (``model.get_weights()``)."""
        return [v.numpy() for v in self.variables]

    def set_weights(self, values: list) -> None:
        """Set the network's weights from :meth:`get_weights`' arrays (``model.set_weights``)."""
        for variable, value in zip(self.variables, values, strict=True):
            variable.assign(value)

    def weights_from(self, path: Path) -> list:
        """The weights stored at ``path`` (the network keeps its own)."""
        current = self.get_weights()
        self.model.load_weights(str(path))
        stored = self.get_weights()
        self.set_weights(current)
        return stored

    def save(self) -> None:
        """The best weights (when new), then the weights, optimiser state and bookkeeping of the last
        finished epoch (for --resume)."""
        if not self.best_written and self.best is not None:
            current = self.get_weights()
            self.set_weights(self.best)
            self.model.save_weights(str(self.weights_path))
            self.set_weights(current)
            self.best_written = True
        self.manager.save()
        self.state_path.write_text(json.dumps(self.state))
        self.last_save = time.monotonic()


def _member_result(state: dict, n_train: int, n_val: int, epoch_seconds: list[float]) -> dict:
    return {"epochs": state["epoch"], "best_epoch": state["best_epoch"], "best_val_loss": state["best_val_loss"],
            "n_train": n_train, "n_val": n_val, "history": state["history"], "epoch_seconds": epoch_seconds}
