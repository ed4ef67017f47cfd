"""The LoLa top tagger: separates three-prong from one-prong toy jets, round trip, top-like subsets, AUC."""

from __future__ import annotations

import numpy as np
import pytest

from topcal.config import ProcessConfig, TaggerConfig
from topcal.errors import ConfigError
from topcal.io.dataset import write_dataset
from topcal.tagger.run import Tagger, roc_auc, tagger_inputs, top_like_subsets, train_tagger

N = 10  # constituents per toy jet


def toy_jets(n: int, prongs: tuple[float, ...], seed: int) -> np.ndarray:
    """Jets of pT 600 GeV at eta = 0 whose pT is shared by prongs at Delta R ~ 0.4 from the axis (GeV/1000)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, N, 4), dtype=np.float32)
    share = np.asarray(prongs) * rng.uniform(0.8, 1.2, (n, len(prongs)))
    pt = 0.6 * share / share.sum(axis=1, keepdims=True)
    eta, phi = rng.normal(0, 0.4, (2, n, len(prongs)))
    order = np.argsort(-pt, axis=1)
    pt, eta, phi = (np.take_along_axis(a, order, axis=1) for a in (pt, eta, phi))
    k = len(prongs)
    x[:, :k] = np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)
    return x


def dataset(path, x: np.ndarray):
    n = len(x)
    table = {"constituents": x, "pt": np.full(n, 600.0), "eta": np.zeros(n), "pt_truth": np.full(n, np.nan)}
    return write_dataset(path, table, ProcessConfig(max_constituents=N, flatten=False, truth_match=False))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagger")
    dataset(root / "tops", toy_jets(1500, (0.4, 0.35, 0.25), seed=1))
    dataset(root / "qcd", toy_jets(1500, (0.9, 0.05, 0.05), seed=2))
    cfg = TaggerConfig(n_constituents=N, n_combinations=4, hidden=[32, 16], epochs=15, patience=3)
    summary = train_tagger(root / "tops", root / "qcd", root / "tagger", cfg, progress=False)
    return root, summary


def test_three_prong_jets_are_separated_from_one_prong_jets(trained):
    root, summary = trained
    assert summary.auc > 0.95
    tagger = Tagger(root / "tagger")
    s_top = tagger.score(toy_jets(400, (0.4, 0.35, 0.25), seed=3))
    s_qcd = tagger.score(toy_jets(400, (0.9, 0.05, 0.05), seed=4))
    assert roc_auc(s_top, s_qcd) > 0.95
    assert np.all((s_top >= 0) & (s_top <= 1))


def test_round_trip_and_wider_inputs(trained):
    root, _ = trained
    x = toy_jets(50, (0.4, 0.35, 0.25), seed=5)
    a, b = Tagger(root / "tagger"), Tagger(root / "tagger")
    np.testing.assert_array_equal(a.score(x), b.score(x))
    wider = np.concatenate([x, np.zeros((50, 30, 4), dtype=np.float32)], axis=1)  # more padding: same jets
    np.testing.assert_allclose(a.score(wider), a.score(x), rtol=1e-6)
    assert tagger_inputs(x[:, :3], N).shape == (50, N, 4)


def test_top_like_subsets_and_auc():
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    subsets = top_like_subsets(scores, (1.0, 0.5, 0.25))
    assert subsets[1.0].all() and subsets[0.5].tolist() == [False, True, False, True]
    assert subsets[0.25].tolist() == [False, True, False, False]
    assert roc_auc(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 1.5])) == pytest.approx(7.5 / 9)


def test_bad_configuration_and_background_flattening():
    with pytest.raises(ConfigError, match="n_constituents"):
        TaggerConfig(n_constituents=0).validate()
    with pytest.raises(ConfigError, match="flatten"):
        ProcessConfig(truth_match=False).validate()
