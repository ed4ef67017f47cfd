"""Flattening in pT,t(truth): reproducible per-jet draws and a flat kept spectrum."""

from __future__ import annotations

import numpy as np
from scipy import stats

from topcal.process.flatten import acceptance, jet_uniforms, keep


def test_uniforms_are_uniform_reproducible_and_order_free():
    entry = np.arange(200_000)
    jet = entry % 3
    u = jet_uniforms(7, "/some/dir/a.root", entry, jet)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # the same jet gives the same number whatever the chunking or order, and the directory does not matter
    perm = np.random.default_rng(1).permutation(len(entry))
    np.testing.assert_array_equal(jet_uniforms(7, "/other/a.root", entry[perm], jet[perm]), u[perm])
    assert not np.array_equal(jet_uniforms(8, "a.root", entry, jet), u)
    assert not np.array_equal(jet_uniforms(7, "b.root", entry, jet), u)


def test_kept_spectrum_is_flat():
    """A falling spectrum (exponential) becomes flat at the least populated bin's count."""
    rng = np.random.default_rng(3)
    pt = 400 + rng.exponential(300, size=400_000)
    pt = pt[pt < 1000]
    edges = np.arange(400, 1001, 25.0)
    counts, _ = np.histogram(pt, edges)
    accept = acceptance(counts)
    u = jet_uniforms(1, "toy.root", np.arange(len(pt)), np.zeros(len(pt), dtype=int))
    kept, _ = np.histogram(pt[keep(pt, u, edges, accept)], edges)
    expected = counts.min()
    chi2 = np.sum((kept - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, len(kept) - 1) > 1e-3
    assert abs(kept.sum() / len(pt) - np.sum(accept * counts) / counts.sum()) < 0.01


def test_out_of_range_jets_take_edge_acceptance():
    edges = np.array([400.0, 500.0, 600.0])
    accept = np.array([0.2, 0.9])
    u = np.array([0.5, 0.5, 0.1, 0.5])
    np.testing.assert_array_equal(keep(np.array([350.0, 450.0, 380.0, 700.0]), u, edges, accept),
                                  [False, False, True, True])
    np.testing.assert_array_equal(acceptance(np.array([0, 10, 40])), [1.0, 1.0, 0.25])


def test_one_thin_bin_does_not_starve_the_others():
    """A flat spectrum of 170 jets per bin whose first bin holds only 55 (the bin next to the jet-pT
    threshold): a target equal to the least populated bin would keep about a third of the jets; the thin bin
    is kept whole and the others are flattened to their own least populated bin."""
    from topcal.process.flatten import flatten_target, thin_bins

    counts = np.array([55] + [170 + 3 * (i % 4) for i in range(23)])
    assert list(np.flatnonzero(thin_bins(counts))) == [0]
    assert flatten_target(counts) == 170
    rng = np.random.default_rng(5)
    edges = np.arange(400, 1001, 25.0)
    pt = np.concatenate([rng.uniform(lo, lo + 25, n) for lo, n in zip(edges[:-1], counts)])
    u = jet_uniforms(1, "toy.root", np.arange(len(pt)), np.zeros(len(pt), dtype=int))
    kept = keep(pt, u, edges, acceptance(counts))
    assert kept.mean() > 0.9  # the least populated bin as target: 55 * 24 / 4245 = 31%
    assert kept[pt < 425].all()
