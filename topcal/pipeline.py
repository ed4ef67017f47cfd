"""The main job: the whole chain on one DELPHES file in a few minutes (``topcal demo``, ``make demo``).

process (fat jets, truth match, the default data set definition; no flattening, to keep every jet of a
small sample) -> train topcal's default Bayesian network -> evaluate it on the held-out jets against the
fat-jet pT with a linear response correction -> predict every fat jet of the input into a ROOT friend tree.
Every step is the library function behind its ``topcal`` subcommand. The same seed gives the same numbers.

A finished step records its fingerprint (:data:`topcal.io.atomic.STEP_FILE` in its output): the sample's path,
size and modification time, the step's configuration, topcal's version and the fingerprint of the step before.
A later run reuses a step only when the fingerprint is the same, so an interrupted run resumes; when anything
differs the step and every step after it are done again and replace the old outputs. A reused step prints the
summary it printed when it ran.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import topcal
from topcal.config import ProcessConfig, TrainConfig
from topcal.errors import ConfigError, InputFileError
from topcal.io.atomic import STEP_FILE, OutputKind, claim_directory, refuse_foreign

DEMO_TRAIN = TrainConfig(patience=20)  # a small sample: noisier validation, so more patience
STEPS = ("dataset", "model", "report", "friends")
OUTPUT = OutputKind("demo output", contents=STEPS, manifest_required=False)
FRIENDS = OutputKind("friend folder", contents=("*_topcal.root",), manifest_required=False)
CHUNKSIZE = 1000


@dataclass
class MainJobSummary:
    out_dir: Path
    lines: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([*self.lines, f"everything is in {self.out_dir}"])


def sample_identity(sample) -> dict:
    """What identifies the input file without reading it: absolute path, size in bytes, modification time."""
    path = Path(sample)
    if not path.is_file():
        raise InputFileError(f"{sample}: {'is a directory, not a file' if path.is_dir() else 'file not found'}")
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def fingerprint(step: str, upstream: str, **config) -> str:
    """A hash of the step's name, configuration, topcal's version and the fingerprint of the step before."""
    text = json.dumps({"step": step, "upstream": upstream, "topcal_version": topcal.__version__, **config},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def recorded_step(path: Path) -> dict:
    """The fingerprint and summary that a finished step left in ``path`` ({} when there is none)."""
    try:
        record = json.loads((path / STEP_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def record_step(path: Path, print_: str, summary: str) -> None:
    """Write the step's fingerprint and summary into its output, atomically (a step without one is redone)."""
    tmp = path / f".{STEP_FILE}.tmp-{os.getpid()}-0"
    tmp.write_text(json.dumps({"fingerprint": print_, "summary": summary}, indent=1) + "\n")
    os.replace(tmp, path / STEP_FILE)


def main_job(sample, out_dir, train_config: TrainConfig = DEMO_TRAIN, samples: int = 50, progress: bool = True,
             command: str | None = None) -> MainJobSummary:
    """Run process -> train -> evaluate -> predict on ``sample`` (``None``: the embedded sample) into ``out_dir``
    (reusing the finished steps whose fingerprint is unchanged, redoing the others and all steps after them)."""
    from topcal.data import EMBEDDED_SAMPLE
    from topcal.io.dataset import OUTPUT as DATASET
    from topcal.predict.run import predict
    from topcal.process.run import process
    from topcal.train.evaluate import OUTPUT as REPORT
    from topcal.train.evaluate import evaluate
    from topcal.train.fit import train
    from topcal.train.model_dir import OUTPUT as MODEL

    sample = EMBEDDED_SAMPLE if sample is None else sample
    train_config.validate()
    if samples < 2:
        raise ConfigError(f"--samples: {samples} must be >= 2")
    identity = sample_identity(sample)
    out = Path(out_dir)
    for name, kind in zip(STEPS, (DATASET, MODEL, REPORT, FRIENDS)):  # before any work
        refuse_foreign(out / name, kind)
    out = claim_directory(out, OUTPUT)
    summary = MainJobSummary(out)
    process_cfg = ProcessConfig(flatten=False)
    steps = [
        ("dataset", dict(sample=identity, config=process_cfg.to_dict(), chunksize=CHUNKSIZE),
         lambda p: process([sample], p, process_cfg, chunksize=CHUNKSIZE, progress=progress, overwrite=True,
                           command=command)),
        ("model", dict(config=train_config.to_dict()),
         lambda p: train(out / "dataset", p, train_config, progress=progress, overwrite=True, command=command)),
        ("report", dict(samples=samples, seed=0),
         lambda p: evaluate(out / "model", out / "dataset", p, samples=samples, seed=0, progress=progress,
                            overwrite=True, command=command)),
        ("friends", dict(sample=identity, samples=samples, seed=0),
         lambda p: _friends(predict, out / "model", sample, p, samples, progress, command)),
    ]
    upstream = ""
    for name, config, run in steps:
        path = out / name
        upstream = fingerprint(name, upstream, **config)
        record = recorded_step(path)
        if record.get("fingerprint") == upstream and "summary" in record:
            summary.lines.append(f"[{name}] {record['summary']}")
            summary.lines.append(f"  (reusing {path}: same inputs and configuration)")
            continue
        (path / STEP_FILE).unlink(missing_ok=True)  # an interrupted redo is never taken for the old step
        text = str(run(path))
        record_step(path, upstream, text)
        summary.lines.append(f"[{name}] {text}")
    figures = sorted(p for p in out.rglob("*.png"))
    summary.lines.append("figures:\n" + "\n".join(f"  {p}" for p in figures))
    return summary


def _friends(predict, model, sample, path: Path, samples: int, progress: bool, command):
    """The friend file of ``sample`` in ``path``, replacing an earlier one and removing friends of other
    samples that an earlier run left there."""
    result = predict(model, [sample], path, samples=samples, progress=progress, overwrite=True, command=command)
    for old in path.glob("*_topcal.root"):
        if old not in result.friends:
            old.unlink()
    return result
