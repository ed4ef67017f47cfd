"""The main job: the whole chain on one DELPHES file in a few minutes (``topcal demo``, ``make demo``).

process (fat jets, truth match, the default data set definition; no flattening, to keep every jet of a
small sample) -> train topcal's default Bayesian network -> evaluate it on the held-out jets against the
fat-jet pT with a linear response correction -> predict every fat jet of the input into a ROOT friend tree.
Every step is the library function behind its ``topcal`` subcommand; the step's output directory is reused
when it is already complete, so an interrupted run resumes. The same seed gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from topcal.config import ProcessConfig, TrainConfig

DEMO_TRAIN = TrainConfig(patience=20)  # a small sample: noisier validation, so more patience


@dataclass
class MainJobSummary:
    out_dir: Path
    lines: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([*self.lines, f"everything is in {self.out_dir}"])


def main_job(sample, out_dir, train_config: TrainConfig = DEMO_TRAIN, samples: int = 30, progress: bool = True,
             command: str | None = None) -> MainJobSummary:
    """Run process -> train -> evaluate -> predict on ``sample`` (``None``: the embedded sample) into ``out_dir``
    (reusing finished steps)."""
    from topcal.data import EMBEDDED_SAMPLE
    from topcal.predict.run import predict
    from topcal.process.run import process
    from topcal.train.evaluate import evaluate
    from topcal.train.fit import train

    sample = EMBEDDED_SAMPLE if sample is None else sample
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = MainJobSummary(out)
    steps = [
        ("dataset", "dataset.json", lambda p: process([sample], p, ProcessConfig(flatten=False), chunksize=1000,
                                                      progress=progress, command=command)),
        ("model", "model.json", lambda p: train(out / "dataset", p, train_config, progress=progress,
                                                command=command)),
        ("report", "report.json", lambda p: evaluate(out / "model", out / "dataset", p, samples=samples,
                                                     progress=progress, command=command)),
        ("friends", None, lambda p: predict(out / "model", [sample], p, samples=samples, progress=progress,
                                            overwrite=True, command=command)),
    ]
    for name, marker, run in steps:
        path = out / name
        if marker is not None and (path / marker).is_file():
            summary.lines.append(f"[{name}] reusing {path}")
            continue
        result = run(path)
        summary.lines.append(f"[{name}] {result}")
    figures = sorted(p for p in out.rglob("*.png"))
    summary.lines.append("figures:\n" + "\n".join(f"  {p}" for p in figures))
    return summary
