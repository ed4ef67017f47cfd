"""Input files for the coffea runner: plain paths, shell globs, or a coffea-style JSON fileset.

A JSON fileset maps dataset names to files, in either coffea form::

    {"ttbar": {"files": {"a.root": "Delphes", "b.root": "Delphes"}}}
    {"ttbar": ["a.root", "b.root"]}

Relative paths inside a JSON file are taken relative to that file.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable
from pathlib import Path

from topcal.errors import InputFileError

DEFAULT_DATASET = "inputs"
TREE = "Delphes"  # the tree topcal reads (topcal.io.delphes_reader.TREE_NAME)


def build_fileset(inputs: Iterable[str | Path]) -> dict[str, list[str]]:
    """``{dataset: [absolute file paths]}`` from paths, globs and JSON filesets, in the order given.

    A glob that matches nothing and a JSON file that cannot be read are errors naming the input, and so is
    a file given twice, also under another name (``..``, a symbolic link): it would be processed twice.
    """
    fileset: dict[str, list[str]] = {}
    for item in inputs:
        item = str(item)
        if item.endswith(".json"):
            for dataset, files in _read_json(Path(item)).items():
                fileset.setdefault(dataset, []).extend(files)
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise InputFileError(f"{item}: no file matches this pattern")
            fileset.setdefault(DEFAULT_DATASET, []).extend(str(Path(m).absolute()) for m in matches)
        else:
            fileset.setdefault(DEFAULT_DATASET, []).append(str(Path(item).absolute()))
    if not fileset:
        raise InputFileError("no input files given")
    seen: dict[str, str] = {}
    for dataset, files in fileset.items():
        for f in files:
            real = os.path.realpath(f)
            if real in seen:
                same = "" if seen[real] == f else f" (the same file as {seen[real]})"
                raise InputFileError(f"{f}: given twice{same} (dataset {dataset!r})")
            seen[real] = f
    return fileset


def _read_json(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputFileError(f"{path}: fileset not found") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}: fileset is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: fileset must map dataset names to files")
    out = {}
    for dataset, spec in data.items():
        files = spec.get("files") if isinstance(spec, dict) else spec
        if isinstance(files, dict):
            other = {t for t in files.values() if t not in (None, TREE)}
            if other:
                raise InputFileError(f"{path}: dataset {dataset!r} names the tree {sorted(other)[0]!r}; topcal reads "
                                     f"DELPHES's {TREE!r} tree")
            files = list(files)
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise InputFileError(f"{path}: dataset {dataset!r} needs a list of files or {{'files': {{path: tree}}}}")
        out[dataset] = [str((path.parent / f).absolute()) if not Path(f).is_absolute() else f for f in files]
    return out


def coffea_fileset(fileset: dict[str, list[str]], treename: str) -> dict:
    """The fileset in coffea's form ``{dataset: {"files": {path: treename}}}``."""
    return {name: {"files": {f: treename for f in files}} for name, files in fileset.items()}
