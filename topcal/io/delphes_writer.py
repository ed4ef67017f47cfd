"""Write DELPHES-format ROOT files with uproot, chunk by chunk.

uproot cannot write TClonesArrays, so each collection is a set of flat jagged branches with DELPHES's leaf
names (``Particle.PT``) and counter (``Particle_size``): exactly the names that DELPHES's split branches
have, which :mod:`topcal.io.delphes_reader` reads in both layouts. Metadata strings (the configuration that
made the file, the command line) are stored as ``TObjString`` objects next to the tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from topcal.io.atomic import OutputKind
from topcal.io.tree_writer import tree_file

TREE_NAME = "Delphes"
# every file topcal generates holds its configuration: --overwrite replaces only such a file
EVENT_FILE = OutputKind("event file", root_key="topcal_config")

def _counter_name(collection: str) -> str:
    return f"{collection}_size"


def _field_name(collection: str, field: str) -> str:
    return f"{collection}.{field}"


def delphes_file(
    path: str | Path,
    metadata: Mapping[str, str],
    overwrite: bool = False,
    compression: str = "zlib",
    level: int = 1,
):
    """Open ``path`` for writing a ``Delphes`` tree, atomically (see :func:`topcal.io.tree_writer.tree_file`).

    ``metadata`` entries are stored as ``TObjString`` (e.g. ``topcal_config``, ``topcal_command``).
    """
    return tree_file(path, TREE_NAME, _counter_name, _field_name, metadata, overwrite, compression, level,
                     title="Analysis tree (topcal)", kind=EVENT_FILE)
