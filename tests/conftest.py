"""Shared fixtures: one small generated ttbar sample per test session, and a real DELPHES file (tests/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REAL_DELPHES = Path(__file__).resolve().parent / "data" / "delphes_generic_25ev.root"  # see tests/data/README.md


@pytest.fixture(scope="session")
def real_delphes() -> Path:
    if not REAL_DELPHES.exists():
        pytest.fail(f"real DELPHES file missing: {REAL_DELPHES} (it is part of the repository)")
    return REAL_DELPHES


@pytest.fixture(scope="session")
def ttbar_file(tmp_path_factory) -> Path:
    """300 hadronic ttbar events without ISR, seed 11, made by topcal generate."""
    from topcal.config import RunConfig
    from topcal.generate.run import generate

    path = tmp_path_factory.mktemp("gen") / "ttbar.root"
    generate(path, 300, RunConfig(seed=11, chunk_events=100), workers=1, progress=False)
    return path


@pytest.fixture(scope="session")
def ttbar_isr_file(tmp_path_factory) -> Path:
    """60 hadronic ttbar events with ISR, seed 12, made by topcal generate."""
    from topcal.config import RunConfig
    from topcal.generate.run import generate

    cfg = RunConfig(seed=12, chunk_events=60)
    cfg.generator.isr = True
    path = tmp_path_factory.mktemp("gen_isr") / "ttbar_isr.root"
    generate(path, 60, cfg, workers=1, progress=False)
    return path
