"""``topcal tagger``: train the LoLa top tagger on top jets against background jets, and score jets with it.

The tagger directory holds ``tagger.json`` (configuration, datasets, held-out performance) and the weights.
Top jets come from the trainable part of their dataset only, so the regression test jets (the dataset's last
``test_fraction``) are never seen by the tagger; the background dataset's last ``test_fraction`` is held out
likewise. Performance on the held-out jets: ROC AUC and the background rejection 1/eps_B at eps_S = 50%.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import topcal
import topcal.tagger
from topcal.config import TaggerConfig
from topcal.errors import InputFileError
from topcal.io.atomic import OutputKind, atomic_output, check_output
from topcal.io.dataset import open_dataset
from topcal.io.manifest import read_manifest
from topcal.tagger.lola import build_lola
from topcal.train.data import load_rows, split_rows

FORMAT = "topcal-tagger/1"
META = "tagger.json"
WEIGHTS = "lola.weights.h5"
OUTPUT = OutputKind("tagger", META, "topcal-tagger/", (WEIGHTS,))


@dataclass
class TaggerSummary:
    path: Path
    n_train: int
    auc: float
    rejection_at_50: float
    seconds: float

    def __str__(self) -> str:
        return (f"wrote {self.path}: LoLa tagger trained on {self.n_train} jets per class in {self.seconds:.0f} s; "
                f"held-out AUC {self.auc:.3f}, background rejection {self.rejection_at_50:.1f} at 50% top efficiency")


def tagger_inputs(x: np.ndarray, n_constituents: int) -> np.ndarray:
    """The leading ``n_constituents`` of padded constituents ``(n, N, 4)``, zero-padded if N is smaller."""
    if x.shape[1] >= n_constituents:
        return np.ascontiguousarray(x[:, :n_constituents])
    out = np.zeros((len(x), n_constituents, 4), dtype=np.float32)
    out[:, :x.shape[1]] = x
    return out


def roc_auc(scores_signal: np.ndarray, scores_background: np.ndarray) -> float:
    """Probability that a signal jet scores above a background jet (ties count half)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([scores_signal, scores_background]))  # ties get their average rank
    n_s, n_b = len(scores_signal), len(scores_background)
    return float((ranks[:n_s].sum() - n_s * (n_s + 1) / 2) / (n_s * n_b))


def _rows(ds, test_fraction: float, n_max: int | None, rng) -> tuple[np.ndarray, np.ndarray]:
    trainable, test = split_rows(ds.n_jets, test_fraction)
    if n_max is not None and len(trainable) > n_max:
        trainable = np.sort(rng.choice(trainable, n_max, replace=False))
    return trainable, test


def train_tagger(top_dataset, background_dataset, out, cfg: TaggerConfig | None = None, progress: bool = True,
                 overwrite: bool = False, command: str | None = None) -> TaggerSummary:
    """Train the LoLa tagger on ``top_dataset`` (signal) against ``background_dataset`` into ``out``."""
    import tensorflow as tf
    import tf_keras as keras

    cfg = cfg or TaggerConfig()
    cfg.validate()
    check_output(out, overwrite, inputs=[top_dataset, background_dataset], kind=OUTPUT)  # before any work
    if Path(top_dataset).resolve() == Path(background_dataset).resolve():
        raise InputFileError(f"{background_dataset}: the same dataset as the top jets; the background must be "
                             f"another (topcal process --background)")
    t0 = time.perf_counter()
    rng = np.random.default_rng([cfg.seed, 0x7A66])
    tops, background = open_dataset(top_dataset), open_dataset(background_dataset)
    top_train, top_test = _rows(tops, cfg.test_fraction, cfg.max_jets_per_class, rng)
    bkg_train, bkg_test = _rows(background, cfg.test_fraction, cfg.max_jets_per_class, rng)
    n = min(len(top_train), len(bkg_train))
    if n < 10 or len(top_test) == 0 or len(bkg_test) == 0:
        raise InputFileError(f"{top_dataset}, {background_dataset}: too few jets to train a tagger "
                             f"({len(top_train)} top and {len(bkg_train)} background jets to train on)")
    top_train = np.sort(rng.choice(top_train, n, replace=False))
    bkg_train = np.sort(rng.choice(bkg_train, n, replace=False))

    def inputs(ds, rows):
        return tagger_inputs(load_rows(ds, rows, need_label=False)[0].x, cfg.n_constituents)

    x = np.concatenate([inputs(tops, top_train), inputs(background, bkg_train)])
    y = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.float32)
    order = rng.permutation(len(y))
    n_val = max(1, int(round(cfg.validation_fraction * len(y))))
    val, fit = order[:n_val], order[n_val:]

    tf.keras.utils.set_random_seed(cfg.seed)
    model = build_lola(cfg)
    stop = keras.callbacks.EarlyStopping(patience=cfg.patience, restore_best_weights=True)
    history = model.fit(x[fit], y[fit], validation_data=(x[val], y[val]), batch_size=cfg.batch_size,
                        epochs=cfg.epochs, callbacks=[stop], verbose=1 if progress else 0, shuffle=True)
    s_top = model.predict(inputs(tops, top_test), batch_size=4096, verbose=0)[:, 0]
    s_bkg = model.predict(inputs(background, bkg_test), batch_size=4096, verbose=0)[:, 0]
    auc = roc_auc(s_top, s_bkg)
    eps_b = float(np.mean(s_bkg >= np.median(s_top)))
    rejection = 1.0 / eps_b if eps_b > 0 else float("inf")

    meta = {
        "format": FORMAT,
        "topcal_version": topcal.__version__,
        "command": command if command is not None else shlex.join(["topcal", *sys.argv[1:]]),
        "config": cfg.to_dict(),
        "datasets": {"top": str(Path(top_dataset).absolute()), "background": str(Path(background_dataset).absolute())},
        "training": {"jets_per_class": n, "epochs": len(history.history["loss"]),
                     "history": {k: [float(v) for v in vals] for k, vals in history.history.items()}},
        "held_out": {"top_jets": len(top_test), "background_jets": len(bkg_test), "auc": auc,
                     "background_rejection_at_50": rejection},
        "weights": [WEIGHTS],
    }
    with atomic_output(out, overwrite, inputs=[top_dataset, background_dataset], kind=OUTPUT) as tmp:
        tmp.mkdir()
        model.save_weights(tmp / WEIGHTS)
        (tmp / META).write_text(json.dumps(meta, indent=1) + "\n")
    return TaggerSummary(Path(out), n, auc, rejection, time.perf_counter() - t0)


class Tagger:
    """A trained LoLa tagger: :meth:`score` gives P(top) per jet."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.meta = read_manifest(self.path, META, FORMAT, "tagger", lambda m: m["weights"])
        self.config = TaggerConfig.from_dict(self.meta["config"])
        self.model = build_lola(self.config, compile=False)
        self.model.load_weights(self.path / WEIGHTS)

    def score(self, x: np.ndarray) -> np.ndarray:
        """P(top) for padded constituents ``(n, N, 4)`` in GeV / 1000 (any N; the leading ones are used)."""
        return self.model.predict(tagger_inputs(x, self.config.n_constituents), batch_size=4096, verbose=0)[:, 0]


def top_like_subsets(scores: np.ndarray, fractions=(1.0, 0.75, 0.5, 0.25)) -> dict[float, np.ndarray]:
    """Masks of the ``f`` most top-like jets (highest scores) for each fraction ``f``."""
    out = {}
    for f in fractions:
        n_keep = int(round(f * len(scores)))
        mask = np.zeros(len(scores), dtype=bool)
        mask[np.argsort(-scores, kind="mergesort")[:n_keep]] = True
        out[f] = mask
    return out
