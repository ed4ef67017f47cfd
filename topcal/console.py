"""What topcal prints: what is being done, where it went and the key numbers; nothing from the libraries.

* Progress bars only on a terminal (:func:`show_progress`); in logs and batch jobs the commands print their
  summary lines only.
* TensorFlow's and XLA's C++ start-up messages (CUDA plugin registration, oneDNN notices) and FastJet's
  banner are written by C++ straight to the process's file descriptors, past Python; :func:`silenced`
  redirects the descriptors while TensorFlow is imported and FastJet first clusters. ``topcal -v`` (or
  ``TOPCAL_VERBOSE=1``) lets everything through.
"""

from __future__ import annotations

import contextlib
import os
import sys

VERBOSE_ENV = "TOPCAL_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def show_progress(requested: bool = True) -> bool:
    """Progress bars when asked for and standard error is a terminal."""
    try:
        return requested and sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


@contextlib.contextmanager
def silenced(stdout: bool = True, stderr: bool = True):
    """Redirect the process's file descriptors 1 and 2 to /dev/null (C++ libraries print there directly)."""
    if verbose():
        yield
        return
    fds = [fd for fd, on in ((1, stdout), (2, stderr)) if on]
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = [os.dup(fd) for fd in fds]
    except OSError:  # no such descriptors (embedded interpreters)
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(null, fd)
        yield
    finally:
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


_FASTJET_BANNER_SHOWN = False


def fastjet_banner_once() -> contextlib.AbstractContextManager:
    """A context that swallows FastJet's banner, printed on the first clustering of the process."""
    global _FASTJET_BANNER_SHOWN
    if _FASTJET_BANNER_SHOWN:
        return contextlib.nullcontext()
    _FASTJET_BANNER_SHOWN = True
    return silenced(stdout=True, stderr=False)
