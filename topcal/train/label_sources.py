"""Label-uncertainty sources: a TOML card of named sources, and the training labels each variation gives.

A card has one table per source; the table's name is the source's name in branches and reports::

    [refResolution]
    kind = "smear"
    size = 0.04                      # relative width; or points: size = [[400, 0.05], [1000, 0.03]] (pT,t in GeV)

    [refPileup]
    kind = "smear"
    size = 0.06
    correlation = { refResolution = 0.5 }

    [refScale]
    kind = "shift"
    size = 0.02                      # relative shift of every label, up and down

* ``kind = "smear"``: every training label pT,t(truth) is smeared per jet by a Gaussian of relative width
  ``size`` (a constant, or points (pT,t [GeV], width) interpolated linearly in pT,t and constant beyond the
  first and last point). ``correlation = { other = rho }`` correlates the per-jet draws with another smear
  source (rho in [-1, 1]; the correlations of a card must form a valid correlation matrix).
* ``kind = "shift"``: every label is moved coherently by the relative ``size`` (constant or points), up and
  down. ``method = "scale"`` gives the shifted predictions as ptPred x (1 +- size(ptPred)); ``"train"``
  trains a network on the shifted labels, each way. A constant shift defaults to ``"scale"``: the
  standardised target of a network trained on labels x (1 + s) is the nominal one, so that network is the
  nominal network with every output scaled by 1 + s (measured: ``tests/test_label_sources.py``); a shift
  given in points defaults to ``"train"``.

A :class:`LabelVariation` is what one network trains on: pT,t x (1 + sum_k s_k(pT,t) g_k) x (1 + sign s(pT,t))
with g the correlated standard normal draws of its smear sources. The draws are fixed per dataset row by
the seed and the source's name (as :func:`topcal.train.data.smeared_labels` does for ``--smear``), so a jet
keeps its label across runs, training sizes and cards that share the source.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from topcal.errors import ConfigError
from topcal.train.data import SMEAR_STREAM

KINDS = ("smear", "shift")
SHIFT_METHODS = ("scale", "train")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")  # usable in branch names (FatJet_sigmaCal_<name>)
KEYS = {"smear": ("kind", "size", "correlation"), "shift": ("kind", "size", "method")}


@dataclass(frozen=True)
class LabelSource:
    """One named source: ``kind`` "smear" or "shift"; ``size`` a relative width or shift, constant (float) or
    points ((pT,t [GeV], size), ...); ``correlation`` ((other smear source, rho), ...); ``method`` of a shift."""

    name: str
    kind: str
    size: float | tuple[tuple[float, float], ...]
    correlation: tuple[tuple[str, float], ...] = ()
    method: str | None = None

    @property
    def constant(self) -> bool:
        return not isinstance(self.size, tuple)

    def relative(self, pt_gev: np.ndarray) -> np.ndarray:
        """The relative size at pT,t = ``pt_gev`` (GeV): the constant, or the points interpolated linearly
        (constant beyond the first and the last point)."""
        pt = np.asarray(pt_gev, dtype=np.float64)
        if self.constant:
            return np.full(pt.shape, float(self.size))
        xs, ys = zip(*self.size)
        return np.interp(pt, xs, ys)

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind,
               "size": self.size if self.constant else [list(p) for p in self.size]}
        if self.correlation:
            out["correlation"] = {k: v for k, v in self.correlation}
        if self.method:
            out["method"] = self.method
        return out

    @classmethod
    def from_dict(cls, d: dict) -> LabelSource:
        size = d["size"]
        return cls(d["name"], d["kind"], float(size) if not isinstance(size, list) else
                   tuple((float(a), float(b)) for a, b in size),
                   tuple(sorted((k, float(v)) for k, v in d.get("correlation", {}).items())), d.get("method"))


@dataclass(frozen=True)
class LabelVariation:
    """The labels of one network: pT,t x (1 + sum_k s_k(pT,t) g_k) x (1 + ``sign`` s_shift(pT,t)), with
    g ~ N(0, ``correlation``) per jet over the ``smear`` sources (see the module docstring)."""

    smear: tuple[LabelSource, ...] = ()
    correlation: tuple[tuple[float, ...], ...] = ()
    shift: LabelSource | None = None
    sign: int = 0

    def labels(self, pt_truth: np.ndarray, rows: np.ndarray, seed: int) -> np.ndarray:
        """The varied labels (GeV) of the jets at dataset ``rows`` with truth ``pt_truth`` (GeV)."""
        pt = np.asarray(pt_truth, dtype=np.float64)
        factor = np.ones_like(pt)
        if self.smear:
            g = correlated_draws([s.name for s in self.smear], np.asarray(self.correlation), rows, seed)
            factor += sum(s.relative(pt) * g[:, k] for k, s in enumerate(self.smear))
        if self.shift is not None:
            factor *= 1.0 + self.sign * self.shift.relative(pt)
        return pt * factor

    def to_dict(self) -> dict:
        return {"smear": [s.to_dict() for s in self.smear], "correlation": [list(r) for r in self.correlation],
                "shift": self.shift.to_dict() if self.shift else None, "sign": self.sign}

    def key(self) -> str:
        """A short digest of the variation (equal variations train the same network)."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]


def correlated_draws(names: list[str], correlation: np.ndarray, rows: np.ndarray, seed: int) -> np.ndarray:
    """Standard normal draws ``(len(rows), len(names))`` with the given correlation matrix across the
    sources: independent draws z_k fixed per dataset row by ``seed`` and the source's name, combined as
    g = L z with L the Cholesky factor (so the first source's draws are its own z)."""
    rows = np.asarray(rows, dtype=np.int64)
    n = int(rows.max()) + 1 if len(rows) else 0
    z = np.stack([np.random.default_rng([seed, SMEAR_STREAM, zlib.crc32(name.encode())]).standard_normal(n)[rows]
                  for name in names], axis=1)
    return z @ matrix_root(correlation).T


def matrix_root(c: np.ndarray) -> np.ndarray:
    """L with L L^T = c: the Cholesky factor, or for a singular (positive semi-definite) c the symmetric root."""
    try:
        return np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(c)
        return v * np.sqrt(np.clip(w, 0.0, None))


@dataclass(frozen=True)
class LabelCard:
    """The sources of a card, in the card's order (:func:`read_label_card`)."""

    sources: tuple[LabelSource, ...]
    path: str = ""

    @property
    def smear(self) -> tuple[LabelSource, ...]:
        return tuple(s for s in self.sources if s.kind == "smear")

    @property
    def shift(self) -> tuple[LabelSource, ...]:
        return tuple(s for s in self.sources if s.kind == "shift")

    def correlation_matrix(self, names: list[str] | None = None) -> np.ndarray:
        """The correlation matrix of the smear sources ``names`` (all, by default)."""
        names = [s.name for s in self.smear] if names is None else names
        c = np.eye(len(names))
        index = {n: i for i, n in enumerate(names)}
        for s in self.smear:
            for other, rho in s.correlation:
                if s.name in index and other in index:
                    c[index[s.name], index[other]] = c[index[other], index[s.name]] = rho
        return c

    def variations(self) -> dict[str, LabelVariation]:
        """The networks beside the nominal one, by sub-model name: one per smear source (its name), all smear
        sources together (``ALL_SMEAR``, with two or more), and ``<shift>-up`` / ``<shift>-down`` for each
        shift source with ``method = "train"``."""
        out: dict[str, LabelVariation] = {}
        alone = tuple(replace(s, correlation=()) for s in self.smear)  # correlations: in the matrix only
        for s in alone:
            out[s.name] = LabelVariation(smear=(s,), correlation=((1.0,),))
        if len(self.smear) > 1:
            out[ALL_SMEAR] = LabelVariation(smear=alone,
                                            correlation=tuple(map(tuple, self.correlation_matrix().tolist())))
        for s in self.shift:
            if s.method == "train":
                for sign, way in ((1, "up"), (-1, "down")):
                    out[f"{s.name}-{way}"] = LabelVariation(shift=s, sign=sign)
        return out

    def all_smear_model(self) -> str | None:
        """The sub-model whose sigma_cal is that of all smear sources together (None without smear sources)."""
        if not self.smear:
            return None
        return ALL_SMEAR if len(self.smear) > 1 else self.smear[0].name

    def to_dict(self) -> dict:
        return {"sources": [s.to_dict() for s in self.sources]}

    @classmethod
    def from_dict(cls, d: dict, path: str = "") -> LabelCard:
        return cls(tuple(LabelSource.from_dict(s) for s in d["sources"]), path)


ALL_SMEAR = "all-smear"  # not a valid source name, so it cannot collide with one


def read_label_card(path: str | Path) -> LabelCard:
    """The card at ``path`` (TOML), validated; errors name the card, the source and the key."""
    from topcal.config.card import read_toml

    return parse_label_card(read_toml(path, "label-systematics card"), str(Path(path)))


def parse_label_card(data: dict, where: str = "card") -> LabelCard:
    """A :class:`LabelCard` from the card's tables (``where``: the card's name in error messages)."""
    if not data:
        raise ConfigError(f"{where}: no label sources (one table per source, e.g. [refScale] kind = \"shift\")")
    sources = [_parse_source(name, table, where) for name, table in data.items()]
    kinds = {s.name: s.kind for s in sources}
    pairs: dict[frozenset, float] = {}
    for s in sources:
        for other, rho in s.correlation:
            at = f"{where}: [{s.name}] correlation.{other}"
            if other == s.name:
                raise ConfigError(f"{at}: a source cannot be correlated with itself")
            if other not in kinds:
                raise ConfigError(f"{at}: no source named {other!r} in the card")
            if kinds[other] != "smear":
                raise ConfigError(f"{at}: {other!r} is a {kinds[other]} source; correlations are between smear "
                                  f"sources")
            pair = frozenset((s.name, other))
            if pair in pairs and pairs[pair] != rho:
                raise ConfigError(f"{at}: {rho} differs from the {pairs[pair]} given by [{other}]")
            pairs[pair] = rho
    card = LabelCard(tuple(sources), where)
    if card.smear:
        lowest = float(np.linalg.eigvalsh(card.correlation_matrix()).min())
        if lowest < -1e-9:
            raise ConfigError(f"{where}: the correlations of the smear sources are not a valid correlation matrix "
                              f"(smallest eigenvalue {lowest:.3g}); lower them")
    return card


def _parse_source(name: str, table, where: str) -> LabelSource:
    at = f"{where}: [{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{at}: must be a table (a source with kind = \"smear\" or \"shift\" and a size)")
    if not NAME.match(name):
        raise ConfigError(f"{at}: source names must be letters, digits and _, starting with a letter (they "
                          f"become branch names)")
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{at} kind: {kind!r} must be one of {KINDS}")
    for key in table:
        if key not in KEYS[kind]:
            raise ConfigError(f"{at} {key}: unknown key for a {kind} source (allowed: {', '.join(KEYS[kind])})")
    if "size" not in table:
        raise ConfigError(f"{at} size: missing (a relative size such as 0.04, or points [[pT,t, size], ...])")
    size = _parse_size(table["size"], f"{at} size")
    correlation: tuple[tuple[str, float], ...] = ()
    if "correlation" in table:
        corr = table["correlation"]
        if not isinstance(corr, dict) or not corr:
            raise ConfigError(f"{at} correlation: {corr!r} must be a table {{ other_source = rho }}")
        for other, rho in corr.items():
            if isinstance(rho, bool) or not isinstance(rho, int | float) or not -1 <= rho <= 1:
                raise ConfigError(f"{at} correlation.{other}: {rho!r} must be a number in [-1, 1]")
        correlation = tuple(sorted((str(k), float(v)) for k, v in corr.items()))
    method = None
    if kind == "shift":
        method = table.get("method", "scale" if not isinstance(size, tuple) else "train")
        if method not in SHIFT_METHODS:
            raise ConfigError(f"{at} method: {method!r} must be one of {SHIFT_METHODS}")
    return LabelSource(name, kind, size, correlation, method)


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and np.isfinite(value)


def _parse_size(value, at: str) -> float | tuple[tuple[float, float], ...]:
    if _number(value):
        if not 0 < value < 1:
            raise ConfigError(f"{at}: {value} must be in (0, 1) (a fraction of pT,t)")
        return float(value)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{at}: {value!r} must be a number or a list of points [[pT,t in GeV, size], ...]")
    points = []
    for p in value:
        if not (isinstance(p, list) and len(p) == 2 and all(_number(v) for v in p)):
            raise ConfigError(f"{at}: point {p!r} must be [pT,t in GeV, size]")
        if p[0] <= 0 or not 0 <= p[1] < 1:
            raise ConfigError(f"{at}: point {p!r} needs pT,t > 0 GeV and a size in [0, 1)")
        points.append((float(p[0]), float(p[1])))
    if any(b[0] <= a[0] for a, b in zip(points, points[1:])):
        raise ConfigError(f"{at}: the points' pT,t must increase")
    if not any(s for _, s in points):
        raise ConfigError(f"{at}: every point's size is 0")
    return tuple(points)
