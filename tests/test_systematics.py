"""Per-object uncertainties: one fixed posterior per (T, seed), statistical eigen-variations, the prior."""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

import awkward as ak
import hist
import numpy as np
import pytest
import uproot
from coffea import processor
from toys import toy_dataset

import topcal
from topcal.config import TrainConfig
from topcal.errors import InputFileError
from topcal.info import describe
from topcal.io.dataset import open_dataset
from topcal.io.delphes_reader import TopcalDelphesSchema
from topcal.predict.prior import Prior, summaries
from topcal.predict.run import predict
from topcal.train import variations
from topcal.train.data import load_rows, split_rows
from topcal.train.evaluate import predict_in_blocks
from topcal.train.fit import train
from topcal.train.model import load_model
from topcal.train.spectrum import FILE as SPECTRUM_FILE
from topcal.train.spectrum import read_spectrum

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "systematics_example.py"
FIELDS = ("pt", "ptPred", "sigmaStoch", "sigmaPred", "sigmaTot", "ptMode", "ptLow68", "ptHigh68")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    base = tmp_path_factory.mktemp("systematics")
    ds = toy_dataset(base / "ds", 1500, seed=1)
    train(ds.path, base / "model", TrainConfig(phi_hidden=[16], hidden=[16], epochs=3), progress=False)
    return ds, base / "model"


def _test_jets(ds_path):
    ds = open_dataset(ds_path)
    _, test = split_rows(ds.n_jets, 0.2)
    return load_rows(ds, test)[0]


class UserProcessor(processor.ProcessorABC):
    """A user's processor: the calibrated jets of every chunk, keyed by (file, first entry)."""

    def __init__(self, model_dir, samples, seed):
        self.calibrate = topcal.Calibrator(model_dir, samples=samples, seed=seed)

    def process(self, events):
        jets = self.calibrate(events)
        fields = FIELDS + self.calibrate.stat_fields
        return {"chunks": {events.metadata["entrystart"]: {f: ak.to_numpy(ak.flatten(jets[f])) for f in fields}}}

    def postprocess(self, accumulator):
        return accumulator


def test_the_model_stores_its_variations_and_training_spectrum(toy, tmp_path):
    _, model_dir = toy
    v = variations.load(model_dir, variations.DEFAULT_SAMPLES, variations.DEFAULT_SEED)
    assert v is not None and v.coefficients.shape == (v.k, 50)
    assert v.kept >= 0.95 and (v.k == 1 or v.explained[v.k - 2] < 0.95)  # the fewest that keep 95%
    counts, edges = read_spectrum(model_dir, compute=False)
    assert counts.sum() > 1000 and len(edges) == len(counts) + 1
    assert "statistical variations:" in describe(model_dir)
    # info names the label window, which bounds the pT,j range a prior calibrates
    shutil.copytree(model_dir, tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    meta["validity"]["label_window_gev"] = [250.0, 1250.0]
    (tmp_path / "model" / "model.json").write_text(json.dumps(meta))
    assert "trained on pT,t(truth) 250..1250 GeV" in describe(tmp_path / "model")
    assert "trained on pT,t(truth)" not in describe(model_dir)


def test_old_models_get_variations_and_spectrum_computed(toy, tmp_path):
    import shutil

    _, model_dir = toy
    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    for p in [*old.glob("variations_*.npz"), old / SPECTRUM_FILE]:
        p.unlink()
    with pytest.raises(InputFileError, match="no statistical variations for samples=50 seed=0"):
        topcal.Calibrator(old, stat_variations=True)
    assert topcal.Calibrator(old).stat_fields == ()  # by default: simply none
    v = variations.compute_for_model(old, 50, 0)
    assert variations.stored(old) == [(50, 0)] and v.kept >= 0.95
    stored = read_spectrum(model_dir, compute=False)
    computed = read_spectrum(old)  # from the dataset, the trainable jets (a superset of the training jets)
    assert (old / SPECTRUM_FILE).is_file() and computed[0].sum() >= stored[0].sum()


def test_one_posterior_for_any_chunking_executor_and_block(toy, ttbar_file, tmp_path):
    """A user's processor on 2 workers at chunk sizes 300, 700 and coffea's default gives bit-identical jets
    to topcal predict at chunk size 100, and evaluate's blocks do not change a jet's numbers."""
    ds, model_dir = toy
    variations.compute_for_model(model_dir, 8, 3)
    predict(model_dir, [ttbar_file], tmp_path / "friends", chunksize=100, samples=8, seed=3, progress=False)
    friend = uproot.open(tmp_path / "friends" / f"{ttbar_file.stem}_topcal.root")["topcal"].arrays()
    stat = [f for f in friend.fields if f.startswith("FatJet_ptPred_stat")]
    assert stat, "the stored variations of (8, 3) are written"
    reference = {f: ak.to_numpy(ak.flatten(friend[f"FatJet_{f}"])) for f in FIELDS + tuple(s[7:] for s in stat)}
    for chunksize in (300, 700, None):
        runner = processor.Runner(executor=processor.FuturesExecutor(workers=2, status=False),
                                  schema=TopcalDelphesSchema, **({"chunksize": chunksize} if chunksize else {}))
        out = runner({"ttbar": {"files": {str(ttbar_file): "Delphes"}}},
                     processor_instance=UserProcessor(model_dir, 8, 3), treename="Delphes")
        starts = sorted(out["chunks"])
        for field, values in reference.items():
            mine = np.concatenate([out["chunks"][s][field] for s in starts])
            np.testing.assert_array_equal(mine, values, err_msg=f"{field}, chunk size {chunksize}")

    model, jets = load_model(model_dir), _test_jets(ds.path).jets
    whole = predict_in_blocks(model, jets, 8, 3, progress=False)
    blocks = predict_in_blocks(model, jets, 8, 3, block=37, progress=False)
    np.testing.assert_allclose(blocks["mean"], whole["mean"], rtol=1e-6)
    np.testing.assert_allclose(blocks["sigma_pred"], whole["sigma_pred"], rtol=1e-4)


def test_variations_reproduce_the_spread_of_summed_jets(toy):
    """On jets the decomposition never saw, the variance over the T draws of a subset's summed ptPred equals
    the sum over the K variations of the squared summed shifts within 5%, and per jet the quadrature sum
    of the shifts stays within sigma_pred."""
    ds, model_dir = toy
    model, jets = load_model(model_dir), _test_jets(ds.path).jets
    v = variations.load(model_dir, 50, 0)
    means = variations.draw_means(model, jets, 50, 0)
    shifts = v.shifts(means)
    quad = np.sqrt((shifts**2).sum(axis=0))
    sigma_pred = means.std(axis=0)
    assert np.all(quad <= sigma_pred * (1 + 1e-9))
    assert (quad**2).sum() / (sigma_pred**2).sum() > 0.9
    rng = np.random.default_rng(1)
    for size in (10, 50, len(jets)):
        for _ in range(5):
            pick = rng.choice(len(jets), size, replace=False)
            from_draws = means[:, pick].sum(axis=1).var()
            from_variations = (shifts[:, pick].sum(axis=1) ** 2).sum()
            assert abs(from_variations / from_draws - 1) < 0.05, (size, from_variations, from_draws)
    # the summed spread is far from the per-jet numbers added as if independent: the correlation is real
    assert means.sum(axis=1).var() > 3 * (sigma_pred**2).sum()


def _gaussians(t=40, n=30, sigma=50.0, seed=2):
    rng = np.random.default_rng(seed)
    centre = rng.uniform(500, 800, n)
    mu = centre[None, :, None] + rng.normal(0, 10, (t, n, 1))
    return np.ones((t, n, 1)), mu, np.full((t, n, 1), sigma)


def test_a_jet_gets_bit_identical_variations_in_any_chunk():
    """The shifts of a jet do not depend on which or how many jets are computed with it."""
    rng = np.random.default_rng(3)
    means = 600 + rng.normal(0, 5, (50, 1611)) + rng.normal(0, 100, 1611)
    v = variations.fit(means, 50, 0)
    whole = v.shifts(means)
    np.testing.assert_allclose((whole**2).sum() / means.var(axis=0).sum(), v.kept, rtol=1e-9)
    for size in (1, 7, 300, 700, 1000):
        for start in range(0, 1611, size):
            np.testing.assert_array_equal(v.shifts(means[:, start:start + size]), whole[:, start:start + size])


def test_a_prior_reweights_each_draw_exactly():
    """Gaussian draws N(mu_t, s) under an exponential prior exp(-y / L) over a flat training spectrum are
    Gaussians N(mu_t - s^2 / L, s): the mean moves by -s^2 / L, sigma_stoch and sigma_pred stay; a prior
    equal to the training spectrum changes nothing."""
    w, mu, s = _gaussians()
    flat = (np.ones(300), np.linspace(0, 3000, 301))
    base = summaries(w, mu, s)
    same = summaries(w, mu, s, Prior(*flat), flat)
    for key in ("mean", "sigma_stoch", "sigma_pred", "mode", "low", "high"):
        np.testing.assert_allclose(same[key], base[key], atol=0.05, err_msg=key)
    edges = np.linspace(0, 3000, 601)
    centres = 0.5 * (edges[1:] + edges[:-1])
    length = 150.0
    prior = (np.exp(-centres / length), edges)
    out = summaries(w, mu, s, Prior.from_input(prior), flat)
    np.testing.assert_allclose(out["mean"], base["mean"] - 50.0**2 / length, atol=0.3)
    np.testing.assert_allclose(out["draw_means"], mu[..., 0] - 50.0**2 / length, atol=0.3)
    np.testing.assert_allclose(out["sigma_stoch"], 50.0, rtol=0.01)
    np.testing.assert_allclose(out["sigma_pred"], base["sigma_pred"], rtol=0.01)
    np.testing.assert_allclose(out["high"] - out["low"], base["high"] - base["low"], rtol=0.01)


def test_a_prior_calibrates_a_falling_spectrum_per_bin_of_pt_jet():
    """Closure on a toy with a known likelihood: pT,t in a 250..1250 GeV window with a falling natural
    spectrum exp(-y / 120 GeV) (events drawn flat and weighted, as the generator's bias does), pT,j = pT,t +
    N(0, 40 GeV). The network is trained on a rising spectrum exp(y / 200 GeV), so its density of a jet is
    N(pT,j + 40^2 / 200, 40): per 100 GeV bin of pT,j (400..1000, inside the window by more than three
    resolutions) its mean is biased by 40^2 (1 / 200 + 1 / 120) = +21.3 GeV. With the prior (the weighted
    pT,t histogram of another sample, 25 GeV bins) over the stored training spectrum, the event-weighted bias
    is zero and the 68% intervals cover 68% in every bin."""
    rng = np.random.default_rng(26)
    sigma, rising, falling, window = 40.0, 200.0, 120.0, (250.0, 1250.0)
    edges = np.arange(window[0], window[1] + 1, 25.0)
    centres = 0.5 * (edges[1:] + edges[:-1])
    training = (np.exp(centres / rising), edges)

    def events(n):
        truth = rng.uniform(*window, n)
        return truth, truth + rng.normal(0, sigma, n), np.exp(-truth / falling)

    prior_truth, _, prior_weight = events(80000)
    prior = Prior(np.histogram(prior_truth, edges, weights=prior_weight)[0], edges, "toy")
    truth, pt_jet, weight = events(80000)
    mu = np.broadcast_to(pt_jet + sigma**2 / rising, (2, len(pt_jet)))[..., None]
    w, s = np.ones_like(mu), np.full_like(mu, sigma)
    flat, reweighted = summaries(w, mu, s), summaries(w, mu, s, prior, training)
    for lo in range(400, 1000, 100):
        sel = (pt_jet >= lo) & (pt_jet < lo + 100)
        ws = weight[sel]
        n_eff = ws.sum() ** 2 / (ws**2).sum()
        bias_flat = np.average(flat["mean"][sel] - truth[sel], weights=ws)
        bias = np.average(reweighted["mean"][sel] - truth[sel], weights=ws)
        inside = (truth[sel] >= reweighted["low"][sel]) & (truth[sel] <= reweighted["high"][sel])
        assert abs(bias_flat - sigma**2 * (1 / rising + 1 / falling)) < 3.0, (lo, bias_flat)
        assert abs(bias) < 4 * sigma / np.sqrt(n_eff) + 0.3, (lo, bias, n_eff)
        assert abs(np.average(inside, weights=ws) - 0.68) < 4 * np.sqrt(0.68 * 0.32 / n_eff), (lo, inside.mean())
    np.testing.assert_allclose(reweighted["sigma_tot"][(pt_jet > 400) & (pt_jet < 1000)], sigma, rtol=0.02)


def test_prior_inputs(tmp_path):
    edges = np.linspace(300, 1300, 21)
    values = np.exp(-edges[:-1] / 200)
    h = hist.Hist(hist.axis.Regular(20, 300, 1300))
    h[...] = values
    for given in ((values, edges), h, f"{tmp_path / 'prior.root'}:ptTop"):
        if isinstance(given, str):
            with uproot.recreate(tmp_path / "prior.root") as f:
                f["ptTop"] = (values, edges)
        p = Prior.from_input(given)
        np.testing.assert_allclose(p.edges, edges)
        np.testing.assert_allclose(p.values, values)
        assert p.density(np.array([200.0, 1400.0])).tolist() == [0.0, 0.0]
    for bad, message in ((([1.0, 2.0], [0.0, 1.0]), "one more edge"), (([-1.0], [0.0, 1.0]), ">= 0"),
                         (f"{tmp_path / 'prior.root'}:nothing", "no histogram"), ("nofile.root", "FILE.root:HIST"),
                         (f"{tmp_path / 'missing.root'}:h", "not found"), (3, "not FILE.root:HIST")):
        with pytest.raises(InputFileError, match=message):
            Prior.from_input(bad)


def test_predict_with_a_prior_records_it_and_info_lists_the_variations(toy, ttbar_file, tmp_path):
    ds, model_dir = toy
    edges = np.linspace(200, 1400, 61)
    with uproot.recreate(tmp_path / "prior.root") as f:
        f["ptTop"] = (np.exp(-edges[:-1] / 150), edges)
    spec = f"{tmp_path / 'prior.root'}:ptTop"
    predict(model_dir, [ttbar_file], tmp_path / "flat", chunksize=150, progress=False)
    summary = predict(model_dir, [ttbar_file], tmp_path / "prior", chunksize=150, prior=spec, progress=False)
    assert f"prior: {spec}" in str(summary)
    friend = f"{ttbar_file.stem}_topcal.root"
    flat = uproot.open(tmp_path / "flat" / friend)["topcal"].arrays()
    with uproot.open(tmp_path / "prior" / friend) as f:
        prior = f["topcal"].arrays()
        posterior = json.loads(str(f["topcal_posterior"]))
    assert posterior["prior"]["source"] == spec and posterior["stat_variations"]["k"] >= 1
    shift = ak.to_numpy(ak.flatten(prior.FatJet_ptPred - flat.FatJet_ptPred))
    assert np.mean(shift) < -1.0  # a falling spectrum pulls the predictions down
    text = describe(tmp_path / "prior" / friend)
    k = posterior["stat_variations"]["k"]
    assert f"FatJet_ptPred_stat0..FatJet_ptPred_stat{k - 1}: {k} statistical" in text
    assert f"prior: {spec}" in text and "sigma_stoch: per jet" in text


def test_the_template_example_runs(toy, ttbar_file, tmp_path):
    _, model_dir = toy
    predict(model_dir, [ttbar_file], tmp_path / "friends", progress=False)
    example = runpy.run_path(str(EXAMPLE))
    templates = example["templates"](tmp_path / "friends" / f"{ttbar_file.stem}_topcal.root")
    nominal = templates["nominal"]
    k = sum(1 for name in templates if name.endswith("Up"))
    assert k >= 1 and len(templates) == 1 + 2 * k
    for i in range(k):
        up, down = templates[f"stat{i}Up"], templates[f"stat{i}Down"]
        assert up.sum(flow=True) == down.sum(flow=True) == nominal.sum(flow=True)  # the jets move, none lost
        assert np.any(up.values() != nominal.values())


def test_command_line(toy, ttbar_file, tmp_path):
    from click.testing import CliRunner

    from topcal.cli import main

    _, model_dir = toy
    done = CliRunner().invoke(main, ["variations", str(model_dir), "--samples", "6", "--seed", "1"])
    assert done.exit_code == 0, done.output
    assert "statistical variations for samples=6 seed=1" in done.output and (6, 1) in variations.stored(model_dir)
    bad = CliRunner().invoke(main, ["predict", str(model_dir), str(ttbar_file), "-o", str(tmp_path / "f"),
                                    "--prior", str(tmp_path / "none.root") + ":h"])
    assert bad.exit_code == 2 and bad.output.strip() == f"topcal: {tmp_path / 'none.root'}: prior file not found"
    missing = CliRunner().invoke(main, ["predict", str(model_dir), str(ttbar_file), "-o", str(tmp_path / "f"),
                                        "--samples", "7", "--stat-variations"])
    assert missing.exit_code == 2 and "no statistical variations for samples=7 seed=0" in missing.output
    assert not (tmp_path / "f").exists()
