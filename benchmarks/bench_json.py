"""``--json FILE`` of every benchmark: the table's figures with stable names, and where they were measured."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path


def write_json(path, figures: dict) -> None:
    """Write ``figures`` (rates, ratios with stable names) and the machine and command to ``path``."""
    record = {"benchmark": Path(sys.argv[0]).stem, "command": " ".join(sys.argv),
              "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": platform.machine(),
              "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
              **figures}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=2) + "\n")
