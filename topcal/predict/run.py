"""``topcal predict``: a trained model over DELPHES files -> one ROOT friend file per input file.

The jets are clustered with the model's training configuration (read from the model), every jet above the
clustering threshold gets a prediction, and jets outside the training range are flagged
(``FatJet_inTrainingRange``), not dropped. Chunks run on any coffea executor, are staged, and are written
per input file in entry order; each friend file appears atomically, with exactly as many entries as the
input's ``Delphes`` tree.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak

import topcal
from topcal.errors import InputFileError, OutputError
from topcal.io.atomic import refuse_foreign, refuse_overlap, remove_stale_temporaries, temporary_name
from topcal.predict.calibrator import Calibrator, cached_model
from topcal.predict.friend_tree import DEFAULT_TREE, FRIEND_FILE, friend_name, write_friend
from topcal.process.executors import make_runner
from topcal.process.fileset import build_fileset
from topcal.process.run import check_inputs, run_or_diagnose
from topcal.train.model_dir import read_meta

STAGING = "topcal-predict-staging"


@dataclass
class PredictSummary:
    out_dir: Path
    friends: list[Path] = field(default_factory=list)
    events: int = 0
    jets: int = 0
    skipped: list[str] = field(default_factory=list)
    posterior: dict = field(default_factory=dict)  # Calibrator.describe(): T, seed, prior, variations

    def __str__(self) -> str:
        lines = [f"wrote {len(self.friends)} friend file(s) to {self.out_dir}: {self.events} events, "
                 f"{self.jets} fat jets with predictions"]
        lines += [f"  {p}" for p in self.friends]
        lines += [f"  skipped bad file: {s}" for s in self.skipped]
        if self.posterior:
            v, prior = self.posterior.get("stat_variations"), self.posterior.get("prior")
            lines.append(f"  statistical variations: {v['k']} (FatJet_ptPred_stat0..{v['k'] - 1}, "
                         f"{100 * v['variance_kept']:.1f}% of the variance)" if v else
                         "  statistical variations: none stored for this --samples and --seed "
                         "(`topcal variations` computes them)")
            lines.append(f"  prior: {prior['source']}" if prior else "  prior: none (the flat training prior)")
        return "\n".join(lines)


def predict(model_dir, inputs, out_dir, executor: str = "iterative", workers: int = 1, scheduler: str | None = None,
            chunksize: int = 20_000, samples: int = 50, seed: int = 0, reference=None, prior=None,
            stat_variations: bool | None = None, tree_name: str = DEFAULT_TREE,
            skip_bad_files: bool = False, overwrite: bool = False, progress: bool = True, radius: float | None = None,
            command: str | None = None, systematics=None) -> PredictSummary:
    """Write ``out_dir/<input stem>_topcal.root`` friends for every input file (see the module docstring);
    ``prior``, ``stat_variations`` and ``systematics`` (the detector sources: branches
    ``FatJet_ptPred_<source>Up``, ``FatJet_pt_<source>Up``, ... ``Down``) as in :class:`topcal.Calibrator`."""
    from processors.fatjet_predict import FatJetPredictProcessor

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tree_name or ""):
        raise InputFileError(f"--tree-name: {tree_name!r} is not a valid tree name (letters, digits, '_')")
    calibrator = Calibrator(model_dir, samples=samples, seed=seed, reference=reference, prior=prior,
                            stat_variations=stat_variations, systematics=systematics)
    meta = read_meta(model_dir)
    cfg = calibrator.config
    if radius is not None and abs(radius - cfg.jet_radius) > 1e-9:
        raise InputFileError(f"{model_dir}: model was trained on R = {cfg.jet_radius} jets, not R = {radius}")
    fileset, entries, skipped = check_inputs(build_fileset(inputs), cfg, skip_bad_files, need_truth=False)
    files = [f for fs in fileset.values() for f in fs]
    out_dir = Path(out_dir)
    targets = {f: out_dir / friend_name(f) for f in files}
    if len(set(targets.values())) != len(targets):
        raise InputFileError("two inputs have the same file name; their friends would collide")
    for target in targets.values():
        refuse_overlap(target, [*files, model_dir, *([reference] if reference else [])])
    refuse_overlap(out_dir, [model_dir, *([reference] if reference else [])])
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise OutputError(f"{existing[0]}: friend exists; pass --overwrite to replace it")
    for target in targets.values():
        refuse_foreign(target, FRIEND_FILE)
    for path in (calibrator.model_dir, calibrator.reference_dir):  # damaged weights: one line, before the run
        if path:
            cached_model(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = command if command is not None else shlex.join(["topcal", *sys.argv[1:]])
    metadata = {"topcal_model": json.dumps(meta), "topcal_model_path": str(Path(model_dir).absolute()),
                "topcal_command": command, "topcal_version": topcal.__version__,
                "topcal_posterior": json.dumps(calibrator.describe())}

    summary = PredictSummary(out_dir, skipped=skipped, posterior=calibrator.describe())
    remove_stale_temporaries(out_dir / STAGING)
    staging = temporary_name(out_dir / STAGING)
    staging.mkdir()
    try:
        proc = FatJetPredictProcessor(calibrator, {f: i for i, f in enumerate(files)}, staging)
        with make_runner(executor, workers, scheduler, chunksize, progress, skip_bad_files=False,
                         desc="Predicting") as runner:
            result = run_or_diagnose(runner, fileset, proc, cfg, need_truth=False)
        for f in files:
            parts = sorted((p for p in result["parts"] if p["file"] == f), key=lambda p: p["entry_start"])
            _check_coverage(f, parts, entries[f])
            chunks = (ak.from_parquet(staging / p["name"]) for p in parts)
            written = write_friend(targets[f], chunks, metadata, tree_name, overwrite)
            if written != entries[f]:
                raise OutputError(f"{targets[f]}: wrote {written} entries for {entries[f]} input events")
            summary.friends.append(targets[f])
        summary.events = int(result["events"])
        summary.jets = int(result["jets"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _check_coverage(file: str, parts: list[dict], entries: int) -> None:
    """The staged chunks of a file cover its entries 0..N exactly once, in order."""
    position = 0
    for p in parts:
        if p["entry_start"] != position:
            raise OutputError(f"{file}: entries {position}..{p['entry_start']} were not processed")
        position = p["entry_stop"]
    if position != entries:
        raise OutputError(f"{file}: entries {position}..{entries} were not processed")
