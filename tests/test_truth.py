"""Truth tops, their decay products, and jet-top matching."""

import awkward as ak
import numpy as np
import pytest

from topcal.io.delphes_reader import open_events
from topcal.process.fatjets import cluster, eflow_inputs
from topcal.process.truth import match_tops, truth_tops


@pytest.fixture(scope="module")
def sample(ttbar_file):
    events = open_events(ttbar_file)
    jets, _ = cluster(eflow_inputs(events), 1.2, 200.0)
    return events, jets, truth_tops(events.Particle)


def test_truth_tops_and_decay_products(sample):
    _, _, tops = sample
    assert ak.all(ak.num(tops) == 2)
    assert np.median(ak.to_numpy(ak.flatten(tops.top.mass))) == pytest.approx(172.5, abs=1.5)
    assert np.median(ak.to_numpy(ak.flatten(tops.w.mass))) == pytest.approx(80.4, abs=1.0)
    # top -> W b: the b and the (last-copy) W carry the top's momentum up to FSR recoil
    total = tops.b + tops.w
    ratio = ak.to_numpy(ak.flatten(total.pt / tops.top.pt))
    assert np.median(np.abs(ratio - 1)) < 0.05
    # W -> q q': exact four-momentum conservation at the W's last copy
    wq = tops.q1 + tops.q2
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(wq.mass)), ak.to_numpy(ak.flatten(tops.w.mass)), rtol=5e-3)


def test_matching(sample):
    _, jets, tops = sample
    index, matched = match_tops(jets, tops, 1.2)
    strict_index, strict = match_tops(jets, tops, 1.2, require_decay_products=True)
    assert ak.all(index[~matched] == -1)
    assert ak.all(strict <= matched)  # the stricter match is a subset
    assert 0.5 < ak.sum(strict) / ak.sum(matched) < 1.0
    # matched jets carry most of their top's pT
    sel = matched & (jets.rho > 400)
    top_pt = tops.top.pt[ak.where(index >= 0, index, 0)]
    ratio = ak.to_numpy(ak.flatten(jets.rho[sel] / top_pt[sel]))
    assert 0.9 < np.median(ratio) < 1.02
    # a jet far from every top is not matched: rotate jets by 90 degrees (tops are back to back)
    rotated = ak.zip({"pt": jets.rho, "eta": jets.eta, "phi": jets.phi + np.pi / 2, "mass": jets.mass},
                     with_name="Momentum4D")
    _, away = match_tops(rotated, tops, 0.3)
    assert ak.sum(away) < 0.05 * ak.sum(matched)


def test_events_without_tops(real_delphes):
    events = open_events(real_delphes)
    tops = truth_tops(events.Particle)
    jets, _ = cluster(eflow_inputs(events), 1.2, 20.0)
    index, matched = match_tops(jets, tops, 1.2)
    assert ak.sum(ak.num(tops)) == 0 and not ak.any(matched)


def test_hard_process_top_is_the_first_copy(sample):
    """The hard-process top is the same top before its own radiation: its first copy, with the hard
    process's two tops back to back in phi without ISR, and at least as hard as the last copy on average."""
    events, jets, tops = sample
    particles = events.Particle
    assert ak.all(tops.hard_top.pt > 0)
    dphi = ak.to_numpy(abs(tops.hard_top[:, 0].deltaphi(tops.hard_top[:, 1])))
    assert np.all(dphi > np.pi - 1e-3)  # no ISR: the hard tops balance exactly in the transverse plane
    last = ak.to_numpy(ak.flatten(tops.top.pt))
    hard = ak.to_numpy(ak.flatten(tops.hard_top.pt))
    assert np.mean(hard) > np.mean(last) and np.mean(hard >= last - 1e-3) > 0.6
    assert ak.sum(abs(particles.PID) == 6) >= ak.sum(ak.num(tops)) * 2  # copies exist to walk through


def test_hard_process_label_removes_the_upper_tail(sample):
    """A gluon the top radiates into its jet makes pT,j exceed the last copy's pT, not the hard process's."""
    _, jets, tops = sample
    index, matched = match_tops(jets, tops, 1.2)
    sel = matched & (jets.rho > 400)
    safe = ak.where(index >= 0, index, 0)
    tails = {}
    for label in ("top", "hard_top"):
        ratio = ak.to_numpy(ak.flatten(jets.rho[sel] / tops[label].pt[safe][sel]))
        tails[label] = np.mean(ratio > 1.05)
    assert tails["hard_top"] < 0.5 * tails["top"]


def _toy_record(steps: list[tuple[int, int, tuple[float, float]]]) -> ak.Array:
    """One event: a chain of top copies, each (PID, Status, (px, py) in GeV), pz = 0, m = 172.5 GeV,
    linked by M1/D1, the last one decaying to a W (its only other particle)."""
    n = len(steps)
    px = np.array([s[2][0] for s in steps] + [10.0])
    py = np.array([s[2][1] for s in steps] + [0.0])
    mass = np.array([172.5] * n + [80.4])
    fields = {
        "PID": np.array([s[0] for s in steps] + [24]), "Status": np.array([s[1] for s in steps] + [22]),
        "M1": np.arange(-1, n), "D1": np.array(list(range(1, n + 1)) + [-1]), "D2": np.full(n + 1, -1),
        "PT": np.hypot(px, py), "Eta": np.zeros(n + 1), "Phi": np.arctan2(py, px), "Mass": mass,
    }
    return ak.zip({k: ak.Array([v.tolist()]) for k, v in fields.items()})


def test_before_fsr_adds_back_only_the_tops_own_emissions():
    """A top made at 500 GeV, kicked to 550 GeV by ISR recoil (44), radiating 60 GeV (51), then kicked by
    another particle's emission (52): the top before its own FSR is the recoiled one, plus the later kick."""
    from topcal.process.truth import last_copies, with_own_fsr

    particles = _toy_record([(6, 22, (500.0, 0.0)), (6, 44, (550.0, 0.0)), (6, 51, (490.0, 0.0)),
                             (6, 52, (492.0, 0.0))])
    top = with_own_fsr(particles, last_copies(particles, 6), 6)
    assert ak.to_list(top.px) == [[pytest.approx(552.0)]]  # 492 + (550 - 490)
    assert ak.to_list(top.py) == [[pytest.approx(0.0, abs=1e-9)]]
    no_fsr = _toy_record([(6, 22, (500.0, 0.0)), (6, 44, (530.0, 5.0))])  # only recoil: the last copy itself
    assert ak.to_list(with_own_fsr(no_fsr, last_copies(no_fsr, 6), 6).px) == [[pytest.approx(530.0)]]


def test_before_fsr_is_the_hard_top_without_isr(sample):
    """Without ISR nothing recoils against the initial state, so the top before its own FSR is the hard
    process's top up to small dipole recoils and primordial kT; it is harder than the last copy."""
    _, _, tops = sample
    hard = ak.to_numpy(ak.flatten(tops.hard_top.pt))
    before = ak.to_numpy(ak.flatten(tops.prefsr_top.pt))
    last = ak.to_numpy(ak.flatten(tops.top.pt))
    assert np.median(np.abs(before / hard - 1)) < 0.01
    assert np.mean(np.abs(before - hard)) < 0.5 * np.mean(np.abs(last - hard))
    assert np.mean(before) > np.mean(last)
    # the dipole partner's recoil inside each emission step moves single masses, not the typical one
    assert np.median(ak.to_numpy(ak.flatten(tops.prefsr_top.mass))) == pytest.approx(172.5, abs=1.5)


@pytest.fixture(scope="module")
def isr_tops(ttbar_isr_file):
    return truth_tops(open_events(ttbar_isr_file).Particle)


def test_before_fsr_carries_the_isr_recoil(isr_tops):
    """With ISR the hard-process tops stay back to back, while the tops that decay recoil against the
    initial-state radiation: the pair before FSR has the transverse momentum of the decaying pair (up to
    the FSR that leaves it), which the hard-process pair lacks."""
    def pair_pt(obj):
        pair = isr_tops[obj][:, 0] + isr_tops[obj][:, 1]
        return ak.to_numpy(pair.pt)

    recoil = pair_pt("top")
    assert np.median(recoil) > 20.0  # ISR kicks the pair by tens of GeV
    assert np.median(pair_pt("hard_top")) < 1e-3
    assert np.median(np.abs(pair_pt("prefsr_top") - recoil)) < 0.3 * np.median(recoil)
    shift = ak.to_numpy(ak.flatten(isr_tops.prefsr_top.pt - isr_tops.hard_top.pt))
    assert np.sqrt(np.mean(shift**2)) > 10.0  # the hard-process label misses this recoil
