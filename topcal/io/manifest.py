"""The JSON manifests that describe topcal's output directories (datasets, models), read with clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from topcal.errors import InputFileError


def read_manifest(path: str | Path, name: str, fmt: str, what: str, files: Iterable[str] = (),
                  missing_hint: str = "") -> dict:
    """``path/name`` as a dict, after checking the directory, the format tag and that ``files`` exist.

    ``files`` may be a callable taking the manifest and returning the file names it lists.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputFileError(f"{path}: {what} directory not found")
    manifest_path = path / name
    if not manifest_path.is_file():
        raise InputFileError(f"{path}: not a complete topcal {what} (no {name}){missing_hint}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{manifest_path}: not valid JSON ({exc})") from None
    if manifest.get("format") != fmt:
        raise InputFileError(f"{manifest_path}: format {manifest.get('format')!r}, expected {fmt!r}")
    for listed in (files(manifest) if callable(files) else files):
        if not (path / listed).is_file():
            raise InputFileError(f"{path}: {listed} listed in {name} is missing")
    return manifest
