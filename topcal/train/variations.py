"""Statistical eigen-variations: the T weight draws of a model as K coherent, symmetric shifts of ptPred (GeV).

The T draws of one fixed posterior (``samples = T``, ``seed = S``: :meth:`TrainedModel.draws`) give every jet
T mixture means m_t. Their deviations from the jet's mean, D_tj = m_t(j) - <m(j)>, carry sigma_pred and its
correlation across jets: all jets see the same draws. As Monte Carlo PDF replicas are turned into Hessian
eigenvectors, the singular value decomposition D = U S V^T on a fixed set of jets (the validation jets at
training) gives orthogonal directions in the space of the draws; variation k of any jet is

    stat_k(j) = sum_t c_kt D_tj,    c_kt = U_tk / sqrt(T)        (GeV)

a linear combination of that jet's own draws, so it applies to jets never seen by the decomposition. With all
directions, sum_k stat_k(j)^2 = sigma_pred(j)^2 exactly; K is the smallest number of directions that keeps
``keep`` (default 95%) of the total variance sum_j sigma_pred(j)^2 on the decomposition jets. Each variation
moves all jets coherently (fully correlated across jets); different k are uncorrelated. The sign of each is
chosen so that its mean shift over the decomposition jets is positive.

The coefficients belong to one ``(T, S)``: they are stored with the model as
``variations_T<T>_seed<S>.npz`` (``topcal train`` writes the one for :data:`DEFAULT_SAMPLES`,
:data:`DEFAULT_SEED`; :func:`compute_for_model` adds one for any other ``(T, S)`` or for an older model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topcal.errors import InputFileError

DEFAULT_SAMPLES = 50  # the T and seed of topcal predict's and topcal.Calibrator's defaults
DEFAULT_SEED = 0
KEEP = 0.95  # the fraction of the variance the K variations keep
DECOMPOSITION_JETS = 50_000


@dataclass(frozen=True)
class EigenVariations:
    """``coefficients`` ``(K, T)``; ``samples`` T and ``seed`` S of the draws they belong to; ``kept`` the
    fraction of the variance the K variations keep; ``explained`` the cumulative fraction kept by 1..T
    directions; ``jets`` the number of decomposition jets."""

    coefficients: np.ndarray
    samples: int
    seed: int
    kept: float
    explained: np.ndarray
    jets: int

    @property
    def k(self) -> int:
        return int(self.coefficients.shape[0])

    def shifts(self, draw_means: np.ndarray) -> np.ndarray:
        """The K shifts of ptPred in GeV, ``(K, n_jets)``, from the jets' per-draw means ``(T, n_jets)``.

        Each jet's mean and shifts are summed over the draws in a fixed order, element by element (numpy's
        reductions and matrix products round differently with the number and layout of the jets), so a jet
        gets bit-identical shifts in any chunk."""
        if draw_means.shape[0] != self.samples:
            raise ValueError(f"{draw_means.shape[0]} draws given, the variations belong to T = {self.samples}")
        mean = np.zeros(draw_means.shape[1])
        for m in draw_means:
            mean += m
        mean /= self.samples
        out = np.zeros((self.k, draw_means.shape[1]))
        for c, m in zip(self.coefficients.T, draw_means):
            out += c[:, None] * (m - mean)[None, :]
        return out

    def to_dict(self) -> dict:
        """The summary a friend file or report records (no coefficients)."""
        return {"k": self.k, "samples": self.samples, "seed": self.seed, "variance_kept": self.kept,
                "decomposition_jets": self.jets}


def fit(draw_means: np.ndarray, samples: int, seed: int, keep: float = KEEP) -> EigenVariations:
    """The eigen-variations of per-draw means ``(T, n_jets)`` in GeV (see the module docstring)."""
    t = draw_means.shape[0]
    deviations = draw_means - draw_means.mean(axis=0)
    u, s, vt = np.linalg.svd(deviations, full_matrices=False)
    power = s**2
    explained = np.cumsum(power) / power.sum() if power.sum() > 0 else np.ones_like(power)
    k = int(np.searchsorted(explained, keep - 1e-12) + 1)
    sign = np.where(vt[:k].sum(axis=1) < 0, -1.0, 1.0)
    coefficients = (u[:, :k] * sign).T / np.sqrt(t)
    return EigenVariations(coefficients, int(samples), int(seed), float(explained[k - 1]), explained,
                           int(draw_means.shape[1]))


def posterior_key(meta: dict, samples: int, seed: int) -> tuple[int, int]:
    """``(T, seed)`` of the weight draws of a model (its ``model.json`` ``meta``) asked for ``samples`` and
    ``seed``: for an ensemble its members (seed 0), whatever is asked."""
    return (len(meta["weights"]), 0) if meta["kind"] == "ensemble" else (int(samples), int(seed))


def file_name(samples: int, seed: int) -> str:
    return f"variations_T{int(samples)}_seed{int(seed)}.npz"


def save(model_dir: str | Path, variations: EigenVariations) -> Path:
    """Write ``variations`` into the model directory, atomically."""
    from topcal.io.atomic import atomic_output

    path = Path(model_dir) / file_name(variations.samples, variations.seed)
    with atomic_output(path, overwrite=True) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, coefficients=variations.coefficients, samples=variations.samples, seed=variations.seed,
                     kept=variations.kept, explained=variations.explained, jets=variations.jets)
    return path


def load(model_dir: str | Path, samples: int, seed: int) -> EigenVariations | None:
    """The stored variations of ``(samples, seed)``, or None when the model has none for them."""
    path = Path(model_dir) / file_name(samples, seed)
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return EigenVariations(z["coefficients"], int(z["samples"]), int(z["seed"]), float(z["kept"]),
                                   z["explained"], int(z["jets"]))
    except (OSError, ValueError, KeyError) as exc:
        raise InputFileError(f"{path}: damaged statistical variations ({exc})") from None


def stored(model_dir: str | Path) -> list[tuple[int, int]]:
    """The ``(T, seed)`` pairs the model directory holds variations for."""
    out = []
    for p in sorted(Path(model_dir).glob("variations_T*_seed*.npz")):
        t, s = p.stem[len("variations_T"):].split("_seed")
        out.append((int(t), int(s)))
    return out


def draw_means(model, jets, samples: int, seed: int, raw: bool = False) -> np.ndarray:
    """Per-draw mixture means ``(T, n_jets)`` in GeV of ``model`` (a :class:`TrainedModel`; truncated to its
    ``moments_window`` as its predictive mean is)."""
    from topcal.train.likelihood import draw_moments

    w, mu, sigma = model.sample(jets, samples, seed, raw=raw)
    return draw_moments(w, mu, sigma, model.moments_window)[0]


def compute_for_model(model_dir: str | Path, samples: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED,
                      dataset_dir: str | Path | None = None, max_jets: int = DECOMPOSITION_JETS,
                      keep: float = KEEP) -> EigenVariations:
    """Compute and store the variations of an existing model for ``(samples, seed)`` on up to ``max_jets``
    trainable jets of its dataset (``dataset_dir``, by default the one in ``model.json``), drawn with a
    fixed generator; returns them."""
    from topcal.io.dataset import open_dataset
    from topcal.train.data import load_rows, split_rows
    from topcal.train.model import load_model

    model = load_model(model_dir)
    ds = open_dataset(dataset_dir or model.meta["dataset"]["path"])
    trainable, _ = split_rows(ds.n_jets, model.config.test_fraction)
    rows = np.sort(np.random.default_rng(0x5EED).permutation(trainable)[:max_jets])
    jets = load_rows(ds, rows)[0].jets
    samples, seed = model.posterior_key(samples, seed)
    variations = fit(draw_means(model, jets, samples, seed), samples, seed, keep)
    save(model_dir, variations)
    return variations
