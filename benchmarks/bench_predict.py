"""Benchmark of ``topcal predict`` against ``topcal process`` on the same events.

The input is the embedded sample repeated ``--copies`` times (``bench_process.make_input``); the model is
the paper's network trained for one epoch on the embedded sample (the speed does not depend on how well
it is trained). In one run it prints events/s of
  1. ``topcal process`` alone (reading, clustering, matching, dataset writing), one core;
  2. ``topcal predict`` with T samples per jet, one core: reading, clustering, T network passes for every
     fat jet, summaries, friend-tree writing;
  3. ``topcal predict`` on a running dask cluster (``--scheduler``) with 1 and 2 single-threaded workers.

    python benchmarks/bench_predict.py --copies 5 --samples 50
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from dask.distributed import LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_process import SAMPLE, make_input  # noqa: E402

from topcal.config import ProcessConfig, TrainConfig  # noqa: E402
from topcal.predict.run import predict  # noqa: E402
from topcal.process.run import process  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--samples", type=int, default=50)
    args = ap.parse_args()
    from topcal.train.fit import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "bench.root"
        n = make_input(path, args.copies)
        process([SAMPLE], tmp / "jets", ProcessConfig(flatten=False), progress=False, figures=False)
        train(tmp / "jets", tmp / "model", TrainConfig(epochs=1), progress=False)

        def timed(fn, *a, **k):
            t0 = time.perf_counter()
            result = fn(*a, **k)
            return time.perf_counter() - t0, result

        t_proc, _ = timed(process, [path], tmp / "ds", ProcessConfig(flatten=False), progress=False, figures=False)
        predict(tmp / "model", [SAMPLE], tmp / "warm", samples=2, progress=False)  # TF start-up outside timing
        t_pred, summary = timed(predict, tmp / "model", [path], tmp / "f1", samples=args.samples, progress=False)
        chunk = max(1, n // 8)
        t_dask = {}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster:
                kw = dict(executor="dask", scheduler=cluster.scheduler_address, chunksize=chunk,
                          samples=args.samples, progress=False, overwrite=True)
                predict(tmp / "model", [path], tmp / "fd", **kw)  # each worker loads the model once
                t_dask[workers], _ = timed(predict, tmp / "model", [path], tmp / "fd", **kw)

    print(f"{n} events ({args.copies} x the embedded sample), {summary.jets} fat jets, T = {args.samples}; "
          f"dask chunks of {chunk} events\n")
    print("| step | events/s | ratio |\n|---|---:|---|")
    print(f"| topcal process alone, 1 core | {n / t_proc:.0f} | 1.00 |")
    print(f"| topcal predict, 1 core | {n / t_pred:.0f} | {t_proc / t_pred:.2f} x process |")
    print(f"| topcal predict, dask, 1 worker | {n / t_dask[1]:.0f} | 1.00 |")
    print(f"| topcal predict, dask, 2 workers | {n / t_dask[2]:.0f} | {t_dask[1] / t_dask[2]:.2f} x 1 worker |")


if __name__ == "__main__":
    main()
