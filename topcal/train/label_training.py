"""``topcal train --label-systematics CARD``: the nominal network and the networks that a card's label sources
need (:mod:`topcal.train.label_sources`), trained as tasks on the executors of :mod:`topcal.workers` and
assembled into one model directory::

    MODEL/                                           the nominal network (load_model(MODEL) gives it)
    MODEL/label_systematics/label_systematics.json   the card, and which network gives what
    MODEL/label_systematics/<name>/                  a full model directory per variation: each smear
                                                     source, all-smear (all together), <shift>-up/-down

Every network trains with the same configuration and seed (so the same subsample, initial weights and
batches), only the labels differ. They train into a parts directory (``MODEL.labels.partial`` for the
command), one model directory per network named by a digest of its configuration and labels, so an
interrupted run resumes and two cards that share a source share its network. The model appears whole or not
at all.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from topcal.config import TrainConfig
from topcal.errors import ConfigError, OutputError
from topcal.io.atomic import atomic_output, check_output, refuse_overlap
from topcal.io.manifest import read_manifest
from topcal.train.label_sources import LabelCard, LabelVariation, read_label_card
from topcal.train.model_dir import LABEL_DIR
from topcal.train.model_dir import OUTPUT as MODEL_OUTPUT
from topcal.workers import Task, run_tasks, worker_pool

LABEL_META = "label_systematics.json"
LABEL_FORMAT = "topcal-label-systematics/1"
STARTED = "started.json"


def parts_dir(out: str | Path) -> Path:
    """Where the networks of ``topcal train -o OUT --label-systematics`` train before assembly."""
    out = Path(out)
    return out.with_name(out.name + ".labels.partial")


def network_dirs(parts: Path, cfg: TrainConfig, card: LabelCard) -> tuple[Path, dict[str, tuple[Path, LabelVariation]]]:
    """The nominal network's directory and, by sub-model name, each variation's directory and labels."""
    def digest(variation: LabelVariation | None) -> str:
        text = json.dumps([cfg.to_dict(), variation.to_dict() if variation else None], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    variations = card.variations()
    return parts / f"nominal-{digest(None)}", {name: (parts / f"{name}-{digest(v)}", v)
                                               for name, v in variations.items()}


def label_tasks(dataset, parts: Path, cfg: TrainConfig, card: LabelCard, command: str | None, progress: bool = False,
                prefix: str = "label ") -> list[Task]:
    """One training task per network of the card (nominal first), each resumable, named
    ``train <prefix><name>``; tasks of networks shared by several cards have the same name and output."""
    nominal, variations = network_dirs(parts, cfg, card)
    tasks = [Task(f"train {prefix}nominal", nominal / "model.json", train_network, (dataset, nominal, cfg),
                  dict(progress=progress, command=command))]
    for _name, (path, variation) in variations.items():
        tasks.append(Task(f"train {prefix}{path.name}", path / "model.json", train_network, (dataset, path, cfg),
                          dict(progress=progress, command=command, variation=variation)))
    return tasks


def train_network(dataset, out: Path, cfg: TrainConfig, **kwargs) -> None:
    """:func:`topcal.train.fit.train` of one network into ``out`` (its directory made first), resuming an
    interrupted run of it."""
    from topcal.train.fit import train

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    train(dataset, out, cfg, resume=True, **kwargs)


def assemble(parts: Path, out, cfg: TrainConfig, card: LabelCard, overwrite: bool = False,
             inputs: tuple = ()) -> Path:
    """Copy the trained networks of ``parts`` into the model directory ``out`` (see the module docstring)."""
    nominal, variations = network_dirs(parts, cfg, card)
    with atomic_output(out, overwrite, inputs=inputs, kind=MODEL_OUTPUT) as tmp:
        shutil.copytree(nominal, tmp)
        for name, (path, _) in variations.items():
            shutil.copytree(path, tmp / LABEL_DIR / name)
        (tmp / LABEL_DIR).mkdir(exist_ok=True)
        meta = {"format": LABEL_FORMAT, "card_file": card.path, "card": card.to_dict(),
                "models": list(variations), "all_smear": card.all_smear_model()}
        (tmp / LABEL_DIR / LABEL_META).write_text(json.dumps(meta, indent=1) + "\n")
    return Path(out)


def read_label_meta(model_dir) -> dict | None:
    """The label-systematics record of a model directory (None when it has none), after checking that every
    sub-model it lists is there; ``card`` is a :class:`LabelCard`."""
    where = Path(model_dir) / LABEL_DIR
    if not (where / LABEL_META).exists():
        return None
    meta = read_manifest(where, LABEL_META, LABEL_FORMAT, "label-systematics",
                         lambda m: [f"{name}/model.json" for name in m["models"]])
    return {**meta, "card": LabelCard.from_dict(meta["card"], meta.get("card_file", ""))}


@dataclass
class LabelTrainSummary:
    path: Path
    card: LabelCard
    steps: list[tuple[str, float, str]] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [f"wrote model with label systematics to {self.path} ({len(self.steps)} networks, "
                 f"{self.seconds:.0f} s): sources "
                 + ", ".join(f"{s.name} ({s.kind})" for s in self.card.sources)]
        lines += [f"  {name:<40s} {sec:8.1f} s  {what}" for name, sec, what in self.steps]
        return "\n".join(lines)


def train_label_systematics(dataset_dir, out, cfg: TrainConfig, card_path, overwrite: bool = False,
                            resume: bool = False, progress: bool = True, command: str | None = None,
                            executor: str = "iterative", workers: int = 1,
                            scheduler: str | None = None) -> LabelTrainSummary:
    """Train the nominal network and every network the card at ``card_path`` needs on ``dataset_dir``, as
    tasks on ``executor`` (one at a time, a local pool of ``workers``, or dask at ``scheduler``), and write
    the model directory ``out`` (see the module docstring). ``resume`` continues from ``out``'s parts
    directory; ``overwrite`` replaces ``out`` and starts the parts again."""
    t0 = time.perf_counter()
    card = read_label_card(card_path)
    cfg.validate()
    if cfg.smear:
        raise ConfigError(f"smear: {cfg.smear} cannot be combined with --label-systematics {card_path} (give the "
                          f"smearing as a smear source of the card)")
    out = check_output(out, overwrite, inputs=[dataset_dir, card_path], kind=MODEL_OUTPUT)
    parts = parts_dir(out)
    refuse_overlap(parts, [dataset_dir, card_path])
    started = {"config": cfg.to_dict(), "card": card.to_dict(), "dataset": str(Path(dataset_dir).absolute())}
    if parts.exists() and not resume:
        if not overwrite:
            raise OutputError(f"{parts}: an interrupted training's networks are there; pass --resume to continue "
                              f"or --overwrite to start again")
        shutil.rmtree(parts)
    if resume and (parts / STARTED).is_file() and json.loads((parts / STARTED).read_text()) != started:
        raise ConfigError(f"{parts}: --resume with a configuration, card or dataset different from the interrupted "
                          f"run's; pass --overwrite to start again")
    parts.mkdir(exist_ok=True)
    (parts / STARTED).write_text(json.dumps(started))
    command = command if command is not None else shlex.join(["topcal", *sys.argv[1:]])
    summary = LabelTrainSummary(Path(out), card)
    with worker_pool(executor, workers, scheduler) as pool:
        tasks = label_tasks(dataset_dir, parts, cfg, card, command, progress=progress and pool.local)
        run_tasks(tasks, pool, on_done=lambda t, sec, what: summary.steps.append((t.name, sec, what)))
    assemble(parts, out, cfg, card, overwrite, inputs=[dataset_dir, card_path])
    shutil.rmtree(parts, ignore_errors=True)
    summary.seconds = time.perf_counter() - t0
    return summary
