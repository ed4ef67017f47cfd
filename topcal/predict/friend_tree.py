"""ROOT friend files: one per input file, one entry per input event, in the same order.

The tree (default ``topcal``) holds NanoAOD-style jagged branches, ``nFatJet`` and ``FatJet_pt``,
``FatJet_sigmaTot``, ..., so ``TTree::AddFriend`` in ROOT, uproot and coffea line the entries up with the
``Delphes`` tree. The model's metadata, the command and topcal's version are stored as ``TObjString``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import awkward as ak

from topcal.io.atomic import OutputKind
from topcal.io.tree_writer import tree_file

DEFAULT_TREE = "topcal"
COLLECTION = "FatJet"
# every friend file holds the model that made it: --overwrite replaces only such a file
FRIEND_FILE = OutputKind("friend file", root_key="topcal_model")


def friend_name(input_file: str | Path) -> str:
    """``events.root`` -> ``events_topcal.root``."""
    return f"{Path(input_file).stem}_topcal.root"


def write_friend(path: str | Path, chunks: Iterable[ak.Array], metadata: Mapping[str, str],
                 tree_name: str = DEFAULT_TREE, overwrite: bool = False) -> int:
    """Write the per-event FatJet records of ``chunks`` (in entry order) as a friend tree; returns entries."""
    with tree_file(path, tree_name, lambda c: f"n{c}", lambda c, f: f"{c}_{f}", metadata, overwrite,
                   title="topcal per-jet predictions (friend of Delphes)", kind=FRIEND_FILE) as writer:
        for chunk in chunks:
            writer.write({COLLECTION: chunk})
        return writer.entries
