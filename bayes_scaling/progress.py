"""Progress of long work, reported between compiled steps (never from inside one: a host callback in a compiled
program would keep it out of the persistent compilation cache).

Work that takes long reports ``(what, done, total)``: sampling per chain (per group of chains when they run
on several devices at once), batches of families per chunk, reports per figure and per family. Nothing is
shown unless a reporter is active: ``with reporting():`` (the CLI does this on a terminal; ``--quiet`` turns it
off, ``--progress`` forces it on when output is not a terminal), or ``sample_posterior(..., progress_bar=True)``.

>>> seen = []
>>> with reporting(lambda what, done, total: seen.append((what, done, total))):
...     report("sampling chains", 1, 4)
>>> seen
[('sampling chains', 1, 4)]
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

__all__ = ["reporting", "report", "Printer", "active"]

_CURRENT: list = []


class Printer:
    """Writes progress to a stream (default stderr): one line rewritten in place on a terminal, one line per
    step otherwise, each with the time since the task started."""

    def __init__(self, stream=None):
        self.stream = stream
        self.started: dict[str, float] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        stream = self.stream or sys.stderr
        now = time.perf_counter()
        t0 = self.started.setdefault(what, now)
        text = f"{what}: {done}/{total} ({now - t0:.1f} s)"
        if getattr(stream, "isatty", lambda: False)():
            stream.write("\r\033[K" + text + ("\n" if done >= total else ""))
        else:
            stream.write(text + "\n")
        stream.flush()
        if done >= total:
            self.started.pop(what, None)


@contextlib.contextmanager
def reporting(callback: Callable[[str, int, int], None] | None = None):
    """Report progress to ``callback`` (default: a :class:`Printer` on stderr) inside the block."""
    _CURRENT.append(callback or Printer())
    try:
        yield _CURRENT[-1]
    finally:
        _CURRENT.pop()


def active() -> bool:
    """Whether a reporter is listening (work may then split itself into reported steps)."""
    return bool(_CURRENT)


def report(what: str, done: int, total: int) -> None:
    """Tell the active reporter, if any, that ``done`` of ``total`` steps of ``what`` are finished."""
    if _CURRENT:
        _CURRENT[-1](what, int(done), int(total))
