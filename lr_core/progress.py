"""Progress reporting policy, in one place: a bar on a terminal, a periodic status line elsewhere.

Every long loop of the suite (Lucene indexing, corpus encoding, the vocabulary cache, negative
mining, training, evaluation) reports through :func:`progress`::

    for batch in progress(batches, total=len(batches), desc="encoding corpus", unit="batch"):
        ...
    with progress(total=n_docs, desc="indexing", unit="doc") as bar:
        bar.update(len(chunk))

Bars (tqdm, on stderr) are drawn only when :func:`bars_enabled`: stderr is a terminal, the job is
not a Slurm job (``SLURM_JOB_ID`` unset; Slurm logs are files where a redrawn bar becomes
thousands of lines) and nobody switched them off (``lr --no-progress``, ``LR_NO_PROGRESS=1``).
Otherwise the same calls write one status line (``desc: 1200/5000 (24%) 35 s elapsed``) at most
every :data:`STATUS_INTERVAL_S` seconds, and one line when a loop of 5 s or more ends, to stderr -- unless
``lr --quiet`` asked for silence (:func:`configure`).

:data:`NOTICE` is the log level of the few lines a user must see at the default verbosity
(e.g. "resuming from ... at step N"); ``lr`` logs at NOTICE by default, INFO with ``-v``.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Iterable, Iterator

__all__ = ["NOTICE", "STATUS_INTERVAL_S", "configure", "bars_enabled", "status_enabled", "progress"]

NOTICE = 25  # between INFO (20) and WARNING (30)
logging.addLevelName(NOTICE, "NOTICE")

STATUS_INTERVAL_S = float(os.environ.get("LR_STATUS_INTERVAL", "30"))

FINAL_LINE_AFTER_S = 5.0  # loops shorter than this end silently

_state = {"disabled": False, "quiet": False}


def configure(disabled: bool | None = None, quiet: bool | None = None) -> None:
    """Set the process-wide policy (the ``lr`` command line calls this from its global flags)."""
    if disabled is not None:
        _state["disabled"] = disabled
    if quiet is not None:
        _state["quiet"] = quiet


def _env_off() -> bool:
    return os.environ.get("LR_NO_PROGRESS", "").strip() not in ("", "0")


def bars_enabled(stream=None) -> bool:
    """True when redrawn bars are appropriate: an interactive terminal outside Slurm, not disabled."""
    stream = stream if stream is not None else sys.stderr
    if _state["disabled"] or _state["quiet"] or _env_off() or os.environ.get("SLURM_JOB_ID"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def status_enabled() -> bool:
    """True when the periodic status lines are written (everything except ``--quiet``)."""
    return not _state["quiet"]


class StatusLine:
    """The no-bar fallback: tqdm's small interface (update, set_postfix_str, close, iteration)."""

    def __init__(self, iterable=None, total=None, desc="", unit="it", interval=None, stream=None, silent=False,
                 clock=time.monotonic):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc or "progress", unit
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            self.total = len(iterable)
        self.n = 0
        self.postfix = ""
        self.interval = STATUS_INTERVAL_S if interval is None else interval
        self.stream = stream
        self.clock = clock
        self.start = self.last = clock()
        self.closed = False
        self.silent = silent

    def _write(self, final: bool = False) -> None:
        if self.silent or not status_enabled():
            return
        elapsed = self.clock() - self.start
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        rate = f", {self.n / elapsed:.1f} {self.unit}/s" if elapsed > 0 and self.n else ""
        tail = f" {self.postfix}" if self.postfix else ""
        end = " done" if final else ""
        stream = self.stream if self.stream is not None else sys.stderr
        print(f"{self.desc}: {done} {self.unit}{pct}{end}, {elapsed:.0f} s{rate}{tail}", file=stream, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self._write()

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            # a closing line only for loops long enough to matter (short ones would flood the log)
            if self.clock() - self.start >= min(self.interval, FINAL_LINE_AFTER_S):
                self._write(final=True)

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it",
             leave: bool = False, interval: float | None = None, enabled: bool = True):
    """A tqdm bar when :func:`bars_enabled`, else a :class:`StatusLine`; iterate it or use ``update``.

    ``enabled=False`` (a caller's own ``progress=False``) gives a silent object with the same interface.
    """
    if not enabled:
        return StatusLine(iterable, total=total, desc=desc, unit=unit, silent=True)
    if bars_enabled():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, file=sys.stderr)
    return StatusLine(iterable, total=total, desc=desc, unit=unit, interval=interval)
