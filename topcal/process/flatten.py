"""Flattening in pT,t(truth) by accept-reject against the sample's own histogram.

Each jet gets a uniform number from a hash of (seed, file name, tree entry, jet index), computed
columnar with splitmix64, so the kept jets depend on the seed and the input only: not on the chunk size, the
executor or the order in which chunks finish. After all chunks, the histogram of pT,t(truth) fixes the
acceptance per bin, ``min(1, n_min / n_bin)``, and a jet is kept when its number is below its bin's
acceptance. The expected kept histogram is flat at ``n_min`` per bin.
"""

from __future__ import annotations

import os
import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def file_key(path: str) -> int:
    """A 32-bit key from the file's base name (moving the files does not change the draw)."""
    return zlib.crc32(os.path.basename(str(path)).encode())


def jet_uniforms(seed: int, file: str, entry: np.ndarray, jet_index: np.ndarray) -> np.ndarray:
    """Uniform numbers in [0, 1), one per jet, from (seed, file name, tree entry, jet index)."""
    entry = np.asarray(entry, dtype=np.uint64)
    jet_index = np.asarray(jet_index, dtype=np.uint64)
    h = _splitmix64(np.full(entry.shape, (int(seed) << 32) ^ file_key(file), dtype=np.uint64))
    h = _splitmix64(h ^ entry)
    h = _splitmix64(h ^ jet_index)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def acceptance(counts: np.ndarray) -> np.ndarray:
    """Keep probability per bin, ``min(1, n_min / n_bin)`` with ``n_min`` the least filled non-empty bin.

    Empty bins get probability 1 (nothing to keep there). ``counts`` are the in-range bin counts.
    """
    counts = np.asarray(counts, dtype=np.float64)
    filled = counts > 0
    if not filled.any():
        return np.ones_like(counts)
    target = counts[filled].min()
    return np.where(filled, np.minimum(1.0, target / np.where(filled, counts, 1.0)), 1.0)


def keep(pt_truth_gev: np.ndarray, uniforms: np.ndarray, edges_gev: np.ndarray, accept: np.ndarray) -> np.ndarray:
    """Boolean mask of kept jets; jets outside the edges take the acceptance of the nearest edge bin."""
    index = np.clip(np.searchsorted(edges_gev, pt_truth_gev, side="right") - 1, 0, len(accept) - 1)
    return uniforms < accept[index]
