"""Benchmark of ``topcal predict`` against ``topcal process`` on the same events.

The input is the embedded sample repeated ``--copies`` times (``bench_process.make_input``); the model is
topcal's default network (the Bayesian deep set) trained for one epoch on the embedded sample (the speed does not
depend on how well
it is trained). In one run it prints events/s of
  1. ``topcal process`` alone (reading, clustering, matching, dataset writing), one core;
  2. ``topcal predict`` with T samples per jet, one core: reading, clustering, T weight samples for every
     fat jet (one batched pass), summaries, friend-tree writing; for the default network, for the deep set
     whose per-constituent map is a point estimate (``TrainConfig.phi_posterior = "point"``: the map runs
     once per jet, only the head per weight draw) and for the paper's (each trained for one epoch on the
     embedded sample too);
  3. ``topcal predict`` on a running dask cluster (``--scheduler``) with 1 and 2 single-threaded workers
     (not with ``--skip-dask``).

    python benchmarks/bench_predict.py --copies 5 --samples 50 --json predict.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from dask.distributed import LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_json import write_json
from bench_process import SAMPLE, make_input

from topcal.config import ProcessConfig, TrainConfig, paper_train_config
from topcal.predict.run import predict
from topcal.process.run import process


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--json", type=Path, default=None, help="write the table's figures and ratios here")
    ap.add_argument("--skip-dask", action="store_true", help="do not time predict on a dask cluster")
    args = ap.parse_args()
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # one core for process and predict (TensorFlow sizes its pools now)
    from topcal.train.fit import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "bench.root"
        n = make_input(path, args.copies)
        process([SAMPLE], tmp / "jets", ProcessConfig(flatten=False), progress=False, figures=False)
        train(tmp / "jets", tmp / "model", TrainConfig(epochs=1), progress=False)
        train(tmp / "jets", tmp / "paper", paper_train_config(epochs=1), progress=False)
        train(tmp / "jets", tmp / "point", TrainConfig(epochs=1, phi_posterior="point"), progress=False)

        def timed(fn, *a, **k):
            t0 = time.perf_counter()
            result = fn(*a, **k)
            return time.perf_counter() - t0, result

        t_proc, _ = timed(process, [path], tmp / "ds", ProcessConfig(flatten=False), progress=False, figures=False)
        predict(tmp / "model", [SAMPLE], tmp / "warm", samples=2, progress=False)  # TF start-up outside timing
        t_pred, summary = timed(predict, tmp / "model", [path], tmp / "f1", samples=args.samples, progress=False)
        predict(tmp / "paper", [SAMPLE], tmp / "warm2", samples=2, progress=False)
        t_paper, _ = timed(predict, tmp / "paper", [path], tmp / "f2", samples=args.samples, progress=False)
        predict(tmp / "point", [SAMPLE], tmp / "warm3", samples=2, progress=False)
        t_point, _ = timed(predict, tmp / "point", [path], tmp / "f3", samples=args.samples, progress=False)
        chunk = max(1, n // 8)
        os.sched_setaffinity(0, cores)  # the dask workers (new processes) get every core
        t_dask = {}
        for workers in () if args.skip_dask else (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster:
                kw = dict(executor="dask", scheduler=cluster.scheduler_address, chunksize=chunk,
                          samples=args.samples, progress=False, overwrite=True)
                predict(tmp / "model", [path], tmp / "fd", **kw)  # each worker loads the model once
                t_dask[workers], _ = timed(predict, tmp / "model", [path], tmp / "fd", **kw)

    print(f"{n} events ({args.copies} x the embedded sample), {summary.jets} fat jets, T = {args.samples}; "
          f"dask chunks of {chunk} events\n")
    print("| step | events/s | ratio |\n|---|---:|---|")
    print(f"| topcal process alone, 1 core | {n / t_proc:.0f} | 1.00 |")
    print(f"| topcal predict, default network, 1 core | {n / t_pred:.0f} | {t_proc / t_pred:.2f} x process "
          f"(target >= 0.5) |")
    print(f"| topcal predict, point-estimate Phi, 1 core | {n / t_point:.0f} | {t_proc / t_point:.2f} x process |")
    print(f"| topcal predict, paper's network, 1 core | {n / t_paper:.0f} | {t_proc / t_paper:.2f} x process |")
    if t_dask:
        print(f"| topcal predict, dask, 1 worker | {n / t_dask[1]:.0f} | 1.00 |")
        print(f"| topcal predict, dask, 2 workers | {n / t_dask[2]:.0f} | {t_dask[1] / t_dask[2]:.2f} x 1 worker |")
    if args.json:
        rates = {"process": n / t_proc, "predict": n / t_pred, "predict_point_phi": n / t_point,
                 "predict_paper_network": n / t_paper, **{f"predict_dask_{w}": n / t for w, t in t_dask.items()}}
        ratios = {"predict_vs_process": t_proc / t_pred, "predict_point_phi_vs_process": t_proc / t_point,
                  "predict_paper_network_vs_process": t_proc / t_paper}
        if t_dask:
            ratios["predict_dask_2_vs_1_workers"] = t_dask[1] / t_dask[2]
        write_json(args.json, {"events": n, "jets": summary.jets, "samples": args.samples, "events_per_s": rates,
                               "ratios": ratios})


if __name__ == "__main__":
    main()
