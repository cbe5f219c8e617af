"""Progress for people at a terminal: per dataset, windows done, pages done out of pages known
from ``total``, records, records/s, ETA and time spent waiting on throttles, drawn by rich's live
display: lines fit the terminal's width, log lines print above the display instead of through it.
Off a terminal this is silent: the structured log has one event per window instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["Progress", "DatasetProgress"]

_UPDATE_SECONDS = 0.25

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

    def fields(self) -> dict[str, Any]:
        """What the live display shows for this dataset."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return {"windows": f"{self.windows_done}/{self.windows}", "records": self.records,
                "rate": self.records / elapsed, "known": max(sum(self.pages_known.values()), self.pages_done, 1)}


def _clock(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """A live display of dataset progress on a terminal (nothing elsewhere)."""

    def __init__(self, stream: TextIO | None, *, throttle_wait: Callable[[str], float] | None = None,
                 width: int | None = None) -> None:
        self._stream = stream
        self._width = width  # None: the terminal's
        self._datasets: list[DatasetProgress] = []
        self._tasks: dict[int, Any] = {}
        self._live: Any = None
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

    def _start(self) -> Any:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Live

        # Always our stream (stderr on a terminal): the run's summary on stdout stays clean.
        console = Console(file=self._stream, force_terminal=True, width=self._width)
        self._live = Live(
            TextColumn("{task.description}", style="bold"),
            BarColumn(bar_width=10),
            TextColumn("{task.fields[windows]:>7} win"),
            TextColumn("{task.completed:>5.0f}/{task.total:<5.0f} pages"),
            TextColumn("{task.fields[records]:>9,} rec {task.fields[rate]:>6,.0f}/s"),
            TimeRemainingColumn(compact=True, elapsed_when_finished=True),
            TextColumn("wait {task.fields[wait]:>3.0f}s"),
            console=console, refresh_per_second=4, transient=False,
            # Log lines (written to sys.stderr at emit time, see logs.configure_logging) print above the display.
            redirect_stderr=True, redirect_stdout=True,
        )
        self._live.start()
        return self._live

    def dataset(self, site: str, dataset: str, *, windows: int) -> DatasetProgress:
        """Start tracking one dataset."""
        tracker = DatasetProgress(site, dataset, windows, owner=self if self._stream else None)
        self._datasets.append(tracker)
        if self._stream is not None:
            live = self._live or self._start()
            self._tasks[id(tracker)] = live.add_task(f"{site}/{dataset}", total=1, completed=0, windows="0/0",
                                                     records=0, rate=0.0, wait=0.0)
        return tracker

    def redraw(self, *, force: bool = False) -> None:
        """Update the live display (rate-limited; rich repaints it on its own clock)."""
        if self._live is None:
            return
        now = time.monotonic()
        if not force and now - self._last < _UPDATE_SECONDS:
            return
        self._last = now
        for tracker in self._datasets:
            f = tracker.fields()
            self._live.update(self._tasks[id(tracker)], completed=min(tracker.pages_done, f["known"]), total=f["known"],
                              windows=f["windows"], records=f["records"], rate=f["rate"],
                              wait=self.throttle_wait(tracker.site))
            if tracker.finished:
                self._live.update(self._tasks[id(tracker)], completed=f["known"], total=f["known"])

    def close(self) -> None:
        """Final repaint; the display stays on the terminal above what follows."""
        if self._live is not None:
            self.redraw(force=True)
            self._live.stop()
            self._live = None
