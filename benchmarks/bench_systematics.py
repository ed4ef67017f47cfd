"""Per-object systematics benchmark: one fixed posterior, the statistical eigen-variations, and the prior.

One run, on fresh samples generated with ``--seed`` (ttbar, no ISR):

  1. a training sample of ``--events`` events, processed as ``topcal process`` does (flattened in
     pT,t(truth)) but in the wider windows below, and topcal's default network trained on it (``--epochs``
     at most);
  2. an unseen sample of ``--natural-events`` events (seed + 1; default ``--events / 2``) and a prior
     sample of as many (seed + 2), both processed in the same windows without flattening: their jets keep
     the generator's event weights, which give the natural, falling pT,t spectrum;
  3. sections, each a function returning a JSON-able dict (more sections can be added beside them):

     * ``chunk_identity``: ``topcal predict --seed`` at chunk size 1000 against a user processor through
       ``coffea.processor.Runner`` (futures, 2 workers) at chunk sizes 300, 700 and coffea's default, on
       ``--identity-events`` events: the largest difference of any field of any jet (0: bit-identical);
     * ``eigen``: K and the variance kept by the stored variations, and the variance kept against K;
     * ``subset_sums``: on the unseen jets, the variance of the summed ptPred of random subsets from the T
       draws against the one from the K variations (ratio; 1 is exact), and against adding sigma_pred per
       jet as if independent;
     * ``natural_spectrum``: on the unseen jets weighted to their natural spectrum, the event-weighted bias
       <ptPred - pT,t> and 68% coverage per 100 GeV bin of pT,j and overall, without a prior (the flat
       training prior) and with the prior sample's weighted pT,t spectrum as ``prior``; beside them the
       same jets unweighted without a prior (the network's own bias and coverage);
     * ``natural_spectrum_swapped``: the same with the two samples' roles swapped (the prior sample's jets
       evaluated, the unseen sample's spectrum as the prior): a second, independent measurement with the
       same model, no further samples.

The design is fair to the prior: bias and coverage are evaluated in ``EVAL_BINS_GEV`` of pT,j (400..1000
GeV), which lies inside the training window of pT,t(truth) (``TRUTH_WINDOW_GEV``, 250..1250 GeV) by 150
GeV at both ends, about three times the rms of pT,t - pT,j (48..69 GeV there; the median sigma_tot is
22..49 GeV). In topcal's default windows (pT,j and pT,t both 400..1000 GeV) the jets at the ends of the
evaluated range have their truth cut by the window: what lies beyond it can neither be learned nor
predicted, and the network's mixture cannot follow the hard cut (+16 GeV unweighted bias at pT,j 900..1000
GeV). So all samples here are generated with the hard-process pT window ``PTHAT_GEV`` (250..1250 GeV,
which bounds the hard-process pT,t) and processed with pT,t(truth) in ``TRUTH_WINDOW_GEV`` and pT,j in
``JET_WINDOW_GEV`` (400..1100 GeV: the network also sees jets above the evaluated range; below 400 GeV the
containment of the decay products in R = 1.2 falls so steeply that flattening in pT,t would be set by
those bins and drop most jets). The prior is the event-weighted pT,t spectrum of the prior sample's jets in
the same windows (the model's pT,j window, as :mod:`topcal.predict.prior` asks), in ``PRIOR_BIN_GEV``
bins; the flat-prior summaries are bounded by the model's label window, as in ``topcal predict``. Nothing
of this is tuned on the result.

``--work DIR`` keeps the samples, datasets and model there and reuses them in a later run with the same
arguments.

    python benchmarks/bench_systematics.py --seed 2626 --events 16000 --natural-events 7000 \
        --identity-events 800 --epochs 100 --work /tmp/bench16k --figure plots/systematics --json systematics.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np

from topcal.config import ProcessConfig, RunConfig, TrainConfig

EVAL_BINS_GEV = (400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0)  # pT,j bins of the natural-spectrum check
PTHAT_GEV = (250.0, 1250.0)  # the generator's hard-process pT window
JET_WINDOW_GEV = (400.0, 1100.0)  # pT,j window of every dataset (training, unseen, prior)
TRUTH_WINDOW_GEV = (250.0, 1250.0)  # pT,t(truth) window of every dataset: the model's label window
PRIOR_BIN_GEV = 25.0
SAMPLES, SEED = 50, 0  # the stored posterior (topcal predict's defaults)
FIELDS = ("pt", "ptPred", "sigmaStoch", "sigmaPred", "sigmaTot", "ptMode", "ptLow68", "ptHigh68")


def generate_sample(path: Path, seed: int, events: int, workers: int) -> Path:
    from topcal.generate.run import generate

    cfg = RunConfig(seed=seed)
    cfg.generator.pthat_min_gev, cfg.generator.pthat_max_gev = PTHAT_GEV
    cfg.output.truth = "compact"
    cfg.output.collections = ["Event", "Particle", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron"]
    cfg.output.compression = "lz4"
    generate(path, events, cfg, workers=workers, progress=False)
    return path


def make_dataset(sample: Path, out: Path, flatten: bool, workers: int) -> Path:
    from topcal.process.run import process

    cfg = ProcessConfig(flatten=flatten, jet_pt_min_gev=JET_WINDOW_GEV[0], jet_pt_max_gev=JET_WINDOW_GEV[1],
                        truth_pt_min_gev=TRUTH_WINDOW_GEV[0], truth_pt_max_gev=TRUTH_WINDOW_GEV[1])
    process([sample], out, cfg, executor="futures" if workers > 1 else "iterative",
            workers=workers, progress=False, figures=False)
    return out


def weighted_jets(dataset: Path):
    """The dataset's jets with pT,t(truth) and their event weights."""
    from topcal.io.dataset import open_dataset
    from topcal.train.data import load_rows

    ds = open_dataset(dataset)
    arrays, extra = load_rows(ds, np.arange(ds.n_jets), extra=("weight",))
    return arrays, extra["weight"]


def weighted_spectrum(dataset: Path):
    """The event-weighted pT,t(truth) spectrum of a dataset's jets, as a :class:`topcal.predict.prior.Prior`."""
    from topcal.predict.prior import Prior

    arrays, weight = weighted_jets(dataset)
    edges = np.arange(np.floor(arrays.pt_truth.min() / PRIOR_BIN_GEV) * PRIOR_BIN_GEV,
                      arrays.pt_truth.max() + PRIOR_BIN_GEV, PRIOR_BIN_GEV)
    values, _ = np.histogram(arrays.pt_truth, edges, weights=weight)
    return Prior(values, edges, f"weighted pT,t of {dataset}")


class _UserProcessor:
    """A user's processor (built lazily to keep coffea's import out of the module's import)."""

    @staticmethod
    def make(model_dir, samples, seed):
        from coffea import processor

        import topcal

        class UserProcessor(processor.ProcessorABC):
            def __init__(self):
                self.calibrate = topcal.Calibrator(model_dir, samples=samples, seed=seed)

            def process(self, events):
                jets = self.calibrate(events)
                fields = FIELDS + self.calibrate.stat_fields
                return {"chunks": {events.metadata["entrystart"]: {f: ak.to_numpy(ak.flatten(jets[f]))
                                                                    for f in fields}}}

            def postprocess(self, accumulator):
                return accumulator

        return UserProcessor()


def chunk_identity(model_dir: Path, sample: Path, work: Path, samples: int = SAMPLES, seed: int = SEED) -> dict:
    """``topcal predict`` at chunk size 1000 against a user processor at 300, 700 and coffea's default."""
    import uproot
    from coffea import processor

    from topcal.io.delphes_reader import TopcalDelphesSchema
    from topcal.predict.run import predict

    predict(model_dir, [sample], work / "friends", chunksize=1000, samples=samples, seed=seed, progress=False,
            overwrite=True)
    friend = uproot.open(work / "friends" / f"{sample.stem}_topcal.root")["topcal"].arrays()
    names = [f[len("FatJet_"):] for f in friend.fields if f[len("FatJet_"):] in FIELDS or "_stat" in f]
    reference = {n: ak.to_numpy(ak.flatten(friend[f"FatJet_{n}"])) for n in names}
    out = {"jets": int(len(reference["pt"])), "fields": len(names), "max_abs_diff_gev": {}}
    for chunksize in (300, 700, None):
        runner = processor.Runner(executor=processor.FuturesExecutor(workers=2, status=False),
                                  schema=TopcalDelphesSchema, **({"chunksize": chunksize} if chunksize else {}))
        result = runner({"s": {"files": {str(sample): "Delphes"}}},
                        processor_instance=_UserProcessor.make(model_dir, samples, seed), treename="Delphes")
        starts = sorted(result["chunks"])
        diff = max(float(np.max(np.abs(np.concatenate([result["chunks"][s][n] for s in starts]) - ref), initial=0.0))
                   for n, ref in reference.items())
        out["max_abs_diff_gev"][str(chunksize or "default")] = diff
    out["bit_identical"] = all(v == 0.0 for v in out["max_abs_diff_gev"].values())
    return out


def eigen(model_dir: Path) -> dict:
    """K and the variance kept by the stored variations, and the variance kept for every K."""
    from topcal.train import variations

    v = variations.load(model_dir, SAMPLES, SEED)
    return {**v.to_dict(), "explained": v.explained.tolist()}


def subset_sums(model, jets, seed: int, sizes=(10, 100, 1000, None), trials: int = 20) -> dict:
    """var(sum of a random subset's ptPred) over the T draws against the K variations and against the
    per-jet sigma_pred added in quadrature."""
    from topcal.train import variations

    v = variations.load(model.path, SAMPLES, SEED)
    means = variations.draw_means(model, jets, SAMPLES, SEED)
    shifts = v.shifts(means)
    sigma_pred = means.std(axis=0)
    rng = np.random.default_rng(seed)
    out = {"jets": len(jets), "per_jet_quadrature_over_sigma_pred2": float((shifts**2).sum() / (sigma_pred**2).sum()),
           "sizes": {}}
    for size in sizes:
        n = len(jets) if size is None or size > len(jets) else size
        ratios, independent = [], []
        for _ in range(trials if n < len(jets) else 1):
            pick = rng.choice(len(jets), n, replace=False)
            from_draws = means[:, pick].sum(axis=1).var()
            ratios.append((shifts[:, pick].sum(axis=1) ** 2).sum() / from_draws)
            independent.append((sigma_pred[pick] ** 2).sum() / from_draws)
        out["sizes"][str(n)] = {"variations_over_draws_min": float(np.min(ratios)),
                                "variations_over_draws_max": float(np.max(ratios)),
                                "independent_over_draws": float(np.mean(independent))}
    return out


def natural_spectrum(model, arrays, weight: np.ndarray, prior, spectrum) -> dict:
    """Event-weighted bias and 68% coverage per 100 GeV bin of pT,j, without and with ``prior``."""
    from topcal.predict.prior import summaries

    w, mu, s = model.sample(arrays.jets, SAMPLES, SEED)
    out = {}
    flat = summaries(w, mu, s, window=model.label_window)
    for name, pred, weights in (("flat", flat, weight), ("prior", summaries(w, mu, s, prior, spectrum), weight),
                                ("flat_unweighted", flat, np.ones_like(weight))):
        inside = (arrays.pt_truth >= pred["low"]) & (arrays.pt_truth <= pred["high"])
        rows = {}
        for lo, hi in [*zip(EVAL_BINS_GEV[:-1], EVAL_BINS_GEV[1:]), (EVAL_BINS_GEV[0], EVAL_BINS_GEV[-1])]:
            sel = (arrays.pt_jet >= lo) & (arrays.pt_jet < hi)
            ws = weights[sel]
            n_eff = ws.sum() ** 2 / (ws**2).sum() if sel.any() else 0.0
            resid = pred["mean"][sel] - arrays.pt_truth[sel]
            bias = float(np.average(resid, weights=ws)) if sel.any() else None
            spread = float(np.sqrt(np.average((resid - bias) ** 2, weights=ws))) if sel.any() else None
            cov = float(np.average(inside[sel], weights=ws)) if sel.any() else None
            rows[f"{lo:.0f}-{hi:.0f}"] = {"jets": int(sel.sum()), "n_eff": float(n_eff), "bias_gev": bias,
                                          "bias_err_gev": spread / np.sqrt(n_eff) if n_eff else None,
                                          "coverage68": cov,
                                          "coverage68_err": float(np.sqrt(0.68 * 0.32 / n_eff)) if n_eff else None}
        out[name] = rows
    return out


def variance_kept_figure(explained: list[float], kept: float, k: int, jets: int, out_dir: Path) -> list[Path]:
    """The fraction of the variance kept against the number of variations K."""
    from topcal.plot.style import label, new_figure, save

    fig, ax = new_figure()
    ks = np.arange(1, len(explained) + 1)
    ax.step(ks, explained, where="mid", color="black", label=f"T = {SAMPLES} draws")
    ax.axhline(0.95, color="tab:red", ls="--", label="95% kept")
    ax.axvline(k, color="tab:blue", ls=":", label=f"K = {k} ({100 * kept:.1f}%)")
    ax.set_xlabel("number of eigen-variations K")
    ax.set_ylabel("fraction of the variance kept")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right")
    label(ax, f"statistical eigen-variations, {jets} validation jets")
    return save(fig, out_dir, "variance_kept_vs_k")


def _print_natural(n: dict) -> None:
    print(f"  {'pT,j [GeV]':>10s} {'n_eff':>7s} {'bias flat':>12s} {'bias prior':>12s} {'cov68 flat':>11s} "
          f"{'cov68 prior':>12s} | {'unweighted: jets':>16s} {'bias flat':>12s} {'cov68 flat':>11s}")
    for b in n["flat"]:
        f, p, u = n["flat"][b], n["prior"][b], n["flat_unweighted"][b]
        print(f"  {b:>10s} {f['n_eff']:7.0f} {f['bias_gev']:6.1f}+-{f['bias_err_gev']:3.1f} "
              f"{p['bias_gev']:6.1f}+-{p['bias_err_gev']:3.1f} {f['coverage68']:11.3f} {p['coverage68']:12.3f} | "
              f"{u['jets']:16d} {u['bias_gev']:6.1f}+-{u['bias_err_gev']:3.1f} {u['coverage68']:11.3f}")


def print_table(result: dict) -> None:
    c = result["chunk_identity"]
    print(f"\nchunk-size identity ({c['jets']} jets, {c['fields']} fields): max |difference| "
          + ", ".join(f"chunk {k}: {v:g} GeV" for k, v in c["max_abs_diff_gev"].items())
          + f" -> bit-identical: {c['bit_identical']}")
    e = result["eigen"]
    print(f"eigen-variations: K = {e['k']} of T = {e['samples']} keep {100 * e['variance_kept']:.1f}% of the "
          f"variance ({e['decomposition_jets']} validation jets)")
    s = result["subset_sums"]
    print(f"subset sums on {s['jets']} unseen jets (per-jet quadrature / sigma_pred^2: "
          f"{s['per_jet_quadrature_over_sigma_pred2']:.3f}):")
    print(f"  {'jets':>6s} {'K vars / T draws (min..max)':>28s} {'independent / T draws':>22s}")
    for n, r in s["sizes"].items():
        print(f"  {n:>6s} {r['variations_over_draws_min']:13.3f}..{r['variations_over_draws_max']:.3f}"
              f" {r['independent_over_draws']:22.3f}")
    d = result["design"]
    print(f"natural spectrum (event-weighted), per 100 GeV bin of pT,j; samples: pT-hat {d['pthat_gev']}, "
          f"pT,j {d['jet_window_gev']}, pT,t(truth) {d['truth_window_gev']} GeV; unseen jets, prior sample's "
          f"spectrum as prior:")
    _print_natural(result["natural_spectrum"])
    print("the same with the roles swapped: prior-sample jets, unseen sample's spectrum as prior:")
    _print_natural(result["natural_spectrum_swapped"])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2626)
    parser.add_argument("--events", type=int, default=12000, help="training sample; unseen and prior: half each")
    parser.add_argument("--natural-events", type=int, default=None, help="unseen and prior samples each")
    parser.add_argument("--identity-events", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="keep the samples and model here (reused)")
    parser.add_argument("--figure", type=Path, default=None, help="directory for the variance-kept figure")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from topcal.train.fit import train
    from topcal.train.model import load_model
    from topcal.train.spectrum import read_spectrum

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        natural = args.natural_events or args.events // 2
        names = {"train": (args.seed, args.events, True), "unseen": (args.seed + 1, natural, False),
                 "prior": (args.seed + 2, natural, False),
                 "identity": (args.seed + 3, args.identity_events, False)}
        design = "pthat{:.0f}-{:.0f}_jet{:.0f}-{:.0f}_truth{:.0f}-{:.0f}".format(*PTHAT_GEV, *JET_WINDOW_GEV,
                                                                                 *TRUTH_WINDOW_GEV)
        datasets, samples = {}, {}
        for name, (seed, events, flatten) in names.items():
            samples[name] = work / f"{name}_seed{seed}_{events}ev_pthat{PTHAT_GEV[0]:.0f}-{PTHAT_GEV[1]:.0f}.root"
            if not samples[name].exists():
                generate_sample(samples[name], seed, events, args.workers)
            if name != "identity":
                datasets[name] = work / f"{name}_seed{seed}_{events}ev_{design}_dataset"
                if not datasets[name].exists():
                    make_dataset(samples[name], datasets[name], flatten, args.workers)
        model_dir = work / f"model_seed{args.seed}_{args.events}ev_{design}_{args.epochs}epochs"
        if not model_dir.exists():
            train(datasets["train"], model_dir, TrainConfig(seed=args.seed, epochs=args.epochs), progress=False)
        prepared = time.perf_counter() - t0
        model = load_model(model_dir)
        unseen, weight = weighted_jets(datasets["unseen"])
        prior = weighted_spectrum(datasets["prior"])
        prior_jets, prior_weight = weighted_jets(datasets["prior"])
        spectrum = read_spectrum(model_dir)
        result = {
            "seed": args.seed, "events": args.events, "natural_events": natural, "prepare_seconds": prepared,
            "design": {"pthat_gev": list(PTHAT_GEV), "jet_window_gev": list(JET_WINDOW_GEV),
                       "truth_window_gev": list(TRUTH_WINDOW_GEV), "eval_bins_gev": list(EVAL_BINS_GEV),
                       "prior_bin_gev": PRIOR_BIN_GEV, "label_window_gev": model.label_window},
            "chunk_identity": chunk_identity(model_dir, samples["identity"], work),
            "eigen": eigen(model_dir),
            "subset_sums": subset_sums(model, unseen.jets, args.seed),
            "natural_spectrum": natural_spectrum(model, unseen, weight, prior, spectrum),
            "natural_spectrum_swapped": natural_spectrum(model, prior_jets, prior_weight,
                                                         weighted_spectrum(datasets["unseen"]), spectrum),
        }
        result["seconds"] = time.perf_counter() - t0
    print_table(result)
    if args.figure:
        e = result["eigen"]
        for p in variance_kept_figure(e["explained"], e["variance_kept"], e["k"], e["decomposition_jets"],
                                      args.figure):
            print(f"figure: {p}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
