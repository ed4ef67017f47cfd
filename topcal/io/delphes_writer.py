"""Write DELPHES-format ROOT files with uproot, chunk by chunk.

uproot cannot write TClonesArrays, so each collection is a set of flat jagged branches with DELPHES's leaf
names (``Particle.PT``) and counter (``Particle_size``): exactly the names that DELPHES's split branches
have, which :mod:`topcal.io.delphes_reader` reads in both layouts. Metadata strings (the configuration that
made the file, the command line) are stored as ``TObjString`` objects next to the tree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import awkward as ak
import uproot

from topcal.io.atomic import atomic_output

TREE_NAME = "Delphes"


def _counter_name(collection: str) -> str:
    return f"{collection}_size"


def _field_name(collection: str, field: str) -> str:
    return f"{collection}.{field}"


class DelphesWriter:
    """Appends chunks of jagged collections (``{"Particle": ak.Array, ...}``) to the ``Delphes`` tree."""

    def __init__(self, file: uproot.WritableDirectory):
        self._file = file
        self._tree = None
        self.entries = 0

    def write(self, collections: Mapping[str, ak.Array]) -> None:
        if self._tree is None:
            self._tree = self._file.mktree(
                TREE_NAME,
                {name: array.type.content for name, array in collections.items()},
                counter_name=_counter_name,
                field_name=_field_name,
                title="Analysis tree (topcal)",
            )
        self._tree.extend(dict(collections))
        self.entries += len(next(iter(collections.values())))


@contextlib.contextmanager
def delphes_file(
    path: str | Path,
    metadata: Mapping[str, str],
    overwrite: bool = False,
    compression: str = "zlib",
    level: int = 1,
) -> Iterator[DelphesWriter]:
    """Open ``path`` for writing, atomically: the file appears only when the block finishes without error.

    ``metadata`` entries are stored as ``TObjString`` (e.g. ``topcal_config``, ``topcal_command``);
    ``compression`` is one of uproot's ``zlib``, ``lzma``, ``lz4``, ``zstd`` at ``level`` 0..9.
    """
    codec = {"zlib": uproot.ZLIB, "lzma": uproot.LZMA, "lz4": uproot.LZ4, "zstd": uproot.ZSTD}[compression]
    with atomic_output(path, overwrite) as tmp:
        with uproot.recreate(tmp, compression=codec(level)) as file:
            for key, value in metadata.items():
                file[key] = str(value)
            yield DelphesWriter(file)
