"""Outputs that appear complete or not at all: write to a temporary name beside the target, rename at the end.

``--overwrite`` replaces only an output that topcal wrote, of the same kind (:class:`OutputKind`: a directory
recognised by its manifest and holding nothing else, or a ROOT file recognised by the metadata topcal writes
into it), and never the working directory or a folder above it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from topcal.errors import OutputError

TEMPORARY = ".*.tmp-*-*"  # the temporaries of :func:`temporary_name`
STEP_FILE = "topcal-step.json"  # a pipeline's fingerprint of the step that made an output (:mod:`topcal.pipeline`)


@dataclass(frozen=True)
class OutputKind:
    """What one command's output looks like, so that ``--overwrite`` replaces nothing else.

    A directory kind names its ``manifest`` (a JSON object whose ``format`` starts with ``format``, or, with
    an empty ``format``, one that has a ``topcal_version``) and the ``contents`` (glob patterns) of the
    entries it may hold; with ``manifest_required`` False a directory holding only such entries is
    recognised without the manifest. A file kind (``root_key``) is a ROOT file holding that key, which
    topcal writes into every such file. An empty directory is always replaceable: nothing is lost.
    """

    what: str
    manifest: str = ""
    format: str = ""
    contents: tuple[str, ...] = ()
    root_key: str = ""
    manifest_required: bool = True

    def refusal(self, path: Path) -> str | None:
        """Why ``path`` (which exists) is not an output of this kind, or None when it is one."""
        if self.root_key:
            return self._file_refusal(path)
        if not path.is_dir():
            return f"is a file, not a topcal {self.what}"
        entries = [e.name for e in path.iterdir() if not fnmatch.fnmatch(e.name, TEMPORARY)]
        if not entries:
            return None
        manifest = path / self.manifest
        if self.manifest and manifest.is_file():
            try:
                data = json.loads(manifest.read_text())
            except (ValueError, OSError):
                return f"its {self.manifest} is not a topcal {self.what}'s"
            tag = data.get("format", "") if isinstance(data, dict) else None
            if tag is None or (self.format and not str(tag).startswith(self.format)) or \
                    (not self.format and "topcal_version" not in data):
                return f"its {self.manifest} is not a topcal {self.what}'s"
        elif self.manifest_required:
            return f"not a topcal {self.what} (no {self.manifest})"
        allowed = (*self.contents, self.manifest, STEP_FILE)
        for name in sorted(entries):
            if not any(fnmatch.fnmatch(name, pattern) for pattern in allowed if pattern):
                return f"holds {name!r}, which a topcal {self.what} does not"
        return None

    def _file_refusal(self, path: Path) -> str | None:
        if path.is_dir():
            return f"is a directory, not a topcal {self.what}"
        try:
            import uproot

            with uproot.open(path) as file:
                keys = {key.split(";")[0] for key in file.keys(recursive=False)}
        except Exception:
            return f"not a ROOT file written by topcal (a {self.what})"
        if self.root_key not in keys:
            return f"not a ROOT file written by topcal (a {self.what}: no {self.root_key})"
        return None


def refuse_protected(path: str | Path) -> None:
    """OutputError when ``path`` is the working directory, a folder above it, the home folder or the root:
    an output is never written over them (a symbolic link there is itself replaced, so it is allowed)."""
    given = Path(path)
    if given.is_symlink():
        return
    out = given.resolve()
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        where = "the working directory" if out == cwd else "a folder above the working directory"
        raise OutputError(f"{path}: is {where}; an output never replaces it, choose a new folder")
    if out == Path.home().resolve() or out == Path(out.anchor):
        raise OutputError(f"{path}: is {'the root' if out == Path(out.anchor) else 'the home'} folder; an output "
                          f"never replaces it, choose a new folder")


def refuse_foreign(path: str | Path, kind: OutputKind | None) -> None:
    """OutputError unless the existing ``path`` may be replaced: a symbolic link (replaced itself, its target
    untouched) or an output of ``kind``; without a ``kind`` only an empty directory."""
    path = Path(path)
    if path.is_symlink() or not path.exists():
        return
    refuse_protected(path)
    if kind is None:
        if path.is_dir() and not any(path.iterdir()):
            return
        raise OutputError(f"{path}: exists and is not replaceable; move it away first")
    reason = kind.refusal(path)
    if reason is not None:
        raise OutputError(f"{path}: {reason}; --overwrite replaces only a topcal {kind.what}, move it away first")


def check_output(path: str | Path, overwrite: bool, inputs: Iterable[str | Path] = (),
                 kind: OutputKind | None = None) -> Path:
    """Fail early, before any work, if ``path`` exists (without ``overwrite``; with it, when it is not an
    output of ``kind``: :func:`refuse_foreign`), is the working directory or a folder above it, its directory
    is not writable, or it is, contains or lies inside one of the ``inputs`` (with or without ``overwrite``:
    replacing it would destroy an input)."""
    path = Path(path)
    refuse_protected(path)
    refuse_overlap(path, inputs)
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise OutputError(f"{path}: output exists; pass --overwrite to replace it")
        refuse_foreign(path, kind)
    parent = path.absolute().parent
    if not parent.is_dir():
        raise OutputError(f"{parent}: output directory does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{parent}: output directory is not writable")
    return path


def claim_directory(path: str | Path, kind: OutputKind) -> Path:
    """Make sure the directory ``path``, which a command fills step by step and reuses to resume, is new,
    empty or one of ``kind`` (never the working directory, a folder above it, or a folder of other files);
    create it."""
    path = Path(path)
    refuse_protected(path)
    if path.exists() or path.is_symlink():
        reason = kind.refusal(path)
        if reason is not None:
            raise OutputError(f"{path}: {reason}; choose a new folder for a topcal {kind.what}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def refuse_overlap(path: str | Path, inputs: Iterable[str | Path]) -> None:
    """OutputError when the output ``path`` is, contains or lies inside an input (symbolic links resolved)."""
    out = Path(path).resolve()
    for given in inputs:
        inp = Path(given).resolve()
        if out == inp or out in inp.parents or inp in out.parents:
            relation = "is" if out == inp else ("contains" if out in inp.parents else "lies inside")
            raise OutputError(f"{path}: the output {relation} the input {given}; choose another output")


@contextlib.contextmanager
def atomic_output(path: str | Path, overwrite: bool = False, inputs: Iterable[str | Path] = (),
                  kind: OutputKind | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on any error it is removed.

    Works for files and directories alike, so an interrupted run never leaves an output that looks complete.
    The existence check is made again at the end: an output that appeared during the run (another run into
    the same place) is never replaced without ``overwrite``, nor, with it, when it is not of ``kind``.
    """
    path = check_output(path, overwrite, inputs, kind)
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    publish(tmp, path, overwrite, kind)


def temporary_name(path: Path) -> Path:
    """A hidden sibling ``.NAME.tmp-PID-XXXXXXXX`` of ``path``: the PID lets a later run find dead runs' litter."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` left by runs on this machine whose process no longer exists."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.tmp-*-*"):
        try:
            pid = int(tmp.name.rsplit(".tmp-", 1)[1].split("-")[0])
        except ValueError:
            continue
        if not _alive(pid):
            _remove(tmp)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(tmp: Path, path: Path, overwrite: bool, kind: OutputKind | None = None) -> None:
    """Rename the finished ``tmp`` to ``path``. Without ``overwrite`` an existing ``path`` (one that appeared
    since the start) is an error and ``tmp`` is removed; with it, ``path`` is replaced (a symbolic link itself,
    not what it points to) when it is an output of ``kind`` (:func:`refuse_foreign`, checked again here:
    it may have changed during the run)."""
    if path.exists() or path.is_symlink():
        if not overwrite:
            _remove(tmp)
            raise OutputError(f"{path}: output appeared while this run was writing it (another run?); "
                              f"nothing was replaced, pass --overwrite to replace it")
        try:
            refuse_foreign(path, kind)
        except OutputError:
            _remove(tmp)
            raise
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.is_symlink() and tmp.is_dir():
            path.unlink()
    os.replace(tmp, path)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
