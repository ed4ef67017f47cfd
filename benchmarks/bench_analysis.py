"""Benchmark of a measurement with topcal's per-jet uncertainties: the fraction of tops with pT,t > 800 GeV.

1. A model: topcal's default network trained for ``--epochs`` on the embedded sample (2000 ttbar events), with a
   label card holding one shift source (``labelScale``, 2%, ``method = "scale"``); its statistical
   eigen-variations for ``--samples`` T and seed 0.
2. Fresh ttbar samples (the network never saw them): the MC (``--mc-events``, seed ``--seed``) for the templates
   and the linear correction; the pool (``--pool-events``, seed ``--seed`` + 1) and, for each detector source,
   the pool's events generated with the source's ``[detector.energy_flow]`` scale at 1 + its default size.
   Selected jets: in the training window, truth-matched, the highest-pT,j one of each event (the two tops of
   an event share their pT, so both would make the bin counts non-Poisson); the bins (100 GeV from 400 to
   900 GeV, one above) are merged until each expects 10 data jets (:func:`topcal.analysis.fraction.min_count`).
3. ``--experiments`` pseudo-experiments of about ``--expected-jets`` selected jets
   (:func:`topcal.analysis.fraction.pseudo_experiments`), fitted by three analyses on the same pseudo-data:
   ``topcal`` (ptPred; the detector sources, stat<k> and labelScale as histosys nuisance parameters),
   ``independent`` (ptPred; the same variations treated as independent per jet) and ``linear`` (pT,j with the
   linear correction fitted on the MC; the detector sources and labelScale as nuisance parameters).

Reported per analysis: the coverage of the 68% interval (target 0.66..0.70) with its binomial error, the failed
fits (counted as not covering) and those that needed MIGRAD strategy 1, the mean and median half-width of the
interval on the fraction, the mean fitted fraction against the truth, the pull width. Also: how often the two
selected jets of one event fall on the same side of the threshold (why one jet per event).

    python benchmarks/bench_analysis.py --seed 31 --mc-events 5000 --pool-events 6000 --experiments 200 \
        --expected-jets 300 --epochs 10 --workers 2 --json analysis.json --save prepared.pkl

(docs/analysis.md: about 9 minutes on a shared 2-core machine.)

``--save FILE`` keeps the prepared pools and templates; ``--load FILE`` fits them again (other
``--experiments``, ``--expected-jets`` or ``--seed``) without training or generating.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detector_systematics import CARD_KEYS  # noqa: E402
from bench_json import write_json  # noqa: E402
from bench_process import SAMPLE  # noqa: E402

import topcal  # noqa: E402
from topcal.analysis import fraction as fr  # noqa: E402
from topcal.analysis.jets import calibrated_jets, paired, selected  # noqa: E402
from topcal.config import ProcessConfig, RunConfig, TrainConfig  # noqa: E402
from topcal.generate.run import generate  # noqa: E402
from topcal.io.delphes_reader import open_events  # noqa: E402
from topcal.predict import detector_systematics as dsys  # noqa: E402
from topcal.process.run import process  # noqa: E402

CARD = '[labelScale]\nkind = "shift"\nsize = 0.02\n'


def make_model(tmp: Path, epochs: int, samples: int) -> Path:
    from topcal.train.label_training import train_label_systematics
    from topcal.train.variations import compute_for_model

    process([SAMPLE], tmp / "jets", ProcessConfig(flatten=False), progress=False, figures=False)
    (tmp / "card.toml").write_text(CARD)
    train_label_systematics(tmp / "jets", tmp / "model", TrainConfig(epochs=epochs), tmp / "card.toml",
                            progress=False)
    compute_for_model(tmp / "model", samples, 0)
    return tmp / "model"


def make_samples(tmp: Path, seed: int, mc_events: int, pool_events: int, workers: int) -> dict[str, Path]:
    files = {"mc": tmp / "mc.root", "pool": tmp / "pool.root"}
    jobs = [("mc", seed, mc_events, None), ("pool", seed + 1, pool_events, None)]
    jobs += [(f"pool_{s}", seed + 1, pool_events, s) for s in dsys.SOURCES]
    for name, s, n, source in jobs:
        cfg = RunConfig(seed=s)
        cfg.output.truth = "compact"
        cfg.output.collections = ["Event", "Particle", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron"]
        if source:
            setattr(cfg.detector.energy_flow, CARD_KEYS[source], 1.0 + dsys.DEFAULT_SIZES[source])
        files[name] = tmp / f"{name}.root"
        generate(files[name], n, cfg, workers=workers, progress=False)
    return files


def _run(args):
    analyses, n, expected, seed, first = args
    return fr.pseudo_experiments(analyses, n, expected, seed=seed, first=first)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--mc-events", type=int, default=3000)
    ap.add_argument("--pool-events", type=int, default=2000)
    ap.add_argument("--experiments", type=int, default=200)
    ap.add_argument("--expected-jets", type=float, default=300.0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--samples", type=int, default=10, help="weight samples T (and the stat variations' set)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--save", type=Path, default=None, help="write the prepared pools and templates (pickle)")
    ap.add_argument("--load", type=Path, default=None,
                    help="fit the pools and templates of a --save file (no training or generation)")
    ap.add_argument("--diagnostics", action="store_true",
                    help="also: the whole pool fitted at theta = 0, each nuisance's effect on f, and the coverage "
                         "of the same experiments with every theta at 0")
    args = ap.parse_args()
    start = time.perf_counter()
    out: dict = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "json"}
    if args.load:
        with open(args.load, "rb") as f:
            analyses, prepared = pickle.load(f)
        out.update({k: v for k, v in prepared.items()
                    if k not in out or k in ("mc_events", "pool_events", "samples", "epochs")})
    else:
        analyses = prepare(args, out, start)
        if args.save:
            with open(args.save, "wb") as f:
                pickle.dump((analyses, dict(out)), f)
    t0 = time.perf_counter()
    chunks = np.array_split(np.arange(args.experiments), max(args.workers, 1))
    jobs = [(analyses, len(c), args.expected_jets, args.seed, int(c[0])) for c in chunks if len(c)]
    with multiprocessing.get_context("fork").Pool(len(jobs)) as p:
        parts = p.map(_run, jobs)
    results = {}
    for name in analyses:
        fits = [f for part in parts for f in part[name]["fits"]]
        results[name] = fr.summarise({"truth": parts[0][name]["truth"], "fits": fits})
    out["fit_s"] = round(time.perf_counter() - t0, 1)
    out["results"] = {k: {kk: vv for kk, vv in v.items() if kk != "fits"} for k, v in results.items()}
    out["fits"] = {k: v["fits"] for k, v in results.items()}
    if args.diagnostics:
        out["diagnostics"] = diagnostics(analyses, args.experiments, args.expected_jets, args.seed)
    out["wall_s"] = round(time.perf_counter() - start, 1)
    _print(out)
    if args.json:
        write_json(args.json, out)


def prepare(args, out: dict, start: float) -> dict:
    """Train, generate, calibrate: the pools and MC templates of the three analyses (fills ``out``)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_model(tmp, args.epochs, args.samples)
        out["train_s"] = round(time.perf_counter() - start, 1)
        files = make_samples(tmp, args.seed, args.mc_events, args.pool_events, args.workers)
        out["generate_s"] = round(time.perf_counter() - start - out["train_s"], 1)
        cal = topcal.Calibrator(model, samples=args.samples, seed=0, stat_variations=True)
        plain = topcal.Calibrator(model, samples=args.samples, seed=0, stat_variations=False, systematics=False)
        mc, _ = calibrated_jets(cal, open_events(files["mc"]))
        pool, pool_jets = calibrated_jets(cal, open_events(files["pool"]))
        shifted = {}
        for s in dsys.SOURCES:
            table, jets = calibrated_jets(plain, open_events(files[f"pool_{s}"]))
            shifted[s] = paired(pool_jets, jets, table, ("ptPred", "pt"), pool)
        sel_mc, sel_pool = selected(mc), selected(pool)
        out["two_jet_events"] = two_jet_events(mc)
        a, b, rms = fr_linear(mc, sel_mc)
        out["linear"] = {"offset_gev": a, "slope": b, "residual_rms_gev": rms}
        mc_obs = {"topcal": fr.topcal_observable(mc).take(sel_mc),
                  "linear": fr.linear_observable(mc, a, b).take(sel_mc)}
        pool_obs = {"topcal": fr.topcal_observable(pool).take(sel_pool),
                    "linear": fr.linear_observable(pool, a, b).take(sel_pool)}
        truly = {"topcal": {s: v["ptPred"][sel_pool] for s, v in shifted.items()},
                 "linear": {s: a + b * v["pt"][sel_pool] for s, v in shifted.items()}}
        out["matched_fraction"] = {s: float(v["matched"][sel_pool].mean()) for s, v in shifted.items()}
        truth_mc, truth_pool = mc["ptTruth"][sel_mc], pool["ptTruth"][sel_pool]
        n_min = fr.min_count(int(sel_mc.sum()), args.expected_jets)
        t = {k: fr.templates(o, truth_mc, min_count=n_min) for k, o in mc_obs.items()}
        out["edges_gev"] = {k: list(v.edges) for k, v in t.items()}
        pools = {k: fr.Experiment(o, truth_pool, truly[k]) for k, o in pool_obs.items()}
        analyses = {"topcal": (pools["topcal"], t["topcal"], False),
                    "independent": (pools["topcal"], t["topcal"], True),
                    "linear": (pools["linear"], t["linear"], False)}
        out["jets"] = {"mc": int(sel_mc.sum()), "pool": int(sel_pool.sum())}
        out["nuisance_parameters"] = {k: sorted(o.variations) for k, o in mc_obs.items()}
        out["mc_fraction"] = float(np.mean(truth_mc > fr.THRESHOLD_GEV))
        out["nuisance_bounds"] = {k: fr.nuisance_bounds(v, (sum(v.nominal.values())) > 0) for k, v in t.items()}
        out["prepare_s"] = round(time.perf_counter() - start, 1)
    return analyses


def diagnostics(analyses: dict, n: int, expected: float, seed: int) -> dict:
    """Where a coverage away from 0.68 comes from. Per analysis with histosys (``topcal``, ``linear``):

    * ``pool_fit``: the whole pool (weights scaled to ``expected`` jets, no Poisson draw, every theta at 0)
      fitted: its fraction against the truth is the bias of the finite MC and pool samples;
    * ``impact``: per nuisance parameter, the change of that fit's fraction (histosys parameters fixed at 0)
      when the pool moves by +1 sigma of the variation, and by the shifted sample where there is one;

    and per analysis ``nominal``: the coverage of the same ``n`` experiments with every theta at 0."""

    out = {}
    for name, (pool, t, independent) in analyses.items():
        if independent:
            continue
        model, keep = fr.build_model(t, expected)
        fixed = list(model.config.suggested_fixed())
        for par, kind in model.config.modifiers:
            if kind == "histosys":
                fixed[model.config.par_slice(par)] = [True]

        def fraction(x, free=False, model=model, t=t, keep=keep, fixed=fixed):
            return _pool_fraction(x, expected, model, t, keep, None if free else fixed)

        f0 = fraction(pool.obs.values)
        impact = {}
        for k, (up, down) in sorted(pool.obs.variations.items()):
            impact[k] = {"variation": fraction(pool.obs.values + 0.5 * (up - down)) - f0}
            if k in pool.truly_shifted:
                impact[k]["shifted_sample"] = fraction(pool.truly_shifted[k]) - f0
                impact[k]["mean_jet_shift_gev"] = float(np.mean(pool.truly_shifted[k] - pool.obs.values))
                impact[k]["mean_variation_gev"] = float(np.mean(0.5 * (up - down)))
        out[name] = {"pool_fit": fraction(pool.obs.values, free=True),
                     "truth": float(np.mean(pool.truth > fr.THRESHOLD_GEV)), "impact": impact}
    nominal = fr.pseudo_experiments(analyses, n, expected, seed=seed, shifts=False)
    for name, r in nominal.items():
        out.setdefault(name, {})["nominal"] = {k: v for k, v in r.items() if k != "fits"}
    return out


def _pool_fraction(x, expected, model, t, keep, fixed) -> float:
    """The fitted fraction for the jets ``x`` (GeV) scaled to ``expected`` jets; with ``fixed`` (pyhf's fixed
    parameters), a plain pyhf fit with those parameters fixed, else :func:`topcal.analysis.fraction.fit`."""
    import pyhf

    counts = fr.histogram(x, t.edges)[keep] * expected / len(x)
    if fixed is None:
        return float(t.fraction(fr.fit(model, counts)[0]))
    pars = pyhf.infer.mle.fit(np.concatenate([counts, model.config.auxdata]), model, fixed_params=fixed)
    return float(t.fraction(pars[model.config.poi_index]))


def two_jet_events(table) -> dict:
    """Among events with two or more selected jets (training window, truth-matched): how many, and how often
    their two highest-pT,j jets' tops lie on the same side of the threshold."""
    sel = selected(table, one_per_event=False)
    lead = selected(table)
    second = selected({**table, "inTrainingRange": sel & ~lead})
    event, above = np.asarray(table["event"]), np.asarray(table["ptTruth"]) > fr.THRESHOLD_GEV
    order = np.argsort(event[lead])
    pos = np.searchsorted(event[lead][order], event[second])  # the leading jet of each second jet's event
    same = above[lead][order][pos] == above[second]
    return {"events": int(lead.sum()), "with_two_jets": int(second.sum()),
            "same_side": float(same.mean()) if len(same) else float("nan")}


def fr_linear(table, sel):
    from topcal.train.metrics import linear_response

    return linear_response(np.asarray(table["pt"])[sel], np.asarray(table["ptTruth"])[sel])


def _print(o: dict) -> None:
    print(f"seed {o['seed']}; selected jets: MC {o['jets']['mc']}, pool {o['jets']['pool']}; T = {o['samples']}; "
          f"{o['experiments']} pseudo-experiments of ~{o['expected_jets']:.0f} jets")
    print(f"pool jets paired in the shifted samples: {o['matched_fraction']}")
    print(f"linear correction: {o['linear']['offset_gev']:.1f} GeV + {o['linear']['slope']:.3f} pT,j")
    print(f"nuisance parameters: {o['nuisance_parameters']}")
    print(f"bin edges (GeV): {o['edges_gev']}")
    tj = o["two_jet_events"]
    print(f"MC events with a selected jet: {tj['events']}, with two: {tj['with_two_jets']}, "
          f"both tops on the same side of {fr.THRESHOLD_GEV:.0f} GeV: {tj['same_side']:.3f}")
    print(f"nuisance parameter bounds: {o['nuisance_bounds']}")
    print(f"times: train {o['train_s']} s, generate {o['generate_s']} s, prepared {o['prepare_s']} s, "
          f"fits {o['fit_s']} s, all {o['wall_s']} s")
    print("\n| analysis | coverage 68% | mean half-width of f | median half-width | mean fitted f | truth f | "
          "pull width | failed fits | strategy 1 | staged |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in o["results"].items():
        print(f"| {name} | {r['coverage']:.3f} +- {r['coverage_error']:.3f} | {r['mean_half_width']:.4f} | "
              f"{r['half_width']:.4f} | {r['mean_f']:.4f} | {r['truth']:.4f} | {r['pull_width']:.2f} | "
              f"{r['failed']} of {r['experiments']} | {r['retried']} | {r['staged']} |")
    if "diagnostics" not in o:
        return
    print("\nWith every theta at 0 (same experiments):")
    for name, d in o["diagnostics"].items():
        r = d["nominal"]
        print(f"  {name}: coverage {r['coverage']:.3f} +- {r['coverage_error']:.3f}, mean half-width "
              f"{r['mean_half_width']:.4f}, mean fitted f {r['mean_f']:.4f}, pull width {r['pull_width']:.2f}, "
              f"failed {r['failed']}")
    for name, d in o["diagnostics"].items():
        if "impact" not in d:
            continue
        print(f"\n{name}: whole pool fitted at theta = 0: f = {d['pool_fit']:.4f} (truth {d['truth']:.4f})")
        print("| nuisance | df, +1 sigma variation | df, shifted sample | mean jet shift: sample / variation [GeV] |")
        print("|---|---|---|---|")
        for k, v in d["impact"].items():
            sample = f"{v['shifted_sample']:+.4f}" if "shifted_sample" in v else "-"
            shift = (f"{v['mean_jet_shift_gev']:.2f} / {v['mean_variation_gev']:.2f}"
                     if "shifted_sample" in v else "-")
            print(f"| {k} | {v['variation']:+.4f} | {sample} | {shift} |")


if __name__ == "__main__":
    main()
