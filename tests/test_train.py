"""The Bayesian network on toys with known answers: noise, training size, mixtures, label smearing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from toys import N_CONSTITUENTS, toy_dataset

from topcal.config import TrainConfig, paper_train_config
from topcal.errors import ConfigError, InputFileError
from topcal.train.data import load_rows, split_rows
from topcal.train.fit import train
from topcal.train.inputs import aligned_empty
from topcal.train.metrics import linear_response
from topcal.train.model import load_model

FAST = dict(phi_hidden=[32, 32], hidden=[32, 32], patience=6)


def _test_arrays(ds):
    _, test = split_rows(ds.n_jets, 0.2)
    arrays, extra = load_rows(ds, test, extra=("feature",))
    return arrays, extra["feature"]


def _linear_rmse(ds, arrays) -> float:
    trainable, _ = split_rows(ds.n_jets, 0.2)
    cols = ds.read(["pt", "pt_truth"])
    a, b, _ = linear_response(cols["pt"][trainable], cols["pt_truth"][trainable])
    return float(np.sqrt(np.mean((a + b * arrays.pt_jet - arrays.pt_truth) ** 2)))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """15k toy jets whose response depends on the jet mass, noise 20 + 40 a GeV; the default network
    (Gaussian head) trained on the 12k trainable ones."""
    base = tmp_path_factory.mktemp("toy")
    ds = toy_dataset(base / "ds", 15_000, seed=1)
    summary = train(ds.path, base / "model", TrainConfig(epochs=30, **FAST), progress=False)
    return ds, base / "model", summary


def test_default_network_recovers_a_mass_dependent_response(toy):
    """The truth is pT,j (1 + 0.3 a) with a seen only through the jet mass: the network reaches the noise
    floor, far below a linear correction of pT,j."""
    ds, model_dir, _ = toy
    x, a = _test_arrays(ds)
    pred = load_model(model_dir).predict(x.jets, samples=30, seed=1)
    rmse = np.sqrt(np.mean((pred["mean"] - x.pt_truth) ** 2))
    noise_floor = np.sqrt(np.mean((20.0 + 40.0 * a) ** 2))
    assert rmse < 1.1 * noise_floor
    assert rmse < 0.7 * _linear_rmse(ds, x)


def test_sigma_stoch_recovers_the_noise_and_intervals_cover(toy):
    ds, model_dir, _ = toy
    x, a = _test_arrays(ds)
    pred = load_model(model_dir).predict(x.jets, samples=30, seed=1)
    for lo in (0.0, 0.45, 0.9):
        sel = (a >= lo) & (a < lo + 0.1)
        true_noise = np.mean(20.0 + 40.0 * a[sel])
        assert pred["sigma_stoch"][sel].mean() == pytest.approx(true_noise, rel=0.15)
        assert abs(np.mean(pred["mean"][sel] - x.pt_truth[sel])) < 0.25 * true_noise
    # known heteroscedastic Gaussian noise: the intervals cover 68% and 95% of the test jets
    inside = (x.pt_truth >= pred["low"]) & (x.pt_truth <= pred["high"])
    assert inside.mean() == pytest.approx(0.68, abs=0.03)
    inside95 = (x.pt_truth >= pred["low95"]) & (x.pt_truth <= pred["high95"])
    assert inside95.mean() == pytest.approx(0.95, abs=0.02)
    assert np.std((x.pt_truth - pred["mean"]) / pred["sigma_tot"]) == pytest.approx(1.0, abs=0.08)
    assert np.mean(pred["sigma_pred"]) < 0.3 * np.mean(pred["sigma_stoch"])


def test_sigma_pred_shrinks_with_ten_times_more_data(toy, tmp_path):
    ds, model_dir, _ = toy
    x, _ = _test_arrays(ds)
    # ten times fewer jets need more epochs for a comparable number of optimiser steps
    train(ds.path, tmp_path / "small", TrainConfig(epochs=150, train_size=1200, **{**FAST, "patience": 15}),
          progress=False)
    big = load_model(model_dir).predict(x.jets, samples=30, seed=2)
    small = load_model(tmp_path / "small").predict(x.jets, samples=30, seed=2)
    assert np.mean(big["sigma_pred"]) < 0.8 * np.mean(small["sigma_pred"])


def test_round_trip_and_fixed_seed(toy):
    ds, model_dir, summary = toy
    x, _ = _test_arrays(ds)
    jets = x.jets.take(slice(0, 500))
    one = load_model(model_dir).predict(jets, samples=10, seed=7)
    two = load_model(model_dir).predict(jets, samples=10, seed=7)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])
    other = load_model(model_dir).predict(jets, samples=10, seed=8)
    assert not np.array_equal(one["mean"], other["mean"])  # the weights really are sampled
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["config"]["hidden"] == [32, 32] and meta["dataset"]["n_jets"] == 15_000
    assert meta["preprocessing"]["target"] == "response"
    assert summary.n_train + summary.n_val == 12_000


def test_two_trainings_with_one_seed_are_identical(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 2000, seed=9)
    cfg = TrainConfig(epochs=3, **FAST)
    train(ds.path, tmp_path / "a", cfg, progress=False)
    train(ds.path, tmp_path / "b", cfg, progress=False)
    x, _ = _test_arrays(ds)
    pa = load_model(tmp_path / "a").predict(x.jets, samples=5, seed=3)
    pb = load_model(tmp_path / "b").predict(x.jets, samples=5, seed=3)
    for key in pa:
        np.testing.assert_array_equal(pa[key], pb[key])
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    assert ha == json.loads((tmp_path / "b" / "history.json").read_text())
    train(ds.path, tmp_path / "c", TrainConfig(epochs=3, **{**FAST, "seed": 2}), progress=False)
    assert json.loads((tmp_path / "c" / "history.json").read_text()) != ha


def test_paper_network_trains_on_lab_frame_four_vectors(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 3000, seed=10)
    cfg = paper_train_config(epochs=3, hidden=[16, 16], learning_rate=3e-3, prior_sigma=1.0)
    train(ds.path, tmp_path / "m", cfg, progress=False)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["preprocessing"]["input_shapes"] == {"flat": [4 * N_CONSTITUENTS]}
    assert meta["preprocessing"]["target"] == "pt" and meta["preprocessing"]["standardiser"] is None
    x, _ = _test_arrays(ds)
    pred = load_model(tmp_path / "m").predict(x.jets, samples=5, seed=1)
    assert np.all(np.isfinite(pred["mean"])) and np.all(pred["sigma_tot"] > 0)


def test_two_gaussians_fit_a_bimodal_label(tmp_path):
    """Label 600 or 750 GeV (0.7 / 0.3, width 25): mode and 68% band match the true distribution."""
    ds = toy_dataset(tmp_path / "ds", 15_000, seed=3, bimodal=True, pt_range=(600.0, 620.0))
    train(ds.path, tmp_path / "m", TrainConfig(epochs=20, likelihood="gmm2", **FAST), progress=False)
    x, _ = _test_arrays(ds)
    pred = load_model(tmp_path / "m").predict(x.jets.take(slice(0, 400)), samples=20, seed=1)
    grid = np.linspace(400, 950, 5501)
    dens = 0.7 * np.exp(-0.5 * ((grid - 600) / 25) ** 2) + 0.3 * np.exp(-0.5 * ((grid - 750) / 25) ** 2)
    cdf = np.cumsum(dens) / dens.sum()
    end = np.searchsorted(cdf, cdf + 0.68)  # the shortest interval holding 68%
    ok = end < len(grid)
    start = np.argmin(np.where(ok, grid[np.minimum(end, len(grid) - 1)] - grid, np.inf))
    inside = grid[[start, end[start]]]
    assert np.median(pred["mode"]) == pytest.approx(600, abs=10)
    assert np.median(pred["low"]) == pytest.approx(inside.min(), abs=15)
    assert np.median(pred["high"]) == pytest.approx(inside.max(), abs=15)
    assert np.median(pred["mean"]) == pytest.approx(645, abs=10)


def test_label_smearing_adds_its_width_in_quadrature(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 15_000, seed=4, noise_gev=lambda a: np.full_like(a, 30.0))
    train(ds.path, tmp_path / "m", TrainConfig(epochs=30, smear=0.05, **FAST), progress=False)
    x, a = _test_arrays(ds)
    pred = load_model(tmp_path / "m").predict(x.jets, samples=30, seed=1)
    for lo in (0.0, 0.9):
        sel = (a >= lo) & (a < lo + 0.1)
        expected = np.sqrt(30.0**2 + (0.05 * x.pt_jet[sel] * (1 + 0.3 * a[sel])) ** 2).mean()
        assert pred["sigma_stoch"][sel].mean() == pytest.approx(expected, rel=0.10)


def test_ensemble_members_give_the_spread(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 6000, seed=5)
    summary = train(ds.path, tmp_path / "ens", TrainConfig(epochs=4, ensemble=3, train_size=1500, **FAST),
                    progress=False)
    assert len(summary.members) == 3
    meta = json.loads((tmp_path / "ens" / "model.json").read_text())
    assert meta["kind"] == "ensemble" and meta["training"]["disjoint_subsamples"]
    x, _ = _test_arrays(ds)
    pred = load_model(tmp_path / "ens").predict(x.jets.take(slice(0, 200)))
    assert np.all(pred["sigma_pred"] > 0) and np.all(np.isfinite(pred["sigma_tot"]))


def test_bad_inputs(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 300, seed=6)
    with pytest.raises(InputFileError, match="not a complete topcal model"):
        (tmp_path / "half").mkdir()
        load_model(tmp_path / "half")
    with pytest.raises(ConfigError, match="train_size: 5000 jets requested"):
        train(ds.path, tmp_path / "m", TrainConfig(train_size=5000), progress=False)
    bad = toy_dataset(tmp_path / "nan", 300, seed=6)
    table = bad.read()
    table["pt_truth"][17] = np.nan
    from topcal.config import ProcessConfig
    from topcal.io.dataset import write_dataset

    nan_ds = write_dataset(tmp_path / "nan2", table, ProcessConfig(max_constituents=N_CONSTITUENTS, flatten=False))
    with pytest.raises(InputFileError, match="'pt_truth' has non-finite values in 1 jets"):
        train(nan_ds.path, tmp_path / "m", TrainConfig(epochs=1), progress=False)
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()  # nothing half-written
    with pytest.raises(InputFileError, match="dataset directory not found"):
        train(tmp_path / "nothing", tmp_path / "m", progress=False)


def test_resume_after_interruption(tmp_path, monkeypatch):
    """An interrupted training keeps its checkpoint in MODEL.partial; --resume finishes it."""
    import topcal.train.fit as fit

    ds = toy_dataset(tmp_path / "ds", 3000, seed=7)
    cfg = TrainConfig(epochs=4, patience=10, **{k: v for k, v in FAST.items() if k != "patience"})
    real_after_epoch = fit._MemberRun.after_epoch
    epochs_seen = []

    def crash_in_epoch_three(run, loss, nll, val_nll):
        epochs_seen.append(run.state["epoch"] + 1)
        if epochs_seen[-1] == 3:
            raise KeyboardInterrupt
        real_after_epoch(run, loss, nll, val_nll)

    monkeypatch.setattr(fit._MemberRun, "after_epoch", crash_in_epoch_three)
    monkeypatch.setattr(fit, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every epoch
    with pytest.raises(KeyboardInterrupt):
        train(ds.path, tmp_path / "m", cfg, progress=False)
    assert not (tmp_path / "m").exists() and (tmp_path / "m.partial").exists()
    epochs_seen.clear()
    monkeypatch.setattr(fit._MemberRun, "after_epoch", lambda run, *a: (epochs_seen.append(run.state["epoch"] + 1),
                                                                        real_after_epoch(run, *a)))
    train(ds.path, tmp_path / "m", cfg, resume=True, progress=False)
    history = json.loads((tmp_path / "m" / "history.json").read_text())[0]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert epochs_seen == [3, 4]  # epochs 1 and 2 came from the checkpoint
    assert not (tmp_path / "m.partial").exists()


def test_nan_loss_stops_training_with_a_message(tmp_path):
    import topcal.train.fit as fit

    run = fit._MemberRun(0, None, None, tmp_path / "ckpt", tmp_path / "w.h5", TrainConfig())
    run.state["epoch"] = 4
    with pytest.raises(fit.TrainingDiverged, match="loss became nan .* in epoch 5"):
        run.after_epoch(float("nan"), float("nan"), 1.0)
    assert run.state["epoch"] == 4 and run.state["history"] == []


@pytest.mark.parametrize("network", ["default", "paper", "point"])
def test_batched_weight_samples_follow_the_flipout_posterior(toy, tmp_path, network):
    """The batched sampler (one full weight draw per sample, all samples in one call) gives per-jet means and
    spreads of the raw outputs that agree with T separate Flipout passes of the Keras network. The sampler
    shares its draws between the jets of a call (their errors are correlated), so each jet gets its own
    call here: the pulls of different jets are then independent."""
    import tensorflow as tf

    from topcal.train.network import sample_outputs

    ds, model_dir, _ = toy
    if network == "paper":
        model_dir = tmp_path / "paper"
        train(ds.path, model_dir, paper_train_config(epochs=2, train_size=3000), progress=False)
    if network == "point":
        model_dir = tmp_path / "point"
        train(ds.path, model_dir, TrainConfig(epochs=2, train_size=3000, phi_posterior="point", **FAST),
              progress=False)
    model = load_model(model_dir)
    n, t = 30, 300
    arrays = model.encode(_test_arrays(ds)[0].jets.take(slice(0, n)))
    one_jet = [{k: v[j:j + 1] for k, v in arrays.items()} for j in range(n)]
    batched = np.concatenate([sample_outputs(model.networks[0], model.config, x, t, np.random.default_rng([5, j]))
                              for j, x in enumerate(one_jet)], axis=1)
    tf.keras.utils.set_random_seed(5)
    passes = np.stack([model.networks[0](arrays, training=False).numpy() for _ in range(t)])
    assert batched.shape == passes.shape
    mean_b, mean_f = batched.mean(axis=0), passes.mean(axis=0)
    std_b, std_f = batched.std(axis=0), passes.std(axis=0)
    pull = (mean_b - mean_f) / np.sqrt((std_b**2 + std_f**2) / t + 1e-12)
    assert abs(pull.mean()) < 3.3 / np.sqrt(n) and 0.7 < pull.std() < 1.3  # a jet's outputs are correlated
    assert 0.9 < np.median(std_b / std_f) < 1.1


@pytest.mark.parametrize("network", ["default", "paper", "point"])
def test_the_batched_sampler_is_traced_once_and_chunks_change_nothing(toy, tmp_path, network):
    """One compiled pass per model serves every number of jets and of samples (a retrace cost a second per
    call), and evaluating the jets in small chunks gives the same numbers as in one."""
    from topcal.train.network import _SAMPLERS, sample_outputs

    ds, model_dir, _ = toy
    if network == "paper":
        model_dir = tmp_path / "paper"
        train(ds.path, model_dir, paper_train_config(epochs=1, train_size=2000), progress=False)
    if network == "point":
        model_dir = tmp_path / "point"
        train(ds.path, model_dir, TrainConfig(epochs=1, train_size=2000, phi_posterior="point", **FAST),
              progress=False)
    model = load_model(model_dir)
    net, cfg = model.networks[0], model.config
    arrays = model.encode(_test_arrays(ds)[0].jets.take(slice(0, 90)))
    whole = sample_outputs(net, cfg, arrays, 7, np.random.default_rng(3))
    for n, t in ((90, 7), (13, 3), (1, 20)):
        sample_outputs(net, cfg, {k: v[:n] for k, v in arrays.items()}, t, np.random.default_rng(4))
    assert _SAMPLERS[net].experimental_get_tracing_count() == 1
    chunked = sample_outputs(net, cfg, arrays, 7, np.random.default_rng(3), chunk_jets=4)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)


def test_ensemble_members_on_a_process_pool_give_the_same_model(tmp_path):
    ds = toy_dataset(tmp_path / "ds", 1500, seed=8)
    cfg = TrainConfig(epochs=2, ensemble=2, **FAST)
    train(ds.path, tmp_path / "here", cfg, progress=False)
    train(ds.path, tmp_path / "pool", cfg, progress=False, executor="futures", workers=2)
    jets = _test_arrays(ds)[0].jets
    a = load_model(tmp_path / "here").predict(jets, samples=2)
    b = load_model(tmp_path / "pool").predict(jets, samples=2)
    np.testing.assert_array_equal(a["mean"], b["mean"])
    np.testing.assert_array_equal(a["sigma_tot"], b["sigma_tot"])
    assert not (tmp_path / "pool" / "inputs").exists()  # the members' input files are removed


def test_ensemble_members_trained_as_separate_calls_assemble_to_the_same_model(tmp_path):
    """``train(members=[m])`` trains one member into the checkpoint directory and writes no model; a last
    call with ``resume`` assembles them: the same model as one call, whatever order the members ran in."""
    from topcal.train.fit import member_done_path

    ds = toy_dataset(tmp_path / "ds", 1500, seed=8)
    cfg = TrainConfig(epochs=2, ensemble=2, **FAST)
    train(ds.path, tmp_path / "whole", cfg, progress=False)
    out = tmp_path / "parts"
    for m in (1, 0):
        assert train(ds.path, out, cfg, progress=False, members=[m]) is None
        assert member_done_path(out, m).is_file() and not (out / "model.json").exists()
    summary = train(ds.path, out, cfg, progress=False, resume=True)
    assert [m["epochs"] for m in summary.members] == [2, 2]
    assert not (tmp_path / "parts.partial").exists()
    jets = _test_arrays(ds)[0].jets
    a = load_model(tmp_path / "whole").predict(jets, samples=2)
    b = load_model(out).predict(jets, samples=2)
    np.testing.assert_array_equal(a["mean"], b["mean"])
    np.testing.assert_array_equal(a["sigma_tot"], b["sigma_tot"])
    with pytest.raises(ConfigError, match="members: \\[2\\]"):
        train(ds.path, tmp_path / "bad", cfg, progress=False, members=[2])


def test_training_frees_its_inputs_and_times_its_epochs(tmp_path):
    """Once trained, nothing holds the training inputs (neither the tensors on their memory nor, as before,
    TensorFlow's registry of numpy functions, which kept the whole sample alive): they are freed when the caller
    drops them, with no garbage collection
    (``train`` runs none); the summary has each epoch's wall time, the model files do not."""
    import weakref

    from topcal.train.fit import _fit_member

    ds = toy_dataset(tmp_path / "ds", 600, seed=9)
    cfg = TrainConfig(epochs=2, **FAST)
    summary = train(ds.path, tmp_path / "m", cfg, progress=False)
    assert len(summary.epoch_seconds[0]) == 2 and all(s > 0 for s in summary.epoch_seconds[0])
    assert "seconds" not in (tmp_path / "m" / "model.json").read_text()
    arrays, _ = load_rows(ds, np.arange(400))
    x_all = {"constituents": aligned_empty((400, arrays.x.shape[1], 3)),
             "mask": np.ones(arrays.x.shape[:2], np.float32),
             "jet": np.zeros((400, 8), np.float32)}  # the first shared with TensorFlow, the others copied
    x_all["constituents"][...] = arrays.x[:, :, :3]
    probe = weakref.ref(x_all["constituents"])
    y = np.zeros(400, np.float32)
    (tmp_path / "w").mkdir()
    _fit_member(TrainConfig(epochs=1, **FAST), 0, np.arange(300), np.arange(300, 400), x_all, y, tmp_path / "w",
                False)
    del x_all, y
    assert probe() is None


def test_the_epoch_loops_run_one_step_at_a_time():
    """A step draws Flipout's random numbers from stateful ops: with TensorFlow's default of 10 overlapping
    loop iterations, a later step's draw could come first, and one seed gave different trainings at 20k jets.
    The epoch's loop (training and validation steps) runs one iteration at a time; validation steps take no
    gradient step and leave the weights alone."""
    from topcal.train.loop import EpochLoop
    from topcal.train.network import build_network

    x = {"flat": np.random.default_rng(3).standard_normal((50, 8)).astype(np.float32)}
    model = build_network(paper_train_config(hidden=[4]), {"flat": (8,)}, 50)
    loop = EpochLoop(model, x, np.zeros(50, np.float32), 10)
    graph = loop._epoch.get_concrete_function().graph
    loops = [op for op in graph.get_operations() if op.type in ("While", "StatelessWhile")]
    assert loops and all(op.get_attr("parallel_iterations") == 1 for op in loops)

    iterations = int(model.optimizer.iterations)
    weights = [w.copy() for w in model.get_weights()]
    val_nll = loop.validation_nll(np.arange(40, 50))  # no gradient step
    assert np.isfinite(val_nll) and int(model.optimizer.iterations) == iterations
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    loss, nll, val_nll = loop.epoch(np.arange(40), np.arange(40, 50))  # 4 steps of 10 jets, then validation
    assert int(model.optimizer.iterations) == iterations + 4 and np.isfinite([loss, nll, val_nll]).all()
    assert not all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    loop.close()


def test_the_loop_gathers_its_batches_from_the_training_arrays_themselves(tmp_path):
    """The arrays that training reads and encodes start on 64-byte boundaries, so the loop's tensors share
    their memory (a write to the array shows in the tensor); a misaligned or strided array is copied, and
    the copy holds the same numbers."""
    from topcal.train.inputs import ALIGNMENT, raw_inputs
    from topcal.train.loop import shared_tensor

    ds = toy_dataset(tmp_path / "ds", 300, seed=4)
    jets = load_rows(ds, np.arange(300))[0].jets
    arrays = {**raw_inputs(jets, "jet-frame", 6), **raw_inputs(jets, "lab-4vectors"),
              "flat_6": raw_inputs(jets, "lab-4vectors", 6)["flat"]}
    for name, array in arrays.items():
        assert array.ctypes.data % ALIGNMENT == 0 and array.flags.c_contiguous, name
        tensor = shared_tensor(array)
        np.testing.assert_array_equal(tensor.numpy(), array)
        array.flat[7] += 1.0
        assert tensor.numpy().flat[7] == array.flat[7], f"{name}: copied"
    base = np.arange(4 * 33, dtype=np.float32)
    for other in (base[1:129].reshape(32, 4), base.reshape(33, 4)[:, :3]):  # misaligned, strided
        tensor = shared_tensor(other)
        np.testing.assert_array_equal(tensor.numpy(), other)
        other[0, 0] = -5.0
        assert tensor.numpy()[0, 0] != -5.0


def test_members_on_a_pool_map_the_training_arrays_from_the_checkpoint_directory(tmp_path):
    """A pool's members read the training arrays from files (InputFiles), memory-mapped: the same numbers,
    aligned so that the loop's tensor shares the mapping (no copy per worker), writes stay in the process
    (copy-on-write) and never reach the file; a worker that cannot see the files gets an error naming them."""
    from topcal.train.fit import InputFiles
    from topcal.train.inputs import ALIGNMENT, raw_inputs
    from topcal.train.loop import shared_tensor

    ds = toy_dataset(tmp_path / "ds", 300, seed=4)
    x_all = raw_inputs(load_rows(ds, np.arange(300))[0].jets, "jet-frame", 6)
    y_all = np.linspace(-1.0, 1.0, 300).astype(np.float32)
    files = InputFiles.write(tmp_path / "work" / "inputs", x_all, y_all)
    x, y = files.load()
    assert sorted(x) == sorted(x_all)
    np.testing.assert_array_equal(y, y_all)
    for name, array in x.items():
        np.testing.assert_array_equal(array, x_all[name])
        assert array.ctypes.data % ALIGNMENT == 0, name
        tensor = shared_tensor(array)
        array.flat[3] += 1.0
        assert tensor.numpy().flat[3] == array.flat[3], f"{name}: copied"
        assert files.load()[0][name].flat[3] == x_all[name].flat[3], f"{name}: the write reached the file"
    (files.directory / "y.npy").unlink()
    with pytest.raises(InputFileError, match="y.npy: training inputs not found"):
        files.load()


@pytest.mark.parametrize("bayesian", [True, False])
def test_the_deep_set_never_computes_the_padded_slots(bayesian):
    """The per-constituent map runs on the real constituents only (the rows where the mask is set), in
    training as at prediction: padded slots holding NaN give the network, Bayesian (same seed, so the same
    Flipout draws) or an ensemble member, bit for bit the outputs and losses it gives with zeros there."""
    import tensorflow as tf

    from topcal.train.network import build_network

    rng = np.random.default_rng(4)
    n, slots = 16, 20
    mask = (np.arange(slots)[None] < rng.integers(1, slots, n)[:, None]).astype(np.float32)
    x = {"constituents": (rng.normal(size=(n, slots, 8)) * mask[..., None]).astype(np.float32), "mask": mask,
         "jet": rng.normal(size=(n, 24)).astype(np.float32)}
    poisoned = {**x, "constituents": np.where(mask[..., None] > 0, x["constituents"], np.nan).astype(np.float32)}
    cfg = TrainConfig(phi_hidden=[8, 8], hidden=[8])
    tf.keras.utils.set_random_seed(3)
    model = build_network(cfg, {k: v.shape[1:] for k, v in x.items()}, 100, bayesian=bayesian)
    results = []
    for inputs in (x, poisoned):
        tf.keras.utils.set_random_seed(7)
        out = model(inputs, training=True).numpy()
        results.append((out, [float(loss) for loss in model.losses]))
    (clean, clean_losses), (dirty, dirty_losses) = results
    assert np.isfinite(clean).all() and np.array_equal(clean, dirty) and clean_losses == dirty_losses


def test_the_network_reads_what_each_constituent_is(tmp_path):
    """Toy jets whose response is set by the neutral hadrons' pT fraction (the kinematics do not show it):
    trained on the dataset with the constituents' origins, the network predicts the test jets far better
    than trained on the same jets from a dataset without them (an older one), which it still trains on;
    the typed model refuses the jets without types with one line naming the missing column."""
    from toys import toy_table

    from topcal.config import ProcessConfig
    from topcal.io.dataset import open_dataset, write_dataset

    table = toy_table(3000, seed=5, types=True)
    cfg = ProcessConfig(max_constituents=N_CONSTITUENTS, flatten=False)
    typed = write_dataset(tmp_path / "typed", table, cfg, part_jets=1000)
    plain = write_dataset(tmp_path / "plain", {k: v for k, v in table.items() if not k.startswith("constituent_")},
                          cfg, part_jets=1000)
    rmse = {}
    for name, ds in (("typed", typed), ("plain", plain)):
        train(ds.path, tmp_path / f"model_{name}", TrainConfig(epochs=25, **FAST), progress=False)
        model = load_model(tmp_path / f"model_{name}")
        arrays = _test_arrays(open_dataset(ds.path))[0]
        assert model.standardiser.typed == (name == "typed") == arrays.jets.typed
        rmse[name] = np.sqrt(np.mean((model.predict(arrays.jets, samples=10)["mean"] - arrays.pt_truth) ** 2))
    # noise 20..60 GeV, the neutral fraction's part about 60 GeV
    assert rmse["typed"] < 0.8 * rmse["plain"], rmse
    with pytest.raises(InputFileError, match="^constituent_origin: "):
        load_model(tmp_path / "model_typed").predict(_test_arrays(open_dataset(plain.path))[0].jets, samples=2)


def test_few_validation_jets_are_topped_up_with_training_jets(tmp_path, monkeypatch):
    """The width factor is fitted on at least CALIBRATION_MIN_JETS jets when the data allow: 160 validation
    jets are joined by all 640 training jets of network 0 (below 2000); with a minimum of 100 they calibrate
    alone. The factor of pT,j has one point per 400 calibration jets (at most ``recalibrate_bins``): 2 points
    for 800 jets, none (the global factor alone) for 160."""
    from topcal.train import fit

    ds = toy_dataset(tmp_path / "ds", 1000, seed=3)
    summary = train(ds.path, tmp_path / "model", TrainConfig(epochs=2, **FAST), progress=False)
    assert (summary.calibration["validation_jets"], summary.calibration["training_jets"]) == (160, 640)
    calibration = json.loads((tmp_path / "model" / "model.json").read_text())["calibration"]
    assert calibration["training_jets"] == 640
    assert len(calibration["width_factor_pt"]["factor"]) == 2 and calibration["width_factor"] > 0
    monkeypatch.setattr(fit, "CALIBRATION_MIN_JETS", 100)
    summary = train(ds.path, tmp_path / "model", TrainConfig(epochs=2, **FAST), overwrite=True, progress=False)
    assert (summary.calibration["validation_jets"], summary.calibration["training_jets"]) == (160, 0)
    assert "width_factor_pt" not in summary.calibration


def test_calibration_jets_apart_are_never_training_validation_or_test_jets(tmp_path, monkeypatch):
    """With more trainable jets than ``train_size``, the width factor is fitted on trainable jets outside the
    training subsample (none of them trained on, stopped early on, or a test jet), and ``calibration_rows``
    gives the same jets; with too few of them, or ``calibration_jets = "validation"``, the validation jets
    topped up with training jets, as before."""
    from topcal.io.dataset import open_dataset
    from topcal.train import fit

    monkeypatch.setattr(fit, "CALIBRATION_MIN_JETS", 300)
    monkeypatch.setattr(fit, "CALIBRATION_APART_JETS", 500)
    ds = toy_dataset(tmp_path / "ds", 1000, seed=3)  # 800 trainable jets, 200 test jets
    cfg = TrainConfig(epochs=2, train_size=300, **FAST)
    summary = train(ds.path, tmp_path / "model", cfg, progress=False)
    assert summary.calibration["apart_jets"] == 500
    assert (summary.calibration["validation_jets"], summary.calibration["training_jets"]) == (0, 0)
    rows = fit.calibration_rows(ds.path, cfg)
    dataset = open_dataset(ds.path)
    plan = fit._plan_subsamples(dataset, ds.path, cfg)
    trainable, test = split_rows(dataset.n_jets, cfg.test_fraction)
    assert len(np.unique(rows)) == 500 and np.isin(rows, trainable).all()
    assert not np.isin(rows, plan.subsamples[0]).any() and not np.isin(rows, test).any()
    # a different seed draws other training jets, and other calibration jets outside them
    other = TrainConfig(epochs=2, train_size=300, seed=2, **FAST)
    other_rows = fit.calibration_rows(ds.path, other)
    assert not np.isin(other_rows, fit._plan_subsamples(dataset, ds.path, other).subsamples[0]).any()
    assert set(other_rows) != set(rows)

    for cfg, n_apart in ((TrainConfig(epochs=2, train_size=600, **FAST), 0),  # 200 spare < 300
                         (TrainConfig(epochs=2, train_size=300, calibration_jets="validation", **FAST), 0)):
        summary = train(ds.path, tmp_path / "model", cfg, overwrite=True, progress=False)
        n_val = summary.n_val
        assert summary.calibration["apart_jets"] == n_apart
        assert (summary.calibration["validation_jets"], summary.calibration["training_jets"]) == (n_val, 300 - n_val)
        own = fit._plan_subsamples(dataset, ds.path, cfg).subsamples[0]
        assert np.isin(fit.calibration_rows(ds.path, cfg), own).all()


def test_calibration_labels_read_again_are_the_training_labels():
    """The calibration jets' labels, computed again from their rows after training, are the smeared labels
    the training used for the same rows (the smearing is fixed per dataset row by the seed)."""
    from topcal.train.fit import _labels

    rng = np.random.default_rng(5)
    rows, pt = np.arange(50), rng.uniform(400, 1000, 50)
    cfg = TrainConfig(smear=0.1, seed=7)
    every = _labels(pt, rows, cfg, None)
    assert not np.allclose(every, pt)
    some = rows[[3, 17, 40]]
    np.testing.assert_array_equal(_labels(pt[some], some, cfg, None), every[some])


def test_the_label_window_bounds_the_intervals_when_it_holds_every_label(tmp_path):
    """A dataset whose labels all lie in its pT,t(truth) window (400..1000 GeV) gives a model whose intervals
    stay inside it; the toy whose labels pass 1000 GeV gives none (its intervals are not bounded)."""
    from toys import toy_table

    from topcal.config import ProcessConfig
    from topcal.io.dataset import open_dataset, write_dataset

    table = toy_table(1000, 4, noise_gev=lambda a: 10.0 + 0.0 * a, response_slope=0.0, pt_range=(850.0, 980.0))
    assert table["pt_truth"].max() < 1000.0
    cfg = ProcessConfig(max_constituents=N_CONSTITUENTS, flatten=False)
    inside = write_dataset(tmp_path / "in", table, cfg, part_jets=500)
    outside = toy_dataset(tmp_path / "out", 1000, seed=4)
    for name, ds, window in (("in", inside, (400.0, 1000.0)), ("out", outside, None)):
        train(ds.path, tmp_path / f"model_{name}", TrainConfig(epochs=2, **FAST), progress=False)
        assert load_model(tmp_path / f"model_{name}").label_window == window
    pred = load_model(tmp_path / "model_in").predict(_test_arrays(open_dataset(inside.path))[0].jets, samples=5)
    assert pred["high95"].max() <= 1000.0 and pred["low95"].min() >= 400.0
    assert json.loads((tmp_path / "model_in" / "model.json").read_text())["validity"]["mean_in_label_window"]
    assert 400.0 <= pred["mean"].min() and pred["mean"].max() <= 1000.0  # the moments of the truncated mixtures


def test_a_model_json_without_mean_in_label_window_keeps_the_untruncated_mean(tmp_path):
    """A model that records ``mean_in_label_window`` truncates its moments to the label window; the same
    model.json without the key (as written before) predicts the untruncated mixture mean, bands unchanged."""
    from scipy.special import ndtr

    from topcal.io.dataset import open_dataset
    from topcal.train.likelihood import MIN_MASS_INSIDE, draw_moments

    ds = toy_dataset(tmp_path / "ds", 600, seed=5)
    train(ds.path, tmp_path / "model", TrainConfig(epochs=2, **FAST), progress=False)
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    # the toy's labels pass its window, so it has none: give it a narrow one, as a model trained now records it
    meta["validity"].update(label_window_gev=[600.0, 800.0], mean_in_label_window=True)
    (tmp_path / "model" / "model.json").write_text(json.dumps(meta))
    jets = _test_arrays(open_dataset(ds.path))[0].jets
    new = load_model(tmp_path / "model")
    assert new.moments_window == (600.0, 800.0)
    del meta["validity"]["mean_in_label_window"]
    del meta["config"]["calibration_jets"]  # written before it existed: calibrated on validation jets
    (tmp_path / "model_old").mkdir()
    for f in (tmp_path / "model").iterdir():
        (tmp_path / "model_old" / f.name).write_bytes(f.read_bytes())
    (tmp_path / "model_old" / "model.json").write_text(json.dumps(meta))
    old = load_model(tmp_path / "model_old")
    assert old.moments_window is None
    assert (old.config.calibration_jets, new.config.calibration_jets) == ("validation", "apart")
    p_new, p_old = new.predict(jets, samples=5, seed=3), old.predict(jets, samples=5, seed=3)
    w, mu, sigma = old.sample(jets, 5, 3)
    np.testing.assert_allclose(p_old["mean"], np.sum(w * mu, axis=-1).mean(axis=0))
    np.testing.assert_allclose(p_new["mean"], draw_moments(w, mu, sigma, (600.0, 800.0))[0].mean(axis=0))
    held = (w * (ndtr((800.0 - mu) / sigma) - ndtr((600.0 - mu) / sigma))).sum(-1).mean(0) >= MIN_MASS_INSIDE
    assert held.sum() >= 10 and (~held).sum() >= 10  # both kinds: mostly inside (truncated), mostly outside
    assert p_new["mean"][held].min() >= 600.0 and p_new["mean"][held].max() <= 800.0
    np.testing.assert_allclose(p_new["mean"][~held], p_old["mean"][~held])
    assert p_old["mean"].min() < 600.0 or p_old["mean"].max() > 800.0
    np.testing.assert_array_equal(p_new["low"], p_old["low"])


def _toy_inputs(n: int = 16, slots: int = 20, seed: int = 4) -> dict[str, np.ndarray]:
    """Random deep-set inputs of ``n`` jets with 1..``slots`` real constituents of 8 features each."""
    rng = np.random.default_rng(seed)
    mask = (np.arange(slots)[None] < rng.integers(1, slots, n)[:, None]).astype(np.float32)
    return {"constituents": (rng.normal(size=(n, slots, 8)) * mask[..., None]).astype(np.float32), "mask": mask,
            "jet": rng.normal(size=(n, 24)).astype(np.float32)}


def test_a_point_estimate_phi_is_evaluated_once_per_jet():
    """With ``phi_posterior = "point"`` the per-constituent map is deterministic: the pooled embedding of a jet
    is the same in every stochastic pass while the head's outputs vary; the batched sampler computes the map
    (and its per-jet sum) once, outside its loop over the weight draws, which the default network's loop
    repeats in every draw."""
    import tensorflow as tf
    import tf_keras as keras

    from topcal.train.network import _SAMPLERS, bayesian_layers, build_network, point_phi_layers, sample_outputs

    x = _toy_inputs()
    loop_ops = {}
    for posterior in ("bayesian", "point"):
        cfg = TrainConfig(phi_hidden=[8, 8], hidden=[8], phi_posterior=posterior)
        model = build_network(cfg, {k: v.shape[1:] for k, v in x.items()}, 100)
        assert len(point_phi_layers(model)) == (2 if posterior == "point" else 0)
        assert len(bayesian_layers(model)) == (2 if posterior == "point" else 4)
        embed = keras.Model(model.inputs, [model.get_layer("sum_pool").output, model.output])
        (pool_a, out_a), (pool_b, out_b) = embed(x, training=False), embed(x, training=False)
        assert not np.array_equal(out_a.numpy(), out_b.numpy())  # the head is sampled in both
        assert np.array_equal(pool_a.numpy(), pool_b.numpy()) == (posterior == "point")
        sample_outputs(model, cfg, x, 3, np.random.default_rng(0))
        library = _SAMPLERS[model].get_concrete_function().graph.as_graph_def().library.function
        loop_ops[posterior] = {node.op for f in library for node in f.node_def}  # the while loop's body
    assert "UnsortedSegmentSum" in loop_ops["bayesian"] and "UnsortedSegmentSum" not in loop_ops["point"]
    assert "MatMul" in loop_ops["point"]  # the head is still evaluated per draw
    tf.keras.backend.clear_session()


def test_the_phi_posterior_round_trips_and_older_models_load(tmp_path):
    """``phi_posterior`` is recorded in model.json and the loaded network has a point-estimate map; a
    model.json written before the option (without the key) loads as the fully Bayesian network, gives the
    same numbers and is a reference for it, the point-estimate model is not; an unknown value is a one-line
    configuration error."""
    import shutil

    from topcal.info import describe
    from topcal.train.model_dir import check_reference
    from topcal.train.network import bayesian_layers, point_phi_layers

    ds, model_dir = toy_dataset(tmp_path / "ds", 1500, seed=6), tmp_path / "default"
    train(ds.path, model_dir, TrainConfig(epochs=1, **FAST), progress=False)
    train(ds.path, tmp_path / "point", TrainConfig(epochs=1, phi_posterior="point", **FAST), progress=False)
    meta = json.loads((tmp_path / "point" / "model.json").read_text())
    assert meta["config"]["phi_posterior"] == "point"
    model = load_model(tmp_path / "point")
    assert model.config.phi_posterior == "point" and len(point_phi_layers(model.networks[0])) == 2
    assert len(bayesian_layers(model.networks[0])) == 3  # the head only
    assert "(point estimate)" in describe(tmp_path / "point")

    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    meta = json.loads((old / "model.json").read_text())
    del meta["config"]["phi_posterior"]
    (old / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    jets = _test_arrays(ds)[0].jets.take(slice(0, 50))
    a, b = load_model(model_dir).predict(jets, samples=5, seed=2), load_model(old).predict(jets, samples=5, seed=2)
    assert load_model(old).config.phi_posterior == "bayesian"
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    check_reference(model_dir, old)  # the same network: a reference for sigma_cal
    with pytest.raises(InputFileError, match="not a reference for .*: phi_posterior 'point', the model's is 'bay"):
        check_reference(model_dir, tmp_path / "point")
    with pytest.raises(ConfigError, match="^phi_posterior: 'mean'"):
        TrainConfig(phi_posterior="mean").validate()


def test_sigma_pred_of_a_point_estimate_phi_shrinks_with_more_data(toy, tmp_path):
    """Only the head is Bayesian, and its posterior still narrows with the training size: sigma_pred on the
    test jets with ten times more training jets is well below that with 600."""
    ds, _, _ = toy
    x, _ = _test_arrays(ds)
    sigma = {}
    for n, epochs, patience in ((6000, 30, 6), (600, 150, 15)):
        cfg = TrainConfig(epochs=epochs, train_size=n, phi_posterior="point", **{**FAST, "patience": patience})
        train(ds.path, tmp_path / f"m{n}", cfg, progress=False)
        sigma[n] = np.mean(load_model(tmp_path / f"m{n}").predict(x.jets, samples=30, seed=2)["sigma_pred"])
    assert sigma[6000] < 0.8 * sigma[600], sigma
