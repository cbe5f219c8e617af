"""Planning a run, before any request: which windows of a dataset to fetch (from the cursor,
lookback, retention, ``--since``/``--until`` and earlier failures), whether the options name real
sites and datasets, and how contiguous windows are cut into runs and packed into listings; while a run goes, how far the
cursor may move (:class:`CursorPlan`)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from ..config import ALL_DATASETS, Settings
from ..errors import ConfigError
from ..model.dataset_spec import Dataset
from ..model.runs import RunOptions
from ..model.windows import Window, clamp_to_retention, plan_windows

__all__ = ["plan_dataset_windows", "validate_options", "contiguous_runs", "pack_windows", "CursorPlan"]


def plan_dataset_windows(
    settings: Settings,
    options: RunOptions,
    cursor: datetime | None,
    failed: Iterable[Window],
    now: datetime,
    resume_done: Iterable[Window] = (),
    dataset: Dataset | None = None,
) -> tuple[list[Window], bool]:
    """The windows to fetch for one dataset, and whether they may advance the cursor.

    Default range: from (cursor - lookback), or the retention limit when nothing landed yet, to
    now.  ``--since``/``--until`` narrow it; an explicit range that starts after the cursor does
    not move the cursor (it would jump over history we never fetched).  Failed windows from earlier
    runs are added when the retention still holds them.  Windows a crashed or interrupted run
    already committed (``resume_done``) are skipped, so a resumed run does not fetch them again.
    """
    export = settings.export
    oldest = now - timedelta(days=export.retention_days)
    if options.backfill or cursor is None:
        start = oldest
    else:
        start = cursor - timedelta(days=export.lookback_for(dataset.name) if dataset else export.lookback_days)
    advances = True
    if options.since is not None:
        start = options.since
        advances = cursor is None or options.since <= cursor or options.backfill
    end = options.until or now
    if dataset is not None and dataset.looks_ahead and options.until is None:
        # Scheduled sessions exist before they happen; they are re-read every run as plans change.
        end = now + timedelta(days=export.scheduled_ahead_days)
    start = clamp_to_retention(start, now, export.retention_days)
    done = [] if options.backfill else list(resume_done)
    windows = [
        w for w in (plan_windows(start, end, export.window_hours) if start < end else [])
        if not any(d.start <= w.start and w.end <= d.end for d in done)
    ]
    planned = set(windows)
    retry = [w for w in failed if w not in planned and w.end > oldest]
    return sorted(retry, key=lambda w: w.start) + windows, advances


def validate_options(settings: Settings, options: RunOptions) -> None:
    """Unknown sites or datasets, or an empty range, fail before any request is sent."""
    problems = []
    for name in options.datasets or ():
        if name not in ALL_DATASETS:
            hint = difflib.get_close_matches(name, ALL_DATASETS, n=1)
            problems.append(f"--dataset: unknown dataset {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                            + f"; known: {', '.join(ALL_DATASETS)}")
    known_sites = [s.name for s in settings.sites]
    for name in options.sites or ():
        if name not in known_sites:
            problems.append(f"--site: no site {name!r} in the config; configured: {', '.join(known_sites)}")
    if options.since and options.until and options.since >= options.until:
        problems.append(f"--since {options.since.isoformat()} is not before --until {options.until.isoformat()}")
    if problems:
        raise ConfigError(problems)


def contiguous_runs(windows: list[Window]) -> list[list[Window]]:
    """Split sorted windows into runs without gaps between them."""
    runs: list[list[Window]] = []
    for window in sorted(windows, key=lambda w: w.start):
        if runs and runs[-1][-1].end == window.start:
            runs[-1].append(window)
        else:
            runs.append([window])
    return runs


def pack_windows(windows: list[Window], rows: float, target_rows: int) -> list[list[Window]]:
    """Consecutive ``windows`` (holding about ``rows`` rows in all) cut into as few listings as keep
    each near ``target_rows`` rows, the windows spread evenly over them."""
    if not windows:
        return []
    count = max(1, min(len(windows), math.ceil(rows / max(1, target_rows))))
    size, extra = divmod(len(windows), count)
    packs, at = [], 0
    for index in range(count):
        step = size + (1 if index < extra else 0)
        packs.append(windows[at : at + step])
        at += step
    return packs


class CursorPlan:
    """Moves the cursor over the longest contiguous prefix of finished windows (committed or
    recorded as failed), never backwards, never past ``limit`` (``now - settle_hours``)."""

    def __init__(self, windows: list[Window], cursor: datetime | None, advances: bool, limit: datetime) -> None:
        self._pending = sorted(windows, key=lambda w: w.start)
        self._planned = tuple(self._pending)
        self._finished: set[Window] = set()
        self._cursor = cursor
        self._advances = advances
        self._limit = limit

    def covered(self, window: Window) -> int:
        """How many planned windows ``window`` covers (at least 1: a retried failed window counts)."""
        return max(1, sum(1 for w in self._planned if window.start <= w.start and w.end <= window.end))

    def finish(self, window: Window) -> datetime | None:
        """Mark ``window`` (one planned window, or a range covering several) finished; the new
        cursor value, or None when it does not move."""
        self._finished.add(window)
        self._finished.update(w for w in self._pending if window.start <= w.start and w.end <= window.end)
        if not self._advances:
            return None
        moved = None
        while self._pending and self._pending[0] in self._finished:
            end = min(self._pending.pop(0).end, self._limit)
            if self._cursor is None or end > self._cursor:
                self._cursor = moved = end
        return moved
