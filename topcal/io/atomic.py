"""Outputs that appear complete or not at all: write to a temporary name beside the target, rename at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from topcal.errors import OutputError


def check_output(path: str | Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> Path:
    """Fail early, before any work, if ``path`` exists (without ``overwrite``), its directory is not writable,
    or it is, contains or lies inside one of the ``inputs`` (with or without ``overwrite``: replacing it
    would destroy an input)."""
    path = Path(path)
    refuse_overlap(path, inputs)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputError(f"{path}: output exists; pass --overwrite to replace it")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise OutputError(f"{parent}: output directory does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{parent}: output directory is not writable")
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
def atomic_output(path: str | Path, overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on any error it is removed.

    Works for files and directories alike, so an interrupted run never leaves an output that looks complete.
    The existence check is made again at the end: an output that appeared during the run (another run into
    the same place) is never replaced without ``overwrite``.
    """
    path = check_output(path, overwrite, inputs)
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    publish(tmp, path, overwrite)


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


def publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Rename the finished ``tmp`` to ``path``. Without ``overwrite`` an existing ``path`` (one that appeared
    since the start) is an error and ``tmp`` is removed; with it, ``path`` is replaced (a symbolic link itself,
    not what it points to)."""
    if path.exists() or path.is_symlink():
        if not overwrite:
            _remove(tmp)
            raise OutputError(f"{path}: output appeared while this run was writing it (another run?); "
                              f"nothing was replaced, pass --overwrite to replace it")
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
