"""Fat-jet clustering from energy-flow objects (fastjet), on our sample and on real DELPHES output."""

import awkward as ak
import numpy as np
import pytest

from topcal.io.delphes_reader import open_events
from topcal.process.fatjets import cluster, eflow_inputs, groomed, padded_constituents


def test_jets_sorted_and_constituents_sum_to_jet(ttbar_file):
    events = open_events(ttbar_file)
    jets, cons = cluster(eflow_inputs(events), radius=1.2, min_pt_gev=100.0)
    pt = jets.rho
    assert ak.all(pt[:, :-1] >= pt[:, 1:])  # descending
    # E-scheme recombination: the jet four-momentum is the sum of its constituents
    for comp in ("px", "py", "pz", "E"):
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(ak.sum(cons[comp], axis=2))),
                                   ak.to_numpy(ak.flatten(jets[comp])), rtol=1e-6, atol=1e-6)
    # two hard top jets per event, with the top mass
    lead = jets[ak.num(jets) >= 1][:, 0]
    assert np.median(ak.to_numpy(lead.mass)) == pytest.approx(170, abs=15)


def test_real_delphes_input_with_pt_zero_entries(real_delphes):
    events = open_events(real_delphes)
    inputs = eflow_inputs(events)
    assert ak.all(np.isfinite(ak.flatten(inputs.E))) and ak.all(ak.flatten(inputs.rho) > 0)
    jets, _ = cluster(inputs, 1.2, 20.0)
    assert len(jets) == 25 and ak.sum(ak.num(jets)) > 0


def test_towers_as_input(ttbar_file):
    events = open_events(ttbar_file)
    jets_tower, _ = cluster(eflow_inputs(events, use_towers=True), 1.2, 300.0)
    jets_eflow, _ = cluster(eflow_inputs(events), 1.2, 300.0)
    assert ak.sum(ak.num(jets_tower)) == pytest.approx(ak.sum(ak.num(jets_eflow)), rel=0.2)


def test_padding_and_scaling():
    # the first jet's constituents arrive unordered: padding puts the highest pT first
    cons = ak.zip({"px": [[1.0, 3.0], [2.0]], "py": [[0.0, 0.0], [0.0]], "pz": [[0.0, 0.0], [0.0]],
                   "E": [[1.0, 3.0], [2.0]]}, with_name="Momentum4D")
    out = padded_constituents(cons, 3)
    assert out.shape == (2, 3, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0], [0.003, 0.001, 0.0])
    np.testing.assert_allclose(out[1, :, 1], [0.002, 0.0, 0.0])
    clipped = padded_constituents(cons, 1)
    np.testing.assert_allclose(clipped[:, 0, 0], [0.003, 0.002])


def test_clustering_is_independent_of_slicing_and_blocks(ttbar_file):
    """Sliced (non-contiguous) input and any block size give the same jets (scikit-hep/fastjet#400)."""
    inputs = eflow_inputs(open_events(ttbar_file))
    reference, ref_cons = cluster(inputs, 1.2, 100.0, block_events=len(inputs))
    for block in (1, 7, 1000):
        jets, cons = cluster(inputs, 1.2, 100.0, block_events=block)
        assert ak.all(jets.rho == reference.rho) and ak.all(ak.num(cons, axis=2) == ak.num(ref_cons, axis=2))
    shuffled = np.random.default_rng(2).permutation(len(inputs))
    jets, _ = cluster(inputs[shuffled], 1.2, 100.0, block_events=50)
    assert ak.all(jets.rho == reference.rho[shuffled])


def test_leptons_kept_on_request(ttbar_file):
    """EFlowFilter drops electron and muon tracks; ``leptons=True`` keeps exactly those, and jets with
    leptons from b and c decays are harder then."""
    events = open_events(ttbar_file)
    apid = abs(events.EFlowTrack.PID)
    n_leptons = int(ak.sum(((apid == 11) | (apid == 13)) & (events.EFlowTrack.PT > 0)))
    without, with_leptons = eflow_inputs(events), eflow_inputs(events, leptons=True)
    assert n_leptons > 0
    assert ak.sum(ak.num(with_leptons)) - ak.sum(ak.num(without)) == n_leptons
    lead_without = cluster(without, 1.2, 300.0)[0]
    lead_with = cluster(with_leptons, 1.2, 300.0)[0]
    assert ak.sum(lead_with.rho) > ak.sum(lead_without.rho)


def test_trimming_drops_soft_wide_angle_constituents():
    """Two jets: three hard prongs (within 0.2 of their centres) and a soft constituent 0.9 away (2% of
    pT,j, below the 5% cut) that trimming drops, keeping every field; a soft one next to a prong stays (it
    joins the prong's subjet), and a cut of 0 keeps everything."""
    import vector

    pt = np.array([[300.0, 200.0, 150.0, 13.0, 0.0], [300.0, 200.0, 150.0, 40.0, 13.0]])
    deta = np.array([[0.0, 0.4, -0.3, 0.9, 0.0], [0.0, 0.4, -0.3, 0.9, 0.05]])
    dphi = np.array([[0.0, 0.3, 0.35, 0.0, 0.0], [0.0, 0.3, 0.35, 0.0, 0.0]])
    counts = np.array([4, 5])
    real = np.arange(5)[None, :] < counts[:, None]
    p4 = vector.array({"pt": pt[real], "eta": deta[real], "phi": dphi[real], "mass": np.zeros(real.sum())})
    origin = np.tile(np.arange(1, 6, dtype=np.int8), (2, 1))[real]
    cons = ak.unflatten(ak.zip({"px": p4.px, "py": p4.py, "pz": p4.pz, "E": p4.E, "origin": origin},
                               with_name="Momentum4D"), counts)
    jet_pt = ak.to_numpy(ak.sum(cons, axis=1).rho)
    trimmed = groomed(cons, jet_pt, "trimming", radius=0.2, pt_fraction=0.05)
    assert sorted(ak.to_list(trimmed.origin[0])) == [1, 2, 3]  # the soft wide-angle one is gone
    assert sorted(ak.to_list(trimmed.origin[1])) == [1, 2, 3, 4, 5]  # 40 GeV is 5.6% of pT,j; 13 GeV joins it
    np.testing.assert_allclose(sorted(ak.to_list(trimmed.rho[0])), [150, 200, 300], rtol=1e-9)
    assert ak.to_list(ak.num(groomed(cons, jet_pt, "trimming", pt_fraction=0.0))) == [4, 5]
    assert groomed(cons, jet_pt, "none") is cons
