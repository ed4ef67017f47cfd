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


def progress_bar(total: int, desc: str, unit: str = "it", enabled: bool = True, initial: int = 0):
    """A tqdm bar on a terminal; elsewhere (logs, batch jobs) one line per 10% of ``total`` on standard
    error; nothing when not ``enabled``. Used as a context manager or closed with ``close()``."""
    from tqdm.auto import tqdm

    if not enabled:
        return tqdm(total=total, disable=True)
    if show_progress(True):
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr)
    return LineProgress(total, desc, unit, initial)


def finish_early(bar, text: str) -> None:
    """End a progress bar before its total, saying why (``text``, e.g. "stopped early at epoch 60 (best 40)"):
    a tqdm bar is completed at its current count with ``text`` beside it, a :class:`LineProgress` prints
    ``desc: text``; a disabled bar prints nothing."""
    if isinstance(bar, LineProgress):
        print(f"{bar.desc}: {text}", file=sys.stderr, flush=True)
    elif not getattr(bar, "disable", True):
        bar.total = bar.n
        bar.set_postfix_str(text, refresh=True)


class LineProgress:
    """``desc: 40% (400/1000 ev)`` lines at every 10% step, for logs that cannot take carriage returns."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0):
        self.total, self.desc, self.unit, self.n = max(int(total), 1), desc, unit, int(initial)
        self.step = self.n * 10 // self.total
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        step = min(self.n * 10 // self.total, 10)
        if step > self.step:
            self.step = step
            print(f"{self.desc}: {10 * step}% ({self.n}/{self.total} {self.unit}){self.postfix}", file=sys.stderr,
                  flush=True)

    def set_postfix(self, **values) -> None:
        self.postfix = "".join(f", {k} {v}" for k, v in values.items())

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
