"""Progress for people at a terminal: per dataset, windows and pages done out of pages known from
``total``, records/s, ETA and time spent waiting on throttles.  Off a terminal this is silent —
the structured log has one event per window instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["Progress", "DatasetProgress"]

_REDRAW_SECONDS = 0.25


@dataclass(slots=True)
class DatasetProgress:
    """Counters for one (site, dataset); ``page`` is the paging callback."""

    site: str
    dataset: str
    windows: int
    owner: Progress | None = None
    windows_done: int = 0
    pages_done: int = 0
    pages_known: dict[int, int] = field(default_factory=dict)
    records: int = 0
    _by_listing: dict[int, tuple[int, int]] = field(default_factory=dict)  # key -> (pages, records)
    started: float = field(default_factory=time.monotonic)
    finished: bool = False

    def page(self, done: int, known: int, records: int, window_key: int = 0) -> None:
        """Called by paging after each page: pages done / known for the current window."""
        self.pages_done += 1
        # ``known`` counts pages of the windows listed so far (it grows as windows start).
        self.pages_known[window_key] = max(known, self.pages_known.get(window_key, 0))
        self.records += records
        pages, rows = self._by_listing.get(window_key, (0, 0))
        self._by_listing[window_key] = (pages + 1, rows + records)
        if self.owner:
            self.owner.redraw()

    def forget(self, window_key: int) -> None:
        """Take back the pages and records of a listing that was abandoned and is being done
        again another way (a packed listing that failed, listed again window by window)."""
        pages, rows = self._by_listing.pop(window_key, (0, 0))
        self.pages_done -= pages
        self.records -= rows
        self.pages_known.pop(window_key, None)

    def window_done(self, records: int, windows: int = 1, window_key: int | None = None) -> None:
        """A listing committed, covering ``windows`` planned windows (several when packed): the
        records it landed replace those its pages counted (rescans and bridge pages count rows
        that are not landed twice)."""
        self.windows_done += windows
        if window_key is not None and window_key in self._by_listing:
            pages, rows = self._by_listing[window_key]
            self.records += records - rows
            self._by_listing[window_key] = (pages, records)
        elif window_key is not None:  # landed from rows no page of its own counted (a failed pack's)
            self.records += records
            self._by_listing[window_key] = (0, records)
        if self.owner:
            self.owner.redraw()

    def done(self) -> None:
        """The dataset has no more windows in this run."""
        self.finished = True
        if self.owner:
            self.owner.redraw(force=True)

    def line(self, throttle_wait: float) -> str:
        """One status line."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.records / elapsed
        fraction = self.windows_done / self.windows if self.windows else 1.0
        eta = "done" if self.finished else (_clock(elapsed / fraction - elapsed) if fraction > 0 else "--:--")
        return (
            f"{self.site}/{self.dataset:<20} windows {self.windows_done:>4}/{self.windows:<4} "
            f"pages {self.pages_done:>6}/{sum(self.pages_known.values()):<6} records {self.records:>9} "
            f"{rate:>8.0f}/s ETA {eta:>6} "
            f"throttle-wait {throttle_wait:>5.0f}s"
        )


def _clock(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """A set of dataset progress lines redrawn in place on a terminal."""

    def __init__(self, stream: TextIO | None, *, throttle_wait: Callable[[str], float] | None = None) -> None:
        self._stream = stream
        self._datasets: list[DatasetProgress] = []
        self._drawn = 0
        self._last = 0.0
        self.throttle_wait: Callable[[str], float] = throttle_wait or (lambda site: 0.0)

    @classmethod
    def disabled(cls) -> Progress:
        """A progress that prints nothing."""
        return cls(None)

    @classmethod
    def auto(cls) -> Progress:
        """Live lines on stderr when it is a terminal, otherwise nothing."""
        return cls(sys.stderr if sys.stderr.isatty() else None)

    def dataset(self, site: str, dataset: str, *, windows: int) -> DatasetProgress:
        """Start tracking one dataset."""
        tracker = DatasetProgress(site, dataset, windows, owner=self if self._stream else None)
        self._datasets.append(tracker)
        return tracker

    def redraw(self, *, force: bool = False) -> None:
        """Repaint all lines (rate-limited)."""
        if self._stream is None:
            return
        now = time.monotonic()
        if not force and now - self._last < _REDRAW_SECONDS:
            return
        self._last = now
        lines = [d.line(self.throttle_wait(d.site)) for d in self._datasets]
        out = "\x1b[F" * self._drawn + "".join(f"\x1b[2K{line}\n" for line in lines)
        self._stream.write(out)
        self._stream.flush()
        self._drawn = len(lines)

    def close(self) -> None:
        """Final repaint."""
        self.redraw(force=True)
