"""The training spectrum of pT,t: the labels a model was trained on, as a histogram stored with the model.

Training flattens pT,t(truth), so the network's predictive density of a jet is, up to normalisation, the
likelihood of pT,t times this spectrum. A user's prior divides it out (:mod:`topcal.predict.prior`).
``topcal train`` writes ``training_spectrum.json`` (bin edges and counts, GeV); for an older model
:func:`read_spectrum` computes it from the model's dataset (its trainable jets, labels smeared as in
training) and stores it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from topcal.errors import InputFileError

FILE = "training_spectrum.json"
BIN_GEV = 25.0  # the flattening bins of topcal process: finer bins would add their counts' noise


def label_spectrum(labels: np.ndarray, bin_gev: float = BIN_GEV) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of the labels (GeV) in bins of ``bin_gev`` spanning all of them."""
    labels = np.asarray(labels, dtype=np.float64)
    labels = labels[np.isfinite(labels)]
    if not len(labels):
        raise InputFileError("training labels: none finite, no spectrum")
    lo = np.floor(labels.min() / bin_gev) * bin_gev
    hi = np.ceil(labels.max() / bin_gev) * bin_gev + (bin_gev if labels.max() % bin_gev == 0 else 0.0)
    edges = np.arange(lo, hi + 0.5 * bin_gev, bin_gev)
    counts, _ = np.histogram(labels, edges)
    return counts.astype(np.float64), edges


def write_spectrum(model_dir: str | Path, counts: np.ndarray, edges: np.ndarray) -> Path:
    """Store ``(counts, edges)`` in the model directory, atomically."""
    from topcal.io.atomic import atomic_output

    path = Path(model_dir) / FILE
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps({"unit": "GeV", "edges": [float(e) for e in edges],
                                   "counts": [float(c) for c in counts]}) + "\n")
    return path


def read_spectrum(model_dir: str | Path, compute: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of the model's training spectrum; computed from its dataset (and stored) when the
    model has none and ``compute`` is set."""
    path = Path(model_dir) / FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            return np.asarray(data["counts"], dtype=np.float64), np.asarray(data["edges"], dtype=np.float64)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFileError(f"{path}: damaged training spectrum ({exc})") from None
    if not compute:
        raise InputFileError(f"{path}: the model has no training spectrum")
    counts, edges = spectrum_from_dataset(model_dir)
    write_spectrum(model_dir, counts, edges)
    return counts, edges


def spectrum_from_dataset(model_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The training spectrum of an existing model, from the trainable jets of the dataset in its model.json."""
    from topcal.config import TrainConfig
    from topcal.io.dataset import open_dataset
    from topcal.train.data import smeared_labels, split_rows
    from topcal.train.model_dir import read_meta

    meta = read_meta(model_dir)
    cfg = TrainConfig.from_dict(meta["config"])
    path = meta["dataset"]["path"]
    if not Path(path).is_dir():
        raise InputFileError(f"{model_dir}: no training spectrum stored, and its dataset {path} is not there "
                             f"to compute it from")
    ds = open_dataset(path)
    trainable, _ = split_rows(ds.n_jets, cfg.test_fraction)
    pt_truth = ds.read(["pt_truth"])["pt_truth"][trainable]
    return label_spectrum(smeared_labels(pt_truth, trainable, cfg.smear, cfg.seed))
