"""Benchmark of ``topcal train`` and of inference against bare tf_keras on the same network and arrays.

The jets are the embedded sample's (processed here, without flattening), repeated to ``--jets``. In one run
it prints
  1. training jets/s: ``topcal.train.fit.train`` (reads the dataset, trains ``--epochs`` epochs with
     validation, checkpoints, saves) against a bare ``model.fit(x, y, batch_size=100, shuffle=True)`` of the
     same Bayesian network on the same in-memory arrays for the same number of epochs, without and with
     the same validation jets evaluated after each epoch (early stopping needs them); the whole call, and
     the epochs after the first alone (the first also builds the compiled functions; a long training is
     mostly later epochs); each training timed ``--repeats`` times, interleaved, the fastest counting (the
     machine's noise only adds time; every run's seconds go to the json), and a bare fit with Keras 2's
     Adam (``tf_keras.optimizers.legacy.Adam``, as topcal trains) shown beside the standard one, and a
     bare fit of the paper's network as plain Keras code builds it, on TFP's own ``DenseFlipout`` layers
     (the reference ``train_vs_bare_fit`` keeps topcal's own Flipout layer, the stricter comparison);
  2. inference jets x samples/s: ``TrainedModel.sample`` (T forward passes) and ``TrainedModel.predict``
     (plus the per-jet summaries: moments, mode and 68% interval) against T bare forward passes;
  3. with ``--memory-jets N``: the peak resident memory of ``topcal train`` on a dataset of N jets x 100
     constituents (one epoch), in a separate process, against the size of its input array.

Targets: ``topcal train`` >= 1.2 x the bare plain fit; peak memory of a 1M-jet training <= 1.5 x
its input array.

    python benchmarks/bench_train.py --jets 20000 --epochs 5 --json train.json
    python benchmarks/bench_train.py --jets 20000 --epochs 5 --memory-jets 1000000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import topcal.train.backend  # noqa: F401  (TensorFlow set up before use)
from topcal.config import ProcessConfig, TrainConfig, paper_train_config
from topcal.data import EMBEDDED_SAMPLE
from topcal.io.dataset import open_dataset, write_dataset
from topcal.process.run import process
from topcal.train.inputs import Jets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_json import write_json

SAMPLE = EMBEDDED_SAMPLE
COLUMNS = ("constituents", "pt", "eta", "phi", "mass", "n_constituents", "pt_truth")


def jets_table(base: Path, n: int) -> tuple[dict, object]:
    process([SAMPLE], base / "embedded", ProcessConfig(flatten=False), progress=False, figures=False)
    ds = open_dataset(base / "embedded")
    table = ds.read(list(COLUMNS))
    reps = -(-n // len(table["pt"]))
    return {k: np.concatenate([v] * reps)[:n] for k, v in table.items()}, ds.config


def paper_keras_network(cfg: TrainConfig, n_inputs: int, n_train: int):
    """The paper's network as plain Keras code builds it: ``tfp.layers.DenseFlipout`` layers as TFP ships
    them (its default mean-field posterior, a N(0, prior_sigma) prior, KL / N_train in the loss), the same
    widths, activation and likelihood as ``build_network``."""
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras as keras

    from topcal.train.likelihood import n_outputs

    tfd = tfp.distributions

    def prior(dtype, shape, name, trainable, add_variable_fn):
        return tfd.Independent(tfd.Normal(tf.zeros(shape, dtype), cfg.prior_sigma), len(shape))

    def kl(q, p, _):
        return cfg.kl_weight * tfd.kl_divergence(q, p) / float(n_train)

    z = flat = keras.Input((n_inputs,), name="flat")
    for width in cfg.hidden:
        z = tfp.layers.DenseFlipout(width, activation=cfg.activation, kernel_prior_fn=prior, kernel_divergence_fn=kl)(z)
    out = tfp.layers.DenseFlipout(n_outputs(cfg.components), kernel_prior_fn=prior, kernel_divergence_fn=kl)(z)
    return keras.Model(inputs={"flat": flat}, outputs=out)


def bare_fit_seconds(x: np.ndarray, y: np.ndarray, cfg: TrainConfig, validation=None,
                     keras2_adam: bool = False, tfp_layers: bool = False) -> tuple[float, list]:
    """A plain ``model.fit`` of the paper's network on the flattened constituents, one step per call (the
    way the paper's own Keras code trains), with Keras's standard Adam (what ``optimizer="adam"`` gives;
    ``keras2_adam``: Keras 2's, ``tf_keras.optimizers.legacy.Adam``, as topcal trains): the seconds of the
    whole fit and of each epoch. The network is ``build_network``'s, on topcal's Flipout layer, or with
    ``tfp_layers`` :func:`paper_keras_network`, on TFP's own ``DenseFlipout``."""
    import tf_keras as keras

    from topcal.train.likelihood import nll_loss
    from topcal.train.network import build_network

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # after the epoch's validation, as in topcal's epoch times
            seconds.append(time.perf_counter() - self.started)

    seconds: list[float] = []
    if tfp_layers:
        model = paper_keras_network(cfg, x.shape[1], len(x))
    else:
        model = build_network(cfg, {"flat": (x.shape[1],)}, len(x))
    loss = nll_loss(cfg.components, cfg.sigma_floor)
    adam = keras.optimizers.legacy.Adam if keras2_adam else keras.optimizers.Adam
    model.compile(optimizer=adam(cfg.learning_rate, global_clipnorm=cfg.clip_norm), loss=loss,
                  metrics=[loss])  # the loss and the NLL metric of build_network
    if validation is not None:
        validation = ({"flat": validation[0]}, validation[1])
    t0 = time.perf_counter()
    model.fit({"flat": x}, y, batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True, verbose=0,
              validation_data=validation, callbacks=[EpochTimes()])
    return time.perf_counter() - t0, seconds


def later_epochs(seconds: list[float]) -> float:
    """Seconds of the epochs after the first (the first also traces the compiled functions)."""
    if len(seconds) < 2:
        raise SystemExit("--epochs must be >= 2 to time the epochs after the first")
    return float(sum(seconds[1:]))


def peak_train_memory_mb(base: Path, table: dict, pconfig, n: int) -> tuple[float, float]:
    """Peak resident and peak anonymous memory (MiB) of ``topcal train`` (the paper's network, one epoch) on a
    dataset of ``n`` jets, in a separate process."""
    reps = -(-n // len(table["pt"]))
    big = {k: np.concatenate([v] * reps)[:n] for k, v in table.items()}
    write_dataset(base / "big", big, pconfig, part_jets=100_000)
    del big
    # The peak is the child's own high-water mark (VmHWM): getrusage's ru_maxrss carries over through exec
    # the peak of the process it was started from (here, this one, which made the big dataset).
    done = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(base / "big"), str(base / "big_model")], check=True,
                          capture_output=True, text=True)
    peak_kb, anon_kb = done.stdout.split()[-2:]
    return int(peak_kb) / 1024, int(anon_kb) / 1024  # kB -> MiB


# The child: a one-epoch training of the paper's network; it prints its peak resident memory (VmHWM) and the
# peak of its anonymous memory (RssAnon, sampled every 10 ms: the resident memory without the pages of the
# shared libraries, TensorFlow's 430 MB of them among them, which every process on a node shares)
MEMORY_CHILD = """
import sys, threading, time
def status(key):
    return int([line.split()[1] for line in open('/proc/self/status') if line.startswith(key)][0])
anon = [0]
def watch():
    while True:
        anon[0] = max(anon[0], status('RssAnon'))
        time.sleep(0.01)
threading.Thread(target=watch, daemon=True).start()
from topcal.config import paper_train_config
from topcal.train.fit import train
train(sys.argv[1], sys.argv[2], paper_train_config(epochs=1, test_fraction=0.01), progress=False)
print(status('VmHWM'), max(anon[0], status('RssAnon')))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jets", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--memory-jets", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="times each training is timed (the fastest counts)")
    ap.add_argument("--json", type=Path, default=None, help="write the table's figures and ratios here")
    args = ap.parse_args()

    # imported before timing: once-per-process costs (about 5 s and 1 s) that the bare fit, timed after
    # topcal's run, would otherwise not pay
    import tensorflow  # noqa: F401
    import tensorflow_probability  # noqa: F401

    from topcal.train.fit import train
    from topcal.train.model import load_model

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        table, pconfig = jets_table(base, args.jets)
        write_dataset(base / "ds", table, pconfig)
        # patience above the epoch count: both loops run exactly --epochs epochs
        cfg = paper_train_config(epochs=args.epochs, patience=args.epochs + 1, test_fraction=0.01)
        n_fit = None  # known after the first training
        runs: dict[str, list[tuple[float, float]]] = {"topcal": [], "bare": [], "bare_val": [], "bare_k2": [],
                                                      "bare_tfp": []}
        for r in range(args.repeats):  # interleaved, so that a slow spell of the machine hits every row
            t0 = time.perf_counter()
            summary = train(base / "ds", base / f"model{r}", cfg, progress=False)
            runs["topcal"].append((time.perf_counter() - t0, later_epochs(summary.epoch_seconds[0])))
            if n_fit is None:
                n_fit = summary.n_train  # jets per epoch (the validation jets are evaluated, not trained on)
                n_all = n_fit + summary.n_val
                x = table["constituents"][:n_all].reshape(n_all, -1)
                y = ((table["pt_truth"][:n_all] - table["pt_truth"].mean())
                     / table["pt_truth"].std()).astype(np.float32)
            for key, kwargs in (("bare", {}), ("bare_val", {"validation": (x[n_fit:], y[n_fit:])}),
                                ("bare_k2", {"keras2_adam": True}), ("bare_tfp", {"tfp_layers": True})):
                total, epochs = bare_fit_seconds(x[:n_fit], y[:n_fit], cfg, **kwargs)
                runs[key].append((total, later_epochs(epochs)))
        # the fastest of the repeats: the machine's noise only ever adds time
        ((t_topcal, t_topcal_later), (t_bare, t_bare_later), (t_bare_val, t_bare_val_later), (t_bare_k2, _),
         (t_tfp, t_tfp_later)) = (min(runs[key]) for key in ("topcal", "bare", "bare_val", "bare_k2", "bare_tfp"))

        model = load_model(base / "model0")
        n_inf = min(len(table["pt"]), 20_000)
        xi = Jets(table["constituents"][:n_inf], *(table[k][:n_inf] for k in ("pt", "eta", "phi", "mass",
                                                                                "n_constituents")))
        flat = {"flat": xi.constituents.reshape(n_inf, -1)}
        net = model.networks[0]
        net({"flat": flat["flat"][:10]})
        t0 = time.perf_counter()
        for _ in range(args.samples):
            net(flat, training=False).numpy()
        t_forward = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.sample(xi, args.samples, seed=1)
        t_sample = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.predict(xi, args.samples, seed=1)
        t_predict = time.perf_counter() - t0
        memory, anon = (peak_train_memory_mb(base, table, pconfig, args.memory_jets) if args.memory_jets
                        else (None, None))
        input_mb = args.memory_jets * table["constituents"][0].nbytes / 2**20

    work = n_fit * args.epochs
    js = len(xi) * args.samples
    print(f"{n_fit} training jets x {args.epochs} epochs, batch 100, the fastest of {args.repeats} interleaved "
          f"runs of each training; inference on {len(xi)} jets x {args.samples} samples; CPU\n")
    print("| step | rate | ratio |\n|---|---:|---|")
    print(f"| bare tf_keras fit (same network, in-memory arrays) | {work / t_bare:.0f} jets/s | 1.00 |")
    print(f"| bare tf_keras fit + the same validation split each epoch | {work / t_bare_val:.0f} jets/s | "
          f"{t_bare / t_bare_val:.2f} |")
    print(f"| bare tf_keras fit with Keras 2's Adam (topcal's optimiser) | {work / t_bare_k2:.0f} jets/s | "
          f"{t_bare / t_bare_k2:.2f} |")
    print(f"| bare tf_keras fit of the paper's Keras network (TFP's own DenseFlipout) | {work / t_tfp:.0f} jets/s | "
          f"{t_bare / t_tfp:.2f} |")
    print(f"| topcal train (dataset read, validation, checkpoints, save) | {work / t_topcal:.0f} jets/s | "
          f"{t_bare / t_topcal:.2f} x bare (target >= 1.2); {t_bare_val / t_topcal:.2f} x bare + validation; "
          f"{t_tfp / t_topcal:.2f} x the bare fit on TFP's layers |")
    later = n_fit * (args.epochs - 1)
    print(f"| epochs after the first: bare fit | {later / t_bare_later:.0f} jets/s | 1.00 |")
    print(f"| epochs after the first: bare fit + validation | {later / t_bare_val_later:.0f} jets/s | "
          f"{t_bare_later / t_bare_val_later:.2f} |")
    print(f"| epochs after the first: bare fit on TFP's layers | {later / t_tfp_later:.0f} jets/s | "
          f"{t_bare_later / t_tfp_later:.2f} |")
    print(f"| epochs after the first: topcal train (with validation) | {later / t_topcal_later:.0f} jets/s | "
          f"{t_bare_later / t_topcal_later:.2f} x bare; {t_bare_val_later / t_topcal_later:.2f} x bare + validation; "
          f"{t_tfp_later / t_topcal_later:.2f} x the bare fit on TFP's layers |")
    print(f"| bare forward passes | {js / t_forward:.0f} jets x samples/s | 1.00 |")
    print(f"| TrainedModel.sample | {js / t_sample:.0f} jets x samples/s | {t_forward / t_sample:.2f} x bare "
          f"(target >= 0.8) |")
    print(f"| TrainedModel.predict (+ moments, mode, 68% interval) | {js / t_predict:.0f} jets x samples/s | "
          f"{t_forward / t_predict:.2f} x bare |")
    if memory is not None:
        print(f"\npeak RSS of topcal train on {args.memory_jets} jets x 100 constituents (1 epoch): {memory:.0f} MB, "
              f"{memory / input_mb:.2f} x its input array of {input_mb:.0f} MB (target <= 1.5); peak anonymous memory "
              f"(without the shared libraries' pages) {anon:.0f} MB, {anon / input_mb:.2f} x")
    if args.json:
        write_json(args.json, {
            "training_jets": n_fit, "epochs": args.epochs, "repeats": args.repeats,
            "seconds_of_each_run": {key: [round(t, 3) for t, _ in v] for key, v in runs.items()},
            "inference_jets": len(xi), "samples": args.samples,
            "jets_per_s": {"bare_fit": work / t_bare, "bare_fit_validation": work / t_bare_val,
                           "bare_fit_keras2_adam": work / t_bare_k2, "bare_fit_tfp_layers": work / t_tfp,
                           "topcal_train": work / t_topcal},
            "jet_samples_per_s": {"bare_forward": js / t_forward, "sample": js / t_sample, "predict": js / t_predict},
            "later_epochs_jets_per_s": {"bare_fit": later / t_bare_later,
                                        "bare_fit_validation": later / t_bare_val_later,
                                        "bare_fit_tfp_layers": later / t_tfp_later,
                                        "topcal_train": later / t_topcal_later},
            "ratios": {"train_vs_bare_fit": t_bare / t_topcal, "train_vs_bare_fit_validation": t_bare_val / t_topcal,
                       "train_vs_bare_fit_tfp_layers": t_tfp / t_topcal,
                       "later_epochs_train_vs_bare_fit_tfp_layers": t_tfp_later / t_topcal_later,
                       "later_epochs_train_vs_bare_fit": t_bare_later / t_topcal_later,
                       "later_epochs_train_vs_bare_fit_validation": t_bare_val_later / t_topcal_later,
                       "memory_vs_input": memory / input_mb if memory is not None else None,
                       "anonymous_memory_vs_input": anon / input_mb if anon is not None else None,
                       "sample_vs_bare_forward": t_forward / t_sample,
                       "predict_vs_bare_forward": t_forward / t_predict},
            "peak_rss_mb": memory, "peak_anonymous_mb": anon, "memory_jets": args.memory_jets or None})


if __name__ == "__main__":
    main()
