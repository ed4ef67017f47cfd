"""Physics benchmark: closure of several label-uncertainty sources on the simulation, alone.

The study of ``topcal reproduce`` (:mod:`topcal.reproduce.label_closure`: 4% and 6% smear sources at
correlation 0 and 0.5, a trained 2% shift pair, topcal's default network), without the other studies:

  1. the scale's ttbar sample (no ISR, seed 1) and dataset, as ``topcal reproduce`` makes them (reused when
     ``--out`` already holds them, so a ``reproduce`` output directory can be given),
  2. the closure networks, as tasks on ``--executor`` (trained networks are reused),
  3. the table (measured / injected per 100 GeV bin of pT,j), the figure in ``OUT/plots``.

    python benchmarks/bench_label_closure.py -o closure/ --events 16000 --executor futures --workers 2 \
        --json closure.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from topcal.config import TrainConfig
from topcal.reproduce import label_closure
from topcal.reproduce.plan import sample_steps
from topcal.reproduce.run import ReproduceSummary, _sample_step, _sizes
from topcal.reproduce.scales import get_scale
from topcal.workers import run_tasks, worker_pool


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, required=True, help="Directory for sample, dataset, models, plots.")
    ap.add_argument("--scale", default="small", help="The topcal reproduce scale whose network settings to use.")
    ap.add_argument("--events", type=int, default=None, help="ttbar events [the scale's].")
    ap.add_argument("--executor", default="iterative", help="iterative, futures or dask.")
    ap.add_argument("--workers", type=int, default=1, help="Worker processes.")
    ap.add_argument("--json", type=Path, default=None, help="Write closure.json's content here.")
    args = ap.parse_args()

    scale = get_scale(args.scale)
    scale = replace(scale, events=args.events or scale.events, isr_events=0)
    t0 = time.perf_counter()
    summary = ReproduceSummary(args.out)
    with worker_pool(args.executor, args.workers) as pool:
        for step in sample_steps(args.out, scale, None):
            _sample_step(step, pool, False, None, summary)
        sizes, trainable = _sizes(scale, args.out / "dataset", scale.events)
        cfg = TrainConfig(train_size=sizes[-1], seed=1, epochs=scale.default_epochs, **scale.default_network)
        run_tasks(label_closure.tasks(args.out, args.out / "dataset", cfg, scale.samples, None), pool,
                  on_done=lambda t, sec, what: summary.steps.append((t.name, sec, what)))
    lines = label_closure.write(args.out, args.out / "plots", f"ttbar without ISR, {scale.events} events")
    print(f"{trainable} trainable jets, {sizes[-1]} per network, {time.perf_counter() - t0:.0f} s")
    print("\n".join(f"  {name:<44s} {sec:8.1f} s  {what}" for name, sec, what in summary.steps))
    print("\n".join(lines))
    if args.json:
        closure = json.loads((args.out / "reports" / "label_closure" / "closure.json").read_text())
        args.json.write_text(json.dumps({**closure, "events": scale.events, "train_size": sizes[-1],
                                         "within_tolerance": label_closure.verdict(closure)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
