"""topcal.workers: task graphs on every executor, resumption, failures, and the workers' thread share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from topcal.errors import ConfigError
from topcal.workers import Task, run_tasks, worker_environment, worker_pool


def write_sum(out: str, *inputs: str) -> None:
    """A task: the sum of its input files' numbers (1 without inputs) into ``out``."""
    total = sum(json.loads(Path(p).read_text()) for p in inputs) if inputs else 1
    Path(out).write_text(json.dumps(total))


def fail(out: str) -> None:
    raise RuntimeError("task failed on purpose")


def _diamond(tmp_path: Path) -> list[Task]:
    a, b, c, d = (str(tmp_path / f"{x}.json") for x in "abcd")
    return [Task("a", Path(a), write_sum, (a,)),
            Task("b", Path(b), write_sum, (b, a), after=("a",)),
            Task("c", Path(c), write_sum, (c, a), after=("a",)),
            Task("d", Path(d), write_sum, (d, b, c), after=("b", "c"))]


@pytest.mark.parametrize("executor", ["iterative", "futures", "dask"])
def test_task_graph_runs_in_dependency_order_on_every_executor(tmp_path, executor):
    done = []
    with worker_pool(executor, 2) as pool:
        run_tasks(_diamond(tmp_path), pool, on_done=lambda t, s, what: done.append((t.name, what)))
    assert json.loads((tmp_path / "d.json").read_text()) == 2  # b = 1, c = 1: only right if a ran first
    assert sorted(done) == [(n, "done") for n in "abcd"]
    assert done[0][0] == "a" and done[-1][0] == "d"


def test_complete_tasks_are_reused_and_an_interrupted_graph_resumes(tmp_path):
    tasks = _diamond(tmp_path)
    with worker_pool() as pool:
        run_tasks(tasks[:2], pool)
        done = []
        run_tasks(tasks, pool, on_done=lambda t, s, what: done.append((t.name, what)))
    assert ("a", "reused") in done and ("b", "reused") in done and ("d", "done") in done


def test_a_failing_task_stops_its_dependents_and_is_raised(tmp_path):
    tasks = _diamond(tmp_path)
    tasks[1] = Task("b", tmp_path / "b.json", fail, (str(tmp_path / "b.json"),), after=("a",))
    with worker_pool("futures", 2) as pool, pytest.raises(RuntimeError, match="on purpose"):
        run_tasks(tasks, pool)
    assert (tmp_path / "c.json").exists()       # independent of the failure: finished
    assert not (tmp_path / "d.json").exists()   # depends on it: never started


def test_unknown_dependency_and_bad_options_are_one_line_errors(tmp_path):
    with worker_pool() as pool, pytest.raises(ValueError, match="unknown tasks"):
        run_tasks([Task("x", tmp_path / "x", write_sum, after=("nothing",))], pool)
    with pytest.raises(ConfigError, match="--scheduler needs --executor dask"):
        with worker_pool("futures", 2, scheduler="tcp://localhost:1"):
            pass
    with pytest.raises(ConfigError, match="workers"):
        with worker_pool("dask", 0):
            pass


def test_local_dask_workers_get_their_share_of_the_cores(monkeypatch):
    monkeypatch.setattr("topcal.workers.default_workers", lambda: 8)
    env = worker_environment(2)
    assert env["TOPCAL_THREADS"] == env["OMP_NUM_THREADS"] == "4"
    assert worker_environment(16)["TOPCAL_THREADS"] == "1"
    with worker_pool("dask", 1) as pool:
        threads = pool.pool.run(lambda: __import__("os").environ.get("TOPCAL_THREADS"))
    assert list(threads.values()) == [str(worker_environment(1)["TOPCAL_THREADS"])]


def test_futures_workers_run_tensorflow_after_the_parent_did(tmp_path):
    """A futures pool opened before TensorFlow is loaded, then TensorFlow run in the parent (as reproduce
    does when it measures step times), then TensorFlow in the workers: it must not hang (a worker forked
    after TensorFlow ran inherits thread pools without threads)."""
    import subprocess
    import sys

    code = """
import numpy as np
from topcal.workers import worker_pool

def matmul(seed):
    import tensorflow as tf
    x = tf.constant(np.random.default_rng(seed).standard_normal((600, 600)), tf.float32)
    return float(tf.reduce_sum(tf.matmul(x, x)))

with worker_pool("futures", 2) as pool:
    import tensorflow as tf
    tf.reduce_sum(tf.matmul(tf.ones((600, 600)), tf.ones((600, 600)))).numpy()  # the parent runs TensorFlow
    futures = [pool.submit(matmul, s) for s in range(2)]
    print("results", [f.result(timeout=120) == matmul(s) for s, f in enumerate(futures)])
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=200)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "results [True, True]" in run.stdout


def test_a_task_whose_output_a_later_task_used_up_is_complete(tmp_path):
    """An ensemble member's checkpoint is removed when the ensemble's model is published: the member task is
    then complete through ``superseded_by``, and a rerun reuses everything."""
    member, model = tmp_path / "member.json", tmp_path / "model.json"
    tasks = [Task("member", member, write_sum, (str(member),), superseded_by=model),
             Task("model", model, write_sum, (str(model), str(member)), after=("member",))]
    with worker_pool("iterative", 1) as pool:
        run_tasks(tasks, pool)
        member.unlink()  # consumed by the assembly
        assert tasks[0].complete
        again = []
        run_tasks(tasks, pool, on_done=lambda t, s, what: again.append(what))
    assert again == ["reused", "reused"] and not member.exists()


def test_the_readme_jobqueue_recipe_runs_topcal_on_its_workers(tmp_path):
    """The dask-jobqueue recipe of docs/cluster.md (one worker process per job, one task slot, TOPCAL_THREADS from the
    job script's prologue), on dask-jobqueue's LocalCluster: the same job scripts as SLURMCluster and
    HTCondorCluster write, each run by bash here as a batch system would run it. TensorFlow in each worker
    takes the prologue's thread count, and an ensemble trained there through ``--scheduler`` equals the one
    trained in this process."""
    import numpy as np
    from dask.distributed import Client
    from dask_jobqueue.local import LocalCluster, LocalJob
    from tornado.process import Subprocess
    from toys import toy_dataset

    class BashJob(LocalJob):
        """dask-jobqueue's local job, with its job script run by bash (LocalJob runs the script's words as
        one command, so a prologue line such as ``export`` cannot run)."""

        async def _submit_job(self, script_filename):
            self.process = Subprocess(["bash", script_filename], stdout=Subprocess.STREAM, stderr=Subprocess.STREAM)
            lines = []
            while b"Registered to:" not in (line := await self.process.stderr.read_until(b"\n")):
                lines.append(line.decode())
                if b"error" in line.lower():
                    raise RuntimeError("worker failed:\n" + "".join(lines))
            return str(self.process.pid)

    from topcal.config import TrainConfig
    from topcal.train.data import load_rows
    from topcal.train.fit import train
    from topcal.train.model import load_model

    def tensorflow_threads():
        import os

        import tensorflow as tf

        import topcal.train.backend  # noqa: F401  (sets TensorFlow's pools from TOPCAL_THREADS)

        return os.environ.get("TOPCAL_THREADS"), tf.config.threading.get_intra_op_parallelism_threads()

    ds = toy_dataset(tmp_path / "ds", 1200, seed=11)
    cfg = TrainConfig(epochs=2, ensemble=2, phi_hidden=[16], hidden=[16], patience=3)
    train(ds.path, tmp_path / "here", cfg, progress=False)
    with LocalCluster(job_cls=BashJob, cores=1, processes=1, memory="4GB",
                      job_script_prologue=["export TOPCAL_THREADS=1"],
                      worker_extra_args=["--nthreads", "1"], local_directory=str(tmp_path / "dask"),
                      silence_logs="error") as cluster:
        cluster.scale(jobs=2)
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            assert set(client.run(tensorflow_threads).values()) == {("1", 1)}
            assert set(client.nthreads().values()) == {1}
            train(ds.path, tmp_path / "cluster", cfg, progress=False, executor="dask",
                  scheduler=cluster.scheduler_address)
    jets = load_rows(ds, np.arange(200))[0].jets
    a = load_model(tmp_path / "here").predict(jets, samples=2)
    b = load_model(tmp_path / "cluster").predict(jets, samples=2)
    np.testing.assert_array_equal(a["mean"], b["mean"])
    np.testing.assert_array_equal(a["sigma_tot"], b["sigma_tot"])
