"""Flattening in pT,t(truth) by accept-reject against the sample's own histogram.

Each jet gets a uniform number from a hash of (seed, file name, tree entry, jet index), computed
columnar with splitmix64, so the kept jets depend on the seed and the input only: not on the chunk size, the
executor or the order in which chunks finish. After all chunks, the histogram of pT,t(truth) fixes the
acceptance per bin, ``min(1, target / n_bin)``, and a jet is kept when its number is below its bin's
acceptance. The target is the least populated bin that is not *thin*: a bin is thin when it holds less than
``THIN_FRACTION`` of the median of itself and its two neighbours (mirrored at the edges), a local deficit such
as the lowest pT,t(truth) bin next to the jet-pT threshold. A thin bin keeps all its jets and stays below the
target, so one thin bin cannot starve the others; a smoothly falling spectrum has no thin bin and comes out
flat at its least populated bin.
"""

from __future__ import annotations

import os
import zlib

import numpy as np

THIN_FRACTION = 0.6  # a bin below this fraction of its neighbourhood's median does not set the target

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


def thin_bins(counts: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-empty bins holding less than ``THIN_FRACTION`` of the median of the bin and
    its two neighbours (the spectrum mirrored at both ends, so an edge bin is compared with its neighbour)."""
    counts = np.asarray(counts, dtype=np.float64)
    if len(counts) < 3:
        return np.zeros(counts.shape, dtype=bool)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(counts, 1, mode="reflect"), 3)
    return (counts > 0) & (counts < THIN_FRACTION * np.median(windows, axis=1))


def flatten_target(counts: np.ndarray) -> float:
    """Jets per bin after flattening: the least populated non-empty bin that is not thin (:func:`thin_bins`);
    0 when every bin is empty."""
    counts = np.asarray(counts, dtype=np.float64)
    usable = (counts > 0) & ~thin_bins(counts)
    if not usable.any():
        usable = counts > 0
    return float(counts[usable].min()) if usable.any() else 0.0


def acceptance(counts: np.ndarray) -> np.ndarray:
    """Keep probability per bin, ``min(1, target / n_bin)`` with the target of :func:`flatten_target`.

    Empty and thin bins get probability 1. ``counts`` are the in-range bin counts.
    """
    counts = np.asarray(counts, dtype=np.float64)
    target = flatten_target(counts)
    filled = counts > 0
    return np.where(filled, np.minimum(1.0, target / np.where(filled, counts, 1.0)), 1.0)


def keep(pt_truth_gev: np.ndarray, uniforms: np.ndarray, edges_gev: np.ndarray, accept: np.ndarray) -> np.ndarray:
    """Boolean mask of kept jets; jets outside the edges take the acceptance of the nearest edge bin."""
    index = np.clip(np.searchsorted(edges_gev, pt_truth_gev, side="right") - 1, 0, len(accept) - 1)
    return uniforms < accept[index]
