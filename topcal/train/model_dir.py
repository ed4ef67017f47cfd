"""A trained model on disk: ``model.json`` (configuration, preprocessing, provenance, training summary),
``history.json`` and one weights file per network (one for the Bayesian network, M for an ensemble).

Training writes into ``MODEL_DIR.partial`` (with its resumable checkpoint) and renames it to ``MODEL_DIR``
when finished, so a directory named ``MODEL_DIR`` is always complete.
"""

from __future__ import annotations

import json
from pathlib import Path

from topcal.errors import InputFileError

FORMAT = "topcal-model/1"
META = "model.json"
HISTORY = "history.json"


def weights_name(member: int) -> str:
    return f"weights-{member:02d}.weights.h5"


def partial_dir(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".partial")


def read_meta(path: str | Path) -> dict:
    """The model's metadata, after checking that every file it lists is there."""
    path = Path(path)
    if not path.is_dir():
        raise InputFileError(f"{path}: model directory not found")
    meta_path = path / META
    if not meta_path.is_file():
        hint = " (an unfinished training? see the .partial directory)" if partial_dir(path).exists() else ""
        raise InputFileError(f"{path}: not a complete topcal model (no {META}){hint}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{meta_path}: not valid JSON ({exc})") from None
    if meta.get("format") != FORMAT:
        raise InputFileError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    for name in meta["weights"]:
        if not (path / name).is_file():
            raise InputFileError(f"{path}: weights file {name} listed in {META} is missing")
    return meta
