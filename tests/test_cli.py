"""The topcal command: bad input gives exit code 2, one line naming the problem, and no output."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from topcal.cli import main


@pytest.mark.parametrize(
    "args, message",
    [
        (["--events", "0"], "--events: 0"),
        (["--events", "-5"], "--events: -5"),
        (["--events", "10", "--process", "higgs"], "higgs"),
        (["--events", "10", "-j", "0"], "--workers"),
    ],
)
def test_bad_arguments(tmp_path, args, message):
    result = CliRunner().invoke(main, ["generate", "-o", str(tmp_path / "x.root"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_invalid_config_card(tmp_path):
    card = tmp_path / "card.toml"
    card.write_text("[detector.hcal]\nstochastic = [0.5, -0.7, 1.0]\n")
    result = CliRunner().invoke(main, ["generate", "-o", str(tmp_path / "x.root"), "-n", "5", "--config", str(card)])
    assert result.exit_code == 2
    assert "detector.hcal.stochastic" in result.output
    assert not (tmp_path / "x.root").exists()


def test_unwritable_directory_and_existing_file(tmp_path):
    result = CliRunner().invoke(main, ["generate", "-o", str(tmp_path / "missing" / "x.root"), "-n", "5"])
    assert result.exit_code == 2 and "does not exist" in result.output
    existing = tmp_path / "x.root"
    existing.write_text("old")
    result = CliRunner().invoke(main, ["generate", "-o", str(existing), "-n", "5"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert existing.read_text() == "old"


def test_generate_end_to_end_through_the_installed_command(tmp_path):
    out = tmp_path / "tt.root"
    proc = subprocess.run(
        [sys.executable, "-m", "topcal.cli", "generate", "-o", str(out), "-n", "20", "--seed", "3", "--quiet"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote 20 events" in proc.stdout
    assert out.exists()


def test_info_summarises_real_delphes(real_delphes):
    result = CliRunner().invoke(main, ["info", str(real_delphes)])
    assert result.exit_code == 0
    assert "25 events" in result.output and "EFlowTrack" in result.output
    missing = CliRunner().invoke(main, ["info", "nonexistent.root"])
    assert missing.exit_code == 2 and "nonexistent.root: file not found" in missing.output
