"""A trained model on disk: ``model.json`` (configuration, preprocessing, provenance, training summary),
``history.json`` and one weights file per network (one for the Bayesian network, M for an ensemble).

Training writes into ``MODEL_DIR.partial`` (with its resumable checkpoint) and renames it to ``MODEL_DIR``
when finished, so a directory named ``MODEL_DIR`` is always complete.
"""

from __future__ import annotations

from pathlib import Path

from topcal.config import ProcessConfig
from topcal.errors import InputFileError
from topcal.io.manifest import read_manifest

FORMAT = "topcal-model/2"  # 2: jet-frame inputs, response target, deep set (topcal 0.2)
META = "model.json"
HISTORY = "history.json"


def weights_name(member: int) -> str:
    return f"weights-{member:02d}.weights.h5"


def partial_dir(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".partial")


def read_meta(path: str | Path) -> dict:
    """The model's metadata, after checking that every file it lists is there."""
    hint = " (an unfinished training? see the .partial directory)" if partial_dir(path).exists() else ""
    return read_manifest(path, META, FORMAT, "model", lambda m: m["weights"], missing_hint=hint)


def model_process_config(meta: dict, model_dir) -> ProcessConfig:
    """The clustering and selection the model was trained with (from its ``model.json`` metadata ``meta``)."""
    try:
        return ProcessConfig.from_dict(meta["dataset"]["process_config"])
    except (KeyError, TypeError) as exc:
        raise InputFileError(f"{model_dir}: model.json lacks the training dataset's configuration ({exc})") from None
