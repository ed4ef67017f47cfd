"""A trained model on disk: ``model.json`` (configuration, preprocessing, provenance, training summary),
``history.json`` and one weights file per network (one for the Bayesian network, M for an ensemble).

Training writes into ``MODEL_DIR.partial`` (with its resumable checkpoint) and renames it to ``MODEL_DIR``
when finished, so a directory named ``MODEL_DIR`` is always complete.
"""

from __future__ import annotations

import math
from pathlib import Path

from topcal.config import ProcessConfig
from topcal.errors import ConfigError, InputFileError
from topcal.io.atomic import OutputKind
from topcal.io.manifest import read_manifest
from topcal.train.recalibration import check_record

FORMAT = "topcal-model/2"  # 2: jet-frame inputs, response target, deep set
META = "model.json"
HISTORY = "history.json"
LABEL_DIR = "label_systematics"  # the networks of a label-systematics card (topcal.train.label_training)
OUTPUT = OutputKind("model", META, "topcal-model/", ("weights-*.weights.h5", HISTORY, LABEL_DIR,
                                                      "variations_T*_seed*.npz", "training_spectrum.json"))


def weights_name(member: int) -> str:
    return f"weights-{member:02d}.weights.h5"


def partial_dir(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".partial")


KINDS = ("bnn", "ensemble")
# what a reference (unsmeared) model shares with the model whose sigma_cal it gives: the same network on the
# same inputs and target; only the label smearing (and seeds, epochs, sizes) may differ
REFERENCE_KEYS = ("architecture", "inputs", "target", "likelihood", "hidden", "phi_hidden", "phi_posterior",
                  "ensemble", "n_constituents")


def read_meta(path: str | Path) -> dict:
    """The model's metadata, after checking its structure (:func:`check_meta`) and that every file it lists
    is there."""
    hint = " (an unfinished training? see the .partial directory)" if partial_dir(path).exists() else ""
    return read_manifest(path, META, FORMAT, "model", lambda m: check_meta(m, Path(path) / META), missing_hint=hint)


def check_meta(meta: dict, where: Path) -> list[str]:
    """InputFileError naming ``where`` and the field when ``model.json`` lacks or has a wrong value in what
    loading the model needs (kind, configuration, weights, preprocessing, width factor); the weight files."""
    from topcal.config import TrainConfig

    def bad(field: str, what: str):
        return InputFileError(f"{where}: {field} {what}")

    if meta.get("kind") not in KINDS:
        raise bad("kind", f"{meta.get('kind')!r} must be one of {', '.join(KINDS)}")
    weights = meta.get("weights")
    if not isinstance(weights, list) or not weights or not all(isinstance(w, str) and "/" not in w for w in weights):
        raise bad("weights", "must list the weight files")
    if not isinstance(meta.get("config"), dict):
        raise bad("config", "is missing")
    try:
        cfg = TrainConfig.from_dict(meta["config"])
        cfg.validate()
    except (ConfigError, TypeError, ValueError) as exc:
        raise bad("config", f"is not valid ({exc})") from None
    pre = meta.get("preprocessing")
    if not isinstance(pre, dict):
        raise bad("preprocessing", "is missing")
    for key in ("target_mean", "target_scale", "n_constituents", "input_shapes"):
        if key not in pre:
            raise bad(f"preprocessing.{key}", "is missing")
    if pre.get("target") != cfg.target:
        raise bad("preprocessing.target", f"{pre.get('target')!r} differs from config.target {cfg.target!r}")
    if not (isinstance(pre["target_scale"], (int, float)) and pre["target_scale"] > 0 and
            math.isfinite(pre["target_scale"]) and isinstance(pre["target_mean"], (int, float)) and
            math.isfinite(pre["target_mean"])):
        raise bad("preprocessing", f"target_mean {pre['target_mean']!r} and target_scale {pre['target_scale']!r} "
                                   f"must be finite, the scale > 0")
    members = meta.get("training", {}).get("members") if isinstance(meta.get("training"), dict) else None
    if not isinstance(members, list) or len(members) != len(weights) or \
            not all(isinstance(m, dict) and isinstance(m.get("n_train"), int) and m["n_train"] > 0 for m in members):
        raise bad("training.members", "must give n_train > 0 for every weight file")
    factor = (meta.get("calibration") or {}).get("width_factor", 1.0)
    if not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
        raise bad("calibration.width_factor", f"{factor!r} must be a finite number > 0")
    by_pt = (meta.get("calibration") or {}).get("width_factor_pt")
    problem = None if by_pt is None else check_record(by_pt)
    if problem:
        raise bad("calibration.width_factor_pt", problem)
    return weights


def model_stamp(path: str | Path) -> tuple:
    """What changes when the model at ``path`` is replaced or rewritten: ``model.json``'s inode, size and
    modification time (a cache keyed on it never serves a replaced model)."""
    try:
        st = (Path(path) / META).stat()
    except OSError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def reference_mismatch(meta: dict, ref: dict) -> str | None:
    """How a reference model differs from the model in network, inputs or target (None when it does not)."""
    from topcal.config import TrainConfig

    def described(m: dict) -> dict:  # a key that an older model.json lacks has its default value
        return {**TrainConfig().to_dict(), **m["config"], "kind": m["kind"], "target": m["preprocessing"]["target"],
                "n_constituents": m["preprocessing"]["n_constituents"]}

    mine, theirs = described(meta), described(ref)
    for key in ("kind", *REFERENCE_KEYS):
        if mine.get(key) != theirs.get(key):
            return f"{key} {theirs.get(key)!r}, the model's is {mine.get(key)!r}"
    return None


JET_KEYS = ("use_towers", "jet_radius", "jet_leptons")  # what makes the jets a model was trained on


def check_jets(meta: dict, process_config: dict, model_dir, dataset) -> None:
    """InputFileError when ``dataset``'s jets are clustered otherwise (towers or energy flow, radius, leptons)
    than those the model at ``model_dir`` was trained on (the dataset configuration its ``meta`` records)."""
    trained = (meta.get("dataset") or {}).get("process_config") or {}
    for key in JET_KEYS:
        if key in trained and key in process_config and trained[key] != process_config[key]:
            raise InputFileError(f"{dataset}: jets made with {key} = {process_config[key]!r}, the model {model_dir} "
                                 f"was trained on {key} = {trained[key]!r}")


def check_reference(model_dir, reference) -> None:
    """InputFileError unless ``reference`` is the same network on the same inputs and target as ``model_dir``
    (:func:`reference_mismatch`): only then is sigma_cal = sqrt(sigma_stoch^2 - sigma_stoch,0^2) meaningful."""
    why = reference_mismatch(read_meta(model_dir), read_meta(reference))
    if why is not None:
        raise InputFileError(f"{reference}: not a reference for {model_dir}: {why}")


def model_process_config(meta: dict, model_dir) -> ProcessConfig:
    """The clustering and selection the model was trained with (from its ``model.json`` metadata ``meta``)."""
    try:
        return ProcessConfig.from_dict(meta["dataset"]["process_config"])
    except (KeyError, TypeError) as exc:
        raise InputFileError(f"{model_dir}: model.json lacks the training dataset's configuration ({exc})") from None
