"""What the commands print into logs: progress as whole lines, the summary, and no library noise."""

from __future__ import annotations

import subprocess
import sys

from toys import toy_dataset

NOISE = ("\r", "FastJet", "cuDNN", "cuBLAS", "oneDNN", "absl", "E0000", "W0000", "TF-TRT", "Warning", "WARNING")


def topcal(*args):
    return subprocess.run([sys.executable, "-m", "topcal.cli", *map(str, args)], capture_output=True, text=True)


def test_logs_get_lines_not_bars_and_no_library_noise(tmp_path):
    gen = topcal("generate", "-o", tmp_path / "x.root", "-n", "500", "--chunk-events", "100")
    assert gen.returncode == 0, gen.stderr
    assert "generate: 100% (500/500 ev)" in gen.stderr and "wrote 500 events" in gen.stdout
    proc = topcal("process", tmp_path / "x.root", "-o", tmp_path / "ds", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    ds = toy_dataset(tmp_path / "toy", 400, seed=1)
    train = topcal("train", ds.path, "-o", tmp_path / "m", "--epochs", "2")
    assert train.returncode == 0, train.stderr
    assert "training network 0: 100% (2/2 epoch" in train.stderr and "wrote model to" in train.stdout
    for run in (gen, proc, train):
        for noise in NOISE:
            assert noise not in run.stdout + run.stderr, (noise, run.args)


def test_quiet_flag_prints_nothing_but_errors(tmp_path):
    ok = topcal("-q", "generate", "-o", tmp_path / "x.root", "-n", "50")
    assert ok.returncode == 0 and ok.stdout == "" and ok.stderr == ""
    bad = topcal("-q", "generate", "-o", tmp_path / "x.root", "-n", "50")
    assert bad.returncode == 2 and bad.stderr.startswith("topcal: ") and "--overwrite" in bad.stderr


def test_early_stop_ends_the_progress_line_with_the_reason(capsys):
    import io

    from tqdm import tqdm

    from topcal.console import LineProgress, finish_early

    line = LineProgress(200, "training network 0", "epoch")
    line.update(60)
    finish_early(line, "stopped early at epoch 60 (best 40)")
    assert capsys.readouterr().err.splitlines()[-1] == "training network 0: stopped early at epoch 60 (best 40)"
    out = io.StringIO()
    bar = tqdm(total=200, desc="training network 0", file=out)
    bar.update(60)
    finish_early(bar, "stopped early at epoch 60 (best 40)")
    bar.close()
    text = out.getvalue()
    assert "100%" in text and "60/60" in text and "stopped early at epoch 60 (best 40)" in text
