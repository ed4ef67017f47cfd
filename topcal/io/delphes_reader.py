"""Read DELPHES trees with coffea NanoEvents, whatever wrote them.

Two layouts exist:

* DELPHES itself writes split TClonesArrays: branch ``Particle`` with sub-branches ``Particle.PT`` ...
  (uproot names them ``Particle/Particle.PT``), counter ``Particle_size``.
* ``topcal generate`` writes flat jagged branches with the same leaf names: ``Particle.PT``, ``Particle_size``.

:class:`TopcalDelphesSchema` (a coffea ``DelphesSchema``) maps both onto the same events, and gives older
DELPHES files whose Track collections have no ``Mass`` the charged-pion mass hypothesis.
:func:`check_delphes_file` turns every problem with an input file into one clear message.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import uproot
from coffea.nanoevents import DelphesSchema, NanoEventsFactory, transforms

from topcal.errors import InputFileError

TREE_NAME = "Delphes"
PION_MASS_GEV = 0.13957
TRACK_LIKE = ("Track", "EFlowTrack")


class TopcalDelphesSchema(DelphesSchema):
    """coffea's DelphesSchema, reading both the split (DELPHES) and the flat (topcal) branch layout."""

    def __init__(self, base_form, *args, **kwargs):
        fields = list(base_form["fields"])
        contents = list(base_form["contents"])
        # flat layout: "Particle.PT" -> "Particle/Particle.PT", as DELPHES's split branches are named
        fields = [_split_name(f) for f in fields]
        present = set(fields)
        for name in TRACK_LIKE:
            size = f"{name}_size"
            if size in present and f"{name}/{name}.PT" in present and f"{name}/{name}.Mass" not in present:
                offsets = transforms.counts2offsets_form(contents[fields.index(size)])
                fields.append(f"{name}/{name}.Mass")
                contents.append(transforms.full_like_from_offsets_form(offsets, PION_MASS_GEV))
        base_form = dict(base_form, fields=fields, contents=contents)
        super().__init__(base_form, *args, **kwargs)


def _split_name(field: str) -> str:
    if "/" in field or "." not in field or field.endswith("_size"):
        return field
    collection = field.split(".", 1)[0]
    return f"{collection}/{field}"


def branch_names(tree: uproot.TTree) -> set[str]:
    """Leaf names in the DELPHES convention (``Particle.PT``, ``Particle_size``), for either layout."""
    return {k.rsplit("/", 1)[-1] for k in tree.keys()}


def check_delphes_file(path: str | Path, collections: Iterable[str] = (), fields: Iterable[str] = (),
                       deep: bool = False) -> int:
    """Open ``path`` and check it is a DELPHES file with the given collections and ``Coll.Field`` leaves;
    ``deep`` also reads and decompresses every basket of those leaves and of the collections' counters
    (of every branch when neither is given), which finds damaged data inside an intact file.

    Returns the number of entries. Raises :class:`InputFileError` naming the file and what is wrong.
    """
    collections, fields = tuple(collections), tuple(fields)
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{path}: not a readable ROOT file (empty: 0 bytes)")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"root":
        raise InputFileError(f"{path}: not a readable ROOT file (it does not start with 'root'; {size} bytes)")
    try:
        file = uproot.open(path)
    except Exception as exc:  # uproot raises many types for corrupt files
        detail = " ".join(str(exc).split())  # one line, whatever uproot's message looks like
        raise InputFileError(f"{path}: not a readable ROOT file ({type(exc).__name__}: {detail})") from None
    with file:
        if TREE_NAME not in file:
            raise InputFileError(f"{path}: no '{TREE_NAME}' tree (keys: {', '.join(file.keys()) or 'none'})")
        try:
            tree = file[TREE_NAME]
            names = branch_names(tree)
            entries = tree.num_entries
        except Exception as exc:
            raise InputFileError(f"{path}: '{TREE_NAME}' tree cannot be read ({exc})") from None
        _check_complete(path, tree)
        for coll in collections:
            if f"{coll}_size" not in names:
                raise InputFileError(f"{path}: collection '{coll}' missing (no branch '{coll}_size')")
        for leaf in fields:
            if leaf not in names:
                raise InputFileError(f"{path}: branch '{leaf}' missing")
        if deep:
            check_baskets(path, tree, (*fields, *(f"{c}_size" for c in collections)))
    return entries


def check_baskets(path: Path, tree: uproot.TTree, leaves: Iterable[str] = ()) -> None:
    """Read and decompress every basket of the ``leaves`` (``Coll.Field``, ``Coll_size``; every branch when
    none are given)."""
    wanted = set(leaves)
    for branch in tree.itervalues(recursive=True):
        leaf = branch.name.rsplit("/", 1)[-1]
        if wanted and leaf not in wanted:
            continue
        for i in range(branch.num_baskets):
            try:
                branch.basket(i)
            except Exception as exc:  # cramjam, zlib, lzma and uproot raise many types for damaged data
                message = str(exc).splitlines()[0] if str(exc) else ""
                raise InputFileError(f"{path}: branch '{leaf}' is damaged in basket {i} "
                                     f"({type(exc).__name__}: {message})") from None


def diagnose_read_error(files: Iterable[str | Path], collections: Iterable[str],
                        fields: Iterable[str]) -> InputFileError | None:
    """After a run failed: the one-line error of the first file whose used leaves cannot be read, or None
    when every file reads (then the failure was something else)."""
    for f in files:
        try:
            check_delphes_file(f, collections, fields, deep=True)
        except InputFileError as exc:
            return exc
    return None


def _check_complete(path: Path, tree: uproot.TTree) -> None:
    """A truncated file still opens; catch it here from the basket positions, without reading any data."""
    size = path.stat().st_size
    for branch in tree.itervalues(recursive=True):
        n = branch.num_baskets
        if n == 0:
            continue
        end = int((branch.member("fBasketSeek")[:n] + branch.member("fBasketBytes")[:n]).max())
        if end > size:
            raise InputFileError(
                f"{path}: file is truncated (branch '{branch.name}' needs {end} bytes, the file has {size})"
            )


def open_events(path: str | Path, entry_start: int | None = None, entry_stop: int | None = None):
    """Eagerly read a DELPHES file (either layout) as coffea NanoEvents."""
    check_delphes_file(path)
    return NanoEventsFactory.from_root(
        {str(path): TREE_NAME},
        schemaclass=TopcalDelphesSchema,
        mode="eager",
        entry_start=entry_start,
        entry_stop=entry_stop,
    ).events()


def read_metadata(path: str | Path, key: str) -> str | None:
    """A metadata string (TObjString) stored next to the tree, or None."""
    with uproot.open(path) as file:
        if key not in file:
            return None
        return str(file[key])


def summarize(path: str | Path, check: bool = False) -> str:
    """A few lines describing a DELPHES file: entries, collections with mean multiplicities, provenance;
    ``check`` first reads every basket of every branch (damaged data is an InputFileError naming it)."""
    entries = check_delphes_file(path, deep=check)
    lines = [f"{path}: {entries} events in tree '{TREE_NAME}'"]
    with uproot.open(path) as file:
        tree = file[TREE_NAME]
        names = sorted(n[: -len("_size")] for n in branch_names(tree) if n.endswith("_size"))
        sizes = {n: tree[_leaf_path(tree, f"{n}_size")].array(library="np") for n in names}
        for name in names:
            mean = sizes[name].mean() if entries else 0.0
            lines.append(f"  {name:<20s} {mean:8.1f} per event")
    command = read_metadata(path, "topcal_command")
    lines.append(f"  made by: {command}" if command else "  made by: not topcal (no topcal_command)")
    if check:
        lines.append("  every basket of every branch reads")
    return "\n".join(lines)


def _leaf_path(tree: uproot.TTree, leaf: str) -> str:
    for key in tree.keys():
        if key.rsplit("/", 1)[-1] == leaf:
            return key
    raise KeyError(leaf)
