"""The control histograms of a per-jet dataset (hist), filled once before and once after flattening.

Integer storage, so that adding chunk histograms in any order (any executor) gives identical results.
The 2D pT,t(truth) vs pT,j histogram uses 20 GeV jet bins with an edge at 600 GeV, so the paper's narrow
600..620 GeV slice is one bin.
"""

from __future__ import annotations

import hist
import numpy as np

NARROW_SLICE_GEV = (600.0, 620.0)


def make_histograms(flatten_edges_gev: np.ndarray | None = None) -> dict[str, hist.Hist]:
    """Empty histograms: pt_jet, pt_truth, mass, n_constituents, pt_truth_vs_pt_jet (and flatten_pt_truth)."""
    storage = hist.storage.Int64()
    pt_jet = hist.axis.Regular(40, 300.0, 1100.0, name="pt_jet", label=r"$p_{T,j}$ [GeV]")
    pt_truth = hist.axis.Regular(120, 200.0, 1400.0, name="pt_truth", label=r"$p_{T,t}^{truth}$ [GeV]")
    out = {
        "pt_jet": hist.Hist(pt_jet, storage=storage),
        "pt_truth": hist.Hist(pt_truth, storage=storage),
        "mass": hist.Hist(hist.axis.Regular(60, 0.0, 300.0, name="mass", label=r"$m_j$ [GeV]"), storage=storage),
        "n_constituents": hist.Hist(
            hist.axis.Integer(0, 300, name="n_constituents", label="constituents"), storage=storage
        ),
        "pt_truth_vs_pt_jet": hist.Hist(
            hist.axis.Regular(30, 400.0, 1000.0, name="pt_jet", label=r"$p_{T,j}$ [GeV]"), pt_truth, storage=storage
        ),
    }
    if flatten_edges_gev is not None:
        out["flatten_pt_truth"] = hist.Hist(
            hist.axis.Variable(flatten_edges_gev, name="pt_truth", label=r"$p_{T,t}^{truth}$ [GeV]"), storage=storage
        )
    return out


def fill_histograms(hists: dict[str, hist.Hist], jets: dict[str, np.ndarray]) -> dict[str, hist.Hist]:
    """Fill from per-jet columns ``pt``, ``mass``, ``n_constituents``, ``pt_truth`` (GeV); returns ``hists``."""
    hists["pt_jet"].fill(jets["pt"])
    hists["pt_truth"].fill(jets["pt_truth"])
    hists["mass"].fill(jets["mass"])
    hists["n_constituents"].fill(jets["n_constituents"])
    hists["pt_truth_vs_pt_jet"].fill(jets["pt"], jets["pt_truth"])
    if "flatten_pt_truth" in hists:
        hists["flatten_pt_truth"].fill(jets["pt_truth"])
    return hists


def narrow_slice(h2d: hist.Hist, lo_gev: float = NARROW_SLICE_GEV[0], hi_gev: float = NARROW_SLICE_GEV[1]) -> hist.Hist:
    """pT,t(truth) of the jets with lo <= pT,j < hi, from the 2D histogram."""
    return h2d[{"pt_jet": slice(hist.loc(lo_gev), hist.loc(hi_gev), sum)}]


def as_double(h: hist.Hist) -> hist.Hist:
    """The same histogram with float64 storage (ROOT's TH1D/TH2D; uproot cannot write 64-bit integer bins)."""
    out = hist.Hist(*h.axes, storage=hist.storage.Double())
    out.view(flow=True)[...] = h.view(flow=True)
    return out
