"""Write a ROOT TTree of jagged collections with uproot, chunk by chunk, atomically.

One writer serves both of topcal's ROOT outputs, which differ only in how branches are named:
DELPHES-format event files (``Particle.PT``, counter ``Particle_size``; :mod:`topcal.io.delphes_writer`)
and NanoAOD-style friend trees (``FatJet_pt``, counter ``nFatJet``; :mod:`topcal.predict.friend_tree`).
Metadata strings are stored as ``TObjString`` objects next to the tree. uproot needs ``mktree`` and
``extend`` for TTrees (plain assignment writes an RNTuple since uproot 5.7).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import awkward as ak
import uproot

from topcal.io.atomic import OutputKind, atomic_output

CODECS = {"zlib": uproot.ZLIB, "lzma": uproot.LZMA, "lz4": uproot.LZ4, "zstd": uproot.ZSTD}


class TreeWriter:
    """Appends chunks of jagged collections (``{"Particle": ak.Array, ...}``) to one tree."""

    def __init__(self, file: uproot.WritableDirectory, tree_name: str, counter_name: Callable[[str], str],
                 field_name: Callable[[str, str], str], title: str = ""):
        self._file = file
        self._tree = None
        self._naming = dict(counter_name=counter_name, field_name=field_name)
        self.tree_name, self.title = tree_name, title
        self.entries = 0

    def write(self, collections: Mapping[str, ak.Array]) -> None:
        if self._tree is None:
            self._tree = self._file.mktree(
                self.tree_name, {name: array.type.content for name, array in collections.items()},
                title=self.title, **self._naming,
            )
        self._tree.extend(dict(collections))
        self.entries += len(next(iter(collections.values())))


@contextlib.contextmanager
def tree_file(path: str | Path, tree_name: str, counter_name, field_name, metadata: Mapping[str, str],
              overwrite: bool = False, compression: str = "zlib", level: int = 1,
              title: str = "", kind: OutputKind | None = None) -> Iterator[TreeWriter]:
    """Open ``path`` for writing one tree; the file appears only when the block finishes without error.

    ``compression`` is one of uproot's ``zlib``, ``lzma``, ``lz4``, ``zstd`` at ``level`` 0..9. With
    ``overwrite``, an existing ``path`` is replaced only when it is a file of ``kind``.
    """
    with atomic_output(path, overwrite, kind=kind) as tmp:
        with uproot.recreate(tmp, compression=CODECS[compression](level)) as file:
            for key, value in metadata.items():
                file[key] = str(value)
            yield TreeWriter(file, tree_name, counter_name, field_name, title)
