"""The network inputs (topcal.train.inputs) against hand computations on a few jets."""

from __future__ import annotations

import numpy as np
import pytest
import vector

from topcal.errors import InputFileError
from topcal.train.inputs import (
    CONSTITUENT_FEATURES,
    CONSTITUENT_TYPE_FEATURES,
    JET_FEATURES,
    JET_TYPE_FEATURES,
    Jets,
    Standardiser,
    encode,
    feature_names,
    jet_features,
    jet_frame_constituents,
    raw_inputs,
)

# three massless constituents of a jet at (eta, phi) = (0.5, 1.0), placed at (deta, dphi) offsets
PT = np.array([200.0, 100.0, 50.0])
OFFSETS = np.array([[0.0, 0.0], [0.3, 0.1], [-0.2, 0.25]])


def jets_from(offsets_list, n_max=5, eta0=0.5, phi0=1.0) -> Jets:
    """Jets whose constituents sit at the given (deta, dphi) offsets; kinematics from their sum."""
    rows, kin = [], []
    for offsets in offsets_list:
        p4 = vector.array({"pt": PT, "eta": eta0 + offsets[:, 0], "phi": phi0 + offsets[:, 1],
                           "mass": np.zeros(3)})
        c = np.zeros((n_max, 4))
        c[:3] = np.stack([p4.E, p4.px, p4.py, p4.pz], axis=-1) / 1000.0
        rows.append(c)
        jet = p4.sum()
        kin.append((jet.pt, jet.eta, jet.phi, jet.mass))
    kin = np.array(kin)
    return Jets(np.array(rows, dtype=np.float32), kin[:, 0], kin[:, 1], kin[:, 2], kin[:, 3],
                np.full(len(rows), 3))


def feature(arr, name, names=CONSTITUENT_FEATURES):
    return arr[..., names.index(name)]


def test_constituent_features_by_hand():
    jets = jets_from([OFFSETS])
    f = jet_frame_constituents(jets)[0]
    p4 = vector.array({"pt": PT, "eta": 0.5 + OFFSETS[:, 0], "phi": 1.0 + OFFSETS[:, 1], "mass": np.zeros(3)})
    jet_e = np.sqrt((jets.pt[0] * np.cosh(jets.eta[0])) ** 2 + jets.mass[0] ** 2)
    np.testing.assert_allclose(feature(f, "pt_fraction")[:3], PT / jets.pt[0], rtol=1e-5)
    np.testing.assert_allclose(feature(f, "log_pt_fraction")[:3], np.log(PT / jets.pt[0]), atol=1e-5)
    np.testing.assert_allclose(feature(f, "log_e_fraction")[:3], np.log(p4.E / jet_e), atol=1e-5)
    np.testing.assert_allclose(feature(f, "log_pt")[:3], np.log(PT), atol=1e-5)
    np.testing.assert_allclose(feature(f, "log_e")[:3], np.log(p4.E), atol=1e-5)
    deta = 0.5 + OFFSETS[:, 0] - jets.eta[0]
    dphi = 1.0 + OFFSETS[:, 1] - jets.phi[0]
    np.testing.assert_allclose(feature(f, "delta_r")[:3], np.hypot(deta, dphi), atol=1e-5)
    # the rotation keeps distances to the axis
    np.testing.assert_allclose(np.hypot(feature(f, "delta_eta"), feature(f, "delta_phi"))[:3],
                               np.hypot(deta, dphi), atol=1e-5)
    # padding rows stay zero
    assert np.all(f[3:] == 0)


def test_jet_frame_is_invariant_under_rotation_and_reflection():
    angle = 1.1
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mirrored = OFFSETS * np.array([1.0, -1.0])
    jets = jets_from([OFFSETS * 0.5, (OFFSETS * 0.5) @ rot.T, mirrored * 0.5], eta0=0.0, phi0=0.0)
    f = jet_frame_constituents(jets)
    for name in ("delta_eta", "delta_phi"):  # small offsets: (eta, phi) rotate like a plane
        np.testing.assert_allclose(feature(f[1], name), feature(f[0], name), atol=2e-3)
        np.testing.assert_allclose(feature(f[2], name), feature(f[0], name), atol=2e-3)
    # the principal axis lies along delta_eta: the pT-weighted spread is larger along it
    z = feature(f[0], "pt_fraction")
    assert np.sum(z * feature(f[0], "delta_eta") ** 2) > np.sum(z * feature(f[0], "delta_phi") ** 2)


def test_jet_features_by_hand():
    jets = jets_from([OFFSETS])
    j = jet_features(jets)[0]
    get = lambda name: j[JET_FEATURES.index(name)]  # noqa: E731
    assert get("pt") == pytest.approx(jets.pt[0] / 1000, rel=1e-6)
    assert get("mass") == pytest.approx(jets.mass[0] / 1000, rel=1e-6)
    assert get("mass_over_pt") == pytest.approx(jets.mass[0] / jets.pt[0], rel=1e-6)
    assert get("n_constituents") == 3
    z = PT / jets.pt[0]
    assert get("ptfrac_1") == pytest.approx(z[0], rel=1e-5)
    assert get("ptfrac_2") == pytest.approx(z[:2].sum(), rel=1e-5)
    assert get("ptfrac_5") == pytest.approx(z.sum(), rel=1e-5)
    deta = 0.5 + OFFSETS[:, 0] - jets.eta[0]
    dphi = 1.0 + OFFSETS[:, 1] - jets.phi[0]
    assert get("girth") == pytest.approx(np.sum(z * np.hypot(deta, dphi)), rel=1e-4)
    # three constituents are the three exclusive subjets: their masses are the pair masses, m123 the jet mass
    p4 = vector.array({"pt": PT, "eta": 0.5 + OFFSETS[:, 0], "phi": 1.0 + OFFSETS[:, 1], "mass": np.zeros(3)})
    pairs = sorted(((p4[a] + p4[b]).mass / 1000 for a, b in ((0, 1), (0, 2), (1, 2))), reverse=True)
    np.testing.assert_allclose([get("m12"), get("m13"), get("m23")], pairs, rtol=1e-4)
    assert get("m123") == pytest.approx(jets.mass[0] / 1000, rel=1e-4)
    assert get("tau32") == pytest.approx(0.0, abs=1e-6)  # each constituent is its own axis
    assert 0 < get("tau21") < 1


def test_encoding_in_chunks_changes_nothing(monkeypatch):
    """The jet-frame arrays and the standardiser go through the jets a chunk at a time (their float64
    intermediates would take 40 kB a jet: 8.6 GB for 200k jets at once). Chunks of 2 jets give bit for bit
    the arrays of one pass, the statistics numpy gives over all real constituents and all jets, and the
    standardisation in place gives the same arrays as on a copy."""
    import topcal.train.inputs as inputs

    jets = jets_from([OFFSETS * f for f in (0.5, 0.7, 1.0, 1.3, 1.6)])
    whole = raw_inputs(jets, "jet-frame")
    monkeypatch.setattr(inputs, "ENCODE_CHUNK_JETS", 2)
    chunked = raw_inputs(jets, "jet-frame")
    assert all(np.array_equal(whole[k], chunked[k]) for k in whole)
    std = Standardiser.fit(chunked)
    real = whole["constituents"][whole["mask"] > 0].astype(np.float64)
    jet = whole["jet"].astype(np.float64)
    for mean, scale, a in ((std.constituent_mean, std.constituent_scale, real), (std.jet_mean, std.jet_scale, jet)):
        np.testing.assert_allclose(mean, a.mean(axis=0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(scale, np.where(a.std(axis=0) > 1e-12, a.std(axis=0), 1.0), rtol=1e-9)
    copy = std.apply(chunked)
    in_place = std.apply(chunked, in_place=True)
    assert in_place["constituents"] is chunked["constituents"] and copy["constituents"] is not chunked["constituents"]
    assert all(np.array_equal(copy[k], in_place[k]) for k in copy)


def test_standardiser_and_encodings():
    jets = jets_from([OFFSETS, OFFSETS * 0.7, OFFSETS[::-1] * 1.3])
    raw = raw_inputs(jets, "jet-frame")
    std = Standardiser.fit(raw)
    out = std.apply(raw)
    real = out["mask"] > 0
    np.testing.assert_allclose(out["constituents"][real].mean(axis=0), 0, atol=1e-5)
    assert np.all(out["constituents"][~real] == 0)
    np.testing.assert_array_equal(encode(jets, "jet-frame", None, Standardiser.from_dict(std.to_dict()))["jet"],
                                  out["jet"])
    flat = raw_inputs(jets, "lab-4vectors")["flat"]
    np.testing.assert_array_equal(flat, jets.constituents.reshape(3, -1))
    assert raw_inputs(jets, "jet-frame", n_constituents=2)["constituents"].shape == (3, 2, len(CONSTITUENT_FEATURES))


def typed(jets: Jets) -> Jets:
    """``jets`` (three constituents each) as a track of charge -1 identified as an electron, a photon and a
    neutral hadron, in pT order."""
    info = {k: np.zeros((len(jets), jets.n_max), np.int8) for k in ("origin", "charge", "lepton")}
    info["origin"][:, :3] = [1, 2, 3]
    info["charge"][:, 0] = -1
    info["lepton"][:, 0] = -11
    return Jets(jets.constituents, jets.pt, jets.eta, jets.phi, jets.mass, jets.n_constituents, **info)


def test_what_each_constituent_is_by_hand():
    jets = typed(jets_from([OFFSETS]))
    names, jet_names = feature_names(True)
    f = jet_frame_constituents(jets, typed=True)[0]
    assert f.shape == (5, len(CONSTITUENT_FEATURES) + len(CONSTITUENT_TYPE_FEATURES))
    one_hot = np.stack([feature(f, k, names) for k in ("is_track", "is_photon", "is_neutral_hadron", "is_tower")], 1)
    np.testing.assert_array_equal(one_hot[:3], np.eye(3, 4))
    np.testing.assert_array_equal(feature(f, "charge", names)[:3], [-1, 0, 0])
    np.testing.assert_array_equal(feature(f, "is_electron", names)[:3], [1, 0, 0])
    assert not feature(f, "is_muon", names).any() and np.all(f[3:] == 0)
    # the kinematic features come first, unchanged
    np.testing.assert_array_equal(f[:, :len(CONSTITUENT_FEATURES)], jet_frame_constituents(jets)[0])
    j = jet_features(jets)[0]  # the jets carry their types: the fractions follow the kinematic features
    assert len(j) == len(JET_FEATURES) + len(JET_TYPE_FEATURES)
    np.testing.assert_allclose([j[jet_names.index(k)] for k in JET_TYPE_FEATURES], PT / jets.pt[0], rtol=1e-5)
    assert len(jet_features(jets, typed=False)[0]) == len(JET_FEATURES)


def test_a_model_keeps_the_features_it_was_trained_with():
    """A standardiser fitted on typed jets stores the typed feature names and refuses jets without types
    with one line naming the missing dataset column; one fitted on jets without types (an older dataset)
    encodes typed jets with the kinematic features alone, exactly as the same jets without types."""
    plain = jets_from([OFFSETS, OFFSETS * 0.7, OFFSETS[::-1] * 1.3])
    jets = typed(plain)
    with_types = Standardiser.from_dict(Standardiser.fit(raw_inputs(jets, "jet-frame")).to_dict())
    assert with_types.typed and "is_neutral_hadron" in with_types.to_dict()["constituent_features"]
    assert encode(jets, "jet-frame", None, with_types)["jet"].shape == (3, len(feature_names(True)[1]))
    with pytest.raises(InputFileError, match="^constituent_origin: .*without it"):
        encode(plain, "jet-frame", None, with_types)
    without = Standardiser.from_dict(Standardiser.fit(raw_inputs(plain, "jet-frame")).to_dict())
    assert not without.typed
    a, b = encode(jets, "jet-frame", None, without), encode(plain, "jet-frame", None, without)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="input features differ"):
        Standardiser.from_dict({**without.to_dict(), "jet_features": ["pt"]})
