"""The embedded sample shipped inside the package, found wherever topcal runs.

``EMBEDDED_SAMPLE``: 2000 hadronic ttbar events without ISR (seed 1), PYTHIA 8 + topcal's DELPHES-like
detector, written in the slim layout by
``topcal generate -o ttbar_noisr_2000ev.root -n 2000 --seed 1 -j 2 --slim``; ``topcal demo`` runs on it.
"""

from __future__ import annotations

from pathlib import Path

EMBEDDED_SAMPLE = Path(__file__).resolve().with_name("ttbar_noisr_2000ev.root")
EMBEDDED_EVENTS = 2000
