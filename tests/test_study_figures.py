"""Figures of ``topcal reproduce``: legends clear of the data, labelled colour bars, one colour per quantity."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import QuadMesh

from topcal.plot import study_figures
from topcal.reproduce import input_vs_label


@pytest.fixture
def figures(monkeypatch):
    """The figures that the plotting functions save (kept open), instead of files."""
    kept = []

    def keep(fig, out_dir, name):
        fig.canvas.draw()
        kept.append(fig)
        return []

    monkeypatch.setattr(study_figures, "save", keep)
    monkeypatch.setattr("topcal.plot.style.save", keep)
    return kept


def _points_under_legend(ax, x, y) -> int:
    """How many data points (x, y) lie inside the axes' legend box."""
    box = ax.get_legend().get_window_extent()
    xy = ax.transData.transform(np.column_stack([x, y]))
    return int(np.sum((xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1) & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)))


def test_smeared_labels_legend_clear_of_the_jets_and_colour_bar_labelled(figures):
    rng = np.random.default_rng(5)
    pt_jet = rng.uniform(400, 1000, 4000)
    label = pt_jet * (1 + 0.15 * rng.standard_normal(len(pt_jet)))  # a wide smearing fills the upper corner
    sigma = np.full_like(pt_jet, 60.0)
    pred = {"pt_jet": pt_jet, "mean": pt_jet, "sigma_tot": sigma, "low": pt_jet - sigma, "high": pt_jet + sigma}
    study_figures.smeared_truth_vs_jet(pred, label, 0.15, None, "")
    fig = figures[0]
    top = fig.axes[0]
    mesh = next(c for c in top.collections if isinstance(c, QuadMesh))
    corners = mesh.get_coordinates()  # (ny + 1, nx + 1, 2) bin edges
    filled = ~np.ma.getmaskarray(mesh.get_array()).reshape(corners.shape[0] - 1, -1)
    x_edges, y_edges = corners[0, :, 0], corners[:, 0, 1]
    xc, yc = np.meshgrid(0.5 * (x_edges[1:] + x_edges[:-1]), 0.5 * (y_edges[1:] + y_edges[:-1]))
    assert filled.sum() > 100
    assert _points_under_legend(top, xc[filled], yc[filled]) == 0
    assert [a.get_ylabel() for a in top.child_axes] == ["jets"]  # the colour bar beside the upper panel


def test_coverage_figure_targets_share_the_curves_colours_and_stay_clear_of_the_legend(figures):
    rows = [{"pt_jet_lo": lo, "pt_jet_hi": lo + 40.0, "jets": 100, "coverage68": 0.7, "pull_width": 1.15}
            for lo in np.arange(400.0, 1000.0, 40.0)]
    study_figures.coverage_and_pulls(rows, None, "the paper's network")
    ax = figures[0].axes[0]
    curves = [line for line in ax.lines if line.get_linestyle() == "-"]
    targets = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert [c.get_color() for c in curves] == [t.get_color() for t in targets]
    assert [t.get_ydata()[0] for t in targets] == [0.68, 1.0]
    for line in curves:
        assert _points_under_legend(ax, line.get_xdata(), line.get_ydata()) == 0
    across = np.linspace(*ax.get_xlim(), 50)
    for line in targets:
        assert _points_under_legend(ax, across, np.full_like(across, line.get_ydata()[0])) == 0


def test_input_vs_label_figure_scales_to_the_sources_and_keeps_the_legend_above(figures):
    rows = [{"pt_jet_lo": lo, "pt_jet_hi": lo + 100, "jets": 200, "label": {"0.04": 30.0, "0.06": 45.0},
             "sources": {"trackPtScale": {"label_equivalent": 0.004, "relative": 0.005},
                         "neutralHadronEnergyScale": {"label_equivalent": 0.006, "relative": 0.007}}}
            for lo in range(400, 1000, 100)]
    result = {"sizes": {"trackPtScale": 0.01, "neutralHadronEnergyScale": 0.05}, "min_bin_jets": 50, "bins": rows}
    input_vs_label.figure(result, None, "note")
    ax = figures[0].axes[0]
    assert ax.get_ylim()[1] < 3  # per cent: the sources' 0.4..0.7%, not the 4% and 6% label points
    for line in ax.lines:
        if len(line.get_xdata()):
            assert _points_under_legend(ax, line.get_xdata(), line.get_ydata()) == 0
