"""``topcal process``: DELPHES files -> a flattened, truth-matched per-jet dataset (library function).

1. Check every input (``--skip-bad-files`` drops bad ones and reports them).
2. Run :class:`processors.fatjet_dataset.FatJetDatasetProcessor` with a coffea runner (iterative, futures
   or dask); each chunk's jets are staged as one Parquet part.
3. :func:`finalize`: flatten in pT,t(truth) against the accumulated histogram, rewrite the parts in file
   and entry order, save the histograms, the manifest and the figures.

Everything is written into a temporary directory that is renamed at the end, so a failed run leaves no
dataset that looks complete. The output does not depend on the executor, the worker count or the chunk size.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import uproot

import topcal
from topcal.config import DEFAULT_MAX_CONSTITUENTS, ISR_MAX_CONSTITUENTS, ProcessConfig
from topcal.errors import InputFileError
from topcal.io.atomic import atomic_output, check_output
from topcal.io.dataset import HISTOGRAMS, OUTPUT, part_name, read_part, write_manifest, write_part
from topcal.io.delphes_reader import TREE_NAME, check_delphes_file, diagnose_read_error, read_metadata
from topcal.process.executors import make_runner
from topcal.process.fileset import build_fileset, coffea_fileset
from topcal.process.flatten import acceptance, flatten_target, keep, thin_bins
from topcal.process.histograms import as_double, fill_histograms, make_histograms
from topcal.process.selection import subset
from topcal.process.truth import TRUTH_FIELDS

REQUIRED_COLLECTIONS = ("Event", "Particle", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron")
TOWER_COLLECTIONS = ("Event", "Particle", "Tower")
STAGING = ".staging"
FLATTEN_KEPT = "jets kept by flattening"


@dataclass
class ProcessSummary:
    """What a process run produced."""

    path: Path
    n_jets: int
    cutflow: dict[str, int]
    kept_fraction: float
    skipped: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    flatten_note: str | None = None  # why flattening dropped jets (None: no flattening)
    notes: list[str] = field(default_factory=list)  # advice on the configuration, printed last

    def cutflow_table(self) -> str:
        width = max(len(k) for k in self.cutflow)
        lines = ["cut flow:"]
        for name, n in self.cutflow.items():
            lines.append(f"  {name:<{width}s} {n:>10d}")
        return "\n".join(lines)

    def __str__(self) -> str:
        lines = [f"wrote {self.n_jets} jets to {self.path}", self.cutflow_table()]
        if self.flatten_note is not None and self.cutflow.get("jets with finite pT,t(truth) in window"):
            lines.append(f"  flattening kept {100 * self.kept_fraction:.1f}% of the selected jets{self.flatten_note}")
        for s in self.skipped:
            lines.append(f"  skipped bad file: {s}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def made_with_isr(inputs) -> bool:
    """Whether any topcal-generated input was made with initial-state radiation (from the generator
    configuration recorded in the file; other DELPHES files count as without)."""
    for files in build_fileset(inputs).values():
        for f in files:
            try:
                text = read_metadata(f, "topcal_config")
            except Exception:  # unreadable files are reported by check_inputs with a clear message
                continue
            if text and json.loads(text).get("generator", {}).get("isr"):
                return True
    return False


ISR_LABEL_NOTE = ("the input was made with ISR, and the hard-process label misses the recoil of the top against "
                  "the initial-state radiation (tens of GeV), which no jet can measure: --top-label before-fsr "
                  "labels the top after that recoil (docs/dataset.md)")


USED_FIELDS = {"Event": ("Weight",), "Particle": TRUTH_FIELDS, "EFlowTrack": ("PT", "Eta", "Phi", "PID"),
               "EFlowPhoton": ("ET", "Eta", "Phi"), "EFlowNeutralHadron": ("ET", "Eta", "Phi"),
               "Tower": ("ET", "Eta", "Phi")}


def used_collections(cfg: ProcessConfig, need_truth: bool = True) -> tuple[str, ...]:
    """The DELPHES collections a run reads (``Particle`` only when ``need_truth``)."""
    collections = TOWER_COLLECTIONS if cfg.use_towers else REQUIRED_COLLECTIONS
    return collections if need_truth else tuple(c for c in collections if c != "Particle")


def used_leaves(collections: tuple[str, ...]) -> tuple[str, ...]:
    """The ``Coll.Field`` leaves topcal reads from ``collections`` (others may be absent or unreadable)."""
    return tuple(f"{c}.{f}" for c in collections for f in USED_FIELDS[c])


def run_or_diagnose(runner, fileset: dict, proc, cfg: ProcessConfig, need_truth: bool = True):
    """``runner`` over ``fileset``; when it fails because an input's data is damaged, the error is one line
    naming the file and the branch (coffea's executors wrap and, across processes, flatten the original)."""

    try:
        return runner(coffea_fileset(fileset, TREE_NAME), processor_instance=proc, treename=TREE_NAME)
    except Exception:
        files = [f for fs in fileset.values() for f in fs]
        collections = used_collections(cfg, need_truth)
        diagnosis = diagnose_read_error(files, collections, used_leaves(collections))
        if diagnosis is None:
            raise
        raise diagnosis from None


def check_inputs(fileset: dict[str, list[str]], cfg: ProcessConfig, skip_bad_files: bool, need_truth: bool = True):
    """Drop (with ``skip_bad_files``) or reject files that are not readable DELPHES files with the needed
    collections (``Particle`` only when ``need_truth``). Returns ``(fileset, entries per file, skipped)``."""
    collections = used_collections(cfg, need_truth)
    good: dict[str, list[str]] = {}
    entries: dict[str, int] = {}
    skipped: list[str] = []
    for dataset, files in fileset.items():
        for f in files:
            try:
                if Path(f).is_dir():
                    raise InputFileError(f"{f}: is a directory, not a DELPHES file")
                entries[f] = check_delphes_file(f, collections, used_leaves(collections), deep=skip_bad_files)
            except InputFileError as exc:
                if not skip_bad_files:
                    raise
                skipped.append(str(exc))
                continue
            good.setdefault(dataset, []).append(f)
    if not good:
        raise InputFileError("no readable input file left: " + "; ".join(skipped))
    return good, entries, skipped


def process(
    inputs,
    out: str | Path,
    cfg: ProcessConfig | None = None,
    executor: str = "iterative",
    workers: int = 1,
    scheduler: str | None = None,
    chunksize: int = 20_000,
    skip_bad_files: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    figures: bool = True,
    command: str | None = None,
) -> ProcessSummary:
    """Make the per-jet dataset ``out`` (a directory) from DELPHES ``inputs`` (paths, globs, JSON filesets).
    ``cfg.max_constituents = None`` (the default) becomes ``ISR_MAX_CONSTITUENTS`` (200) when any input was
    made with ISR (:func:`made_with_isr`: more soft radiation inside the jet), else
    ``DEFAULT_MAX_CONSTITUENTS`` (100); an ISR input with the hard-process label gets a note in the summary."""
    from processors.fatjet_dataset import CUTFLOW, FatJetDatasetProcessor

    cfg = cfg or ProcessConfig()
    cfg.validate()
    # the inputs' metadata is read only when a choice depends on it
    label_note = cfg.truth_match and cfg.top_label == "hard-process"
    isr = (cfg.max_constituents is None or label_note) and made_with_isr(inputs)
    if cfg.max_constituents is None:
        cfg = replace(cfg, max_constituents=ISR_MAX_CONSTITUENTS if isr else DEFAULT_MAX_CONSTITUENTS)
    fileset = build_fileset(inputs)
    check_output(out, overwrite, inputs=[f for fs in fileset.values() for f in fs], kind=OUTPUT)
    fileset, entries, skipped = check_inputs(fileset, cfg, skip_bad_files)
    files = [f for fs in fileset.values() for f in fs]
    command = command if command is not None else shlex.join(["topcal", *sys.argv[1:]])

    with atomic_output(out, overwrite, inputs=files, kind=OUTPUT) as tmp:
        staging = tmp / STAGING
        staging.mkdir(parents=True)
        proc = FatJetDatasetProcessor(cfg, {f: i for i, f in enumerate(files)}, staging)
        with make_runner(executor, workers, scheduler, chunksize, progress, skip_bad_files) as runner:
            result = run_or_diagnose(runner, fileset, proc, cfg)
        if not result:  # every chunk failed and was skipped
            result = {"cutflow": {}, "staged": [], "histograms": proc.empty_histograms()}
        cutflow = {name: int(result["cutflow"].get(name, 0)) for name in CUTFLOW}
        missing = sum(entries.values()) - cutflow["events"]
        if missing:  # only with skip_bad_files: coffea skipped chunks that failed to read
            skipped.append(f"{missing} events in chunks that could not be read (see the warnings above)")
        manifest = {
            "topcal_version": topcal.__version__,
            "command": command,
            "inputs": [{"file": f, "entries": entries[f]} for f in files],
            "skipped": skipped,
        }
        summary, dataset_hists = finalize(tmp, cfg, result, cutflow, manifest, proc.flatten_edges)
        shutil.rmtree(staging)
        summary.skipped = skipped
        truth = dataset_hists["pt_truth_vs_pt_jet"]
        if figures and float(truth.sum()) > 0:  # an empty or a background dataset has no truth to draw
            summary.figures = _figures(truth, tmp / "figures", int(truth.sum()))
    summary.path = Path(out)
    summary.figures = [Path(out) / p.relative_to(tmp) for p in summary.figures]
    if isr and label_note:
        summary.notes.append(ISR_LABEL_NOTE)
    return summary


def finalize(out_dir: Path, cfg: ProcessConfig, result: dict, cutflow: dict, manifest: dict,
             flatten_edges: np.ndarray):
    """Flatten, rewrite the staged parts in order, write histograms and the manifest into ``out_dir``.

    Returns the summary and the histograms of the final (flattened) dataset."""
    counts = result["histograms"]["flatten_pt_truth"].values()
    accept = acceptance(counts) if cfg.flatten else np.ones_like(counts, dtype=np.float64)
    staged = sorted(result["staged"], key=lambda s: s["name"])
    dataset_hists = make_histograms()
    parts, n_jets, columns = [], 0, []
    for item in staged:
        table = read_part(out_dir / STAGING / item["name"])
        mask = keep(table["pt_truth"], table.pop("flatten_uniform"), flatten_edges, accept)
        table = subset(table, mask)
        if not len(table["pt"]):
            continue
        name = part_name(len(parts))
        write_part(out_dir / name, table)
        fill_histograms(dataset_hists, table)
        parts.append({"name": name, "jets": int(mask.sum())})
        n_jets += int(mask.sum())
        columns = list(table)
    matched = cutflow["jets with finite pT,t(truth) in window"]
    cutflow[FLATTEN_KEPT] = n_jets
    kept_fraction = n_jets / matched if matched else 0.0
    with uproot.recreate(out_dir / HISTOGRAMS) as f:
        for name, h in result["histograms"].items():
            f[f"selected/{name}"] = as_double(h)
        for name, h in dataset_hists.items():
            f[f"dataset/{name}"] = as_double(h)
    thin = thin_bins(counts) if cfg.flatten else np.zeros(len(counts), dtype=bool)
    flatten = {
        "enabled": cfg.flatten,
        "edges_gev": [float(e) for e in flatten_edges],
        "counts": [int(c) for c in counts],
        "target": flatten_target(counts) if cfg.flatten else None,
        "thin_bins": [int(i) for i in np.flatnonzero(thin)],
        "acceptance": [float(a) for a in accept],
        "kept_fraction": kept_fraction,
    }
    write_manifest(out_dir, cfg, parts, columns, **manifest, cutflow=cutflow, flatten=flatten)
    summary = ProcessSummary(out_dir, n_jets, cutflow, kept_fraction, flatten_note=_flatten_note(flatten))
    return summary, dataset_hists


def _flatten_note(flatten: dict) -> str | None:
    """Why flattening dropped jets: the target per bin and the thin bins kept whole below it (None when the
    dataset is not flattened)."""
    if not flatten["enabled"]:
        return None
    edges, counts = flatten["edges_gev"], flatten["counts"]
    note = f" (down to {flatten['target']:.0f} jets per {edges[1] - edges[0]:g} GeV bin of pT,t(truth)"
    thin = [f"{edges[i]:.0f}..{edges[i + 1]:.0f} GeV: {counts[i]} jets" for i in flatten["thin_bins"]]
    if thin:
        note += f"; thin bins kept whole below it: {', '.join(thin)}"
    return note + ")"


def _figures(h2d, out_dir: Path, n_jets: int) -> list[Path]:
    from topcal.plot.dataset_figures import narrow_slice_truth, truth_vs_jet_pt

    note = f"{n_jets} truth-matched jets, anti-$k_T$ R = 1.2"
    return truth_vs_jet_pt(h2d, out_dir, note) + narrow_slice_truth(h2d, out_dir, note)
