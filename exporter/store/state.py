"""Sync state per (site, dataset) and the rules that read it: pure functions, no I/O.

What the warehouse stores for each (site, dataset) is small: the *cursor* (the end of the last
closed window; everything before it was fetched once), the *failed windows* (listed next run
until they commit), the last run's outcome, and which windows were committed by a run that did
not finish (so a restart does not fetch them again).  This module turns that into answers:

* :func:`refetch_from` - where the next run starts: ``cursor - lookback`` (late data is re-read).
* :func:`remaining_windows` - the planned windows a resumed run still has to fetch.
* :func:`subtract_window` - what is left of a failed window once part of it committed.
* :func:`gap_warning` / :func:`gap_warnings` - whose uncovered history is getting close to the
  server's retention horizon (Webex forgets after 90 days; what we landed is the only copy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol, TypeVar

from ..model.windows import Window

__all__ = [
    "REST_SWITCH_NOTE",
    "DatasetState",
    "FailedWindow",
    "GapWarning",
    "LastRun",
    "UnverifiedWindow",
    "gap_warning",
    "gap_warnings",
    "refetch_from",
    "remaining_windows",
    "subtract_window",
]


#: How ``sync_state.unavailable`` begins once an ``auto`` site switched a dataset from a retired
#: XML operation to REST.  Unlike a retirement with nowhere to go, a switch is not disproved by
#: a later commit (those commits come from REST): it stays until someone changes the config.
REST_SWITCH_NOTE = "XML operation retired; exported through the REST APIs"


class _Span(Protocol):
    """Anything with a UTC ``start`` (inclusive) and ``end`` (exclusive)."""

    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...


S = TypeVar("S", bound=_Span)


@dataclass(frozen=True, slots=True)
class FailedWindow:
    """A window that could not be completed; it is retried every run until it commits."""

    window: Window
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class UnverifiedWindow:
    """A window that landed although no listing of it could be verified complete (its rows
    carry ``_verified = false``); it is listed again every run until a listing verifies it or it
    leaves the retention."""

    window: Window
    problem: str
    attempts: int
    first_seen_at: datetime
    last_seen_at: datetime
    commit_id: int


@dataclass(frozen=True, slots=True)
class LastRun:
    """The most recent run that finished for one (site, dataset)."""

    run_id: str
    finished_at: datetime | None
    outcome: str


@dataclass(frozen=True, slots=True)
class DatasetState:
    """Everything the pipeline needs to plan one (site, dataset).

    ``cursor``: end of the last closed window (None: nothing landed yet).
    ``failed_windows``: windows to retry, oldest first (``failures`` has the details).
    ``unverified``: windows landed without a verified listing, to list again.
    ``resume_done``: windows committed by runs that did not finish (crashed or interrupted) since
    the last finished run; a resumed run skips them (see :func:`remaining_windows`).
    """

    site: str
    dataset: str
    cursor: datetime | None = None
    failed_windows: tuple[Window, ...] = ()
    failures: tuple[FailedWindow, ...] = ()
    last_run: LastRun | None = None
    resume_done: tuple[Window, ...] = ()
    last_commit_at: datetime | None = None
    lookback_days: int = 3
    unverified: tuple[UnverifiedWindow, ...] = ()
    unavailable: str | None = None  # the site does not serve this dataset now (retired operation)
    #: When an ``auto`` site switched this dataset from XML to REST (the XML cursor then; None:
    #: no switch, or XML had landed nothing when it happened).
    rest_switched_at: datetime | None = None

    @property
    def switched_to_rest(self) -> bool:
        """Whether an ``auto`` site switched this dataset to REST (see :data:`REST_SWITCH_NOTE`)."""
        return (self.unavailable or "").startswith(REST_SWITCH_NOTE)

    @property
    def unverified_windows(self) -> tuple[Window, ...]:
        """Windows landed unverified, to list again (see :class:`UnverifiedWindow`)."""
        return tuple(u.window for u in self.unverified)

    def refetch_from(self) -> datetime | None:
        """``cursor - lookback``: where the next normal run starts (None: nothing landed yet)."""
        return refetch_from(self.cursor, self.lookback_days)


@dataclass(frozen=True, slots=True)
class GapWarning:
    """History that is not landed yet and will soon be (or already is being) lost upstream.

    ``since`` is the oldest instant not covered (None: nothing was ever exported, so everything
    older than the retention horizon is already gone); ``days_left`` is how long until the server
    starts dropping the uncovered part (0 or less: it is dropping it now).
    """

    site: str
    dataset: str
    reason: str
    since: datetime | None
    age_days: float
    days_left: float
    message: str = field(default="")

    def as_dict(self) -> dict[str, object]:
        """Plain values for logs and JSON (times as ISO-8601)."""
        out = asdict(self)
        out["since"] = self.since.isoformat() if self.since else None
        return out


def refetch_from(cursor: datetime | None, lookback_days: int) -> datetime | None:
    """Where the next run starts re-fetching: ``cursor - lookback_days`` (late rows land late)."""
    if cursor is None:
        return None
    return cursor - timedelta(days=lookback_days)


def _covered(window: _Span, spans: Sequence[_Span]) -> bool:
    """Whether ``spans`` (any order, may overlap) cover ``[window.start, window.end)`` entirely."""
    point = window.start
    for span in sorted(spans, key=lambda s: s.start):
        if span.start > point:
            break
        if span.end > point:
            point = span.end
            if point >= window.end:
                return True
    return point >= window.end


def remaining_windows(planned: Iterable[S], done: Sequence[_Span]) -> list[S]:
    """The planned windows not entirely covered by ``done`` (windows already committed).

    A planned window that is only partly covered is kept whole: fetching it again is safe
    (landing is idempotent) and simpler than fetching a fragment.
    """
    return [w for w in planned if not _covered(w, done)]


def subtract_window(failed: Window, committed: _Span) -> list[Window]:
    """What is left of ``failed`` after ``committed`` landed (0, 1 or 2 windows).

    A failed window that the pipeline split and retried half by half is cleared piece by piece.
    """
    if committed.end <= failed.start or committed.start >= failed.end:
        return [failed]
    left: list[Window] = []
    if committed.start > failed.start:
        left.append(Window(failed.start, committed.start))
    if committed.end < failed.end:
        left.append(Window(committed.end, failed.end))
    return left


def gap_warning(state: DatasetState, now: datetime, retention_days: int, gap_warning_days: int) -> GapWarning | None:
    """A warning when the oldest uncovered instant of ``state`` is older than ``gap_warning_days``.

    Uncovered: everything after the cursor (or everything, with no cursor) and every failed window.
    """
    now = now.astimezone(timezone.utc)
    threshold = now - timedelta(days=gap_warning_days)
    candidates: list[tuple[datetime | None, str]] = []
    if state.cursor is None:
        candidates.append((None, "never exported"))
    elif state.cursor < threshold:
        candidates.append((state.cursor, "cursor behind"))
    for window in state.failed_windows:
        if window.start < threshold:
            candidates.append((window.start, "failed window"))
    if not candidates:
        return None
    # The oldest uncovered instant decides; "never exported" is older than anything.
    since, reason = min(candidates, key=lambda c: c[0] or datetime.min.replace(tzinfo=timezone.utc))
    horizon = now - timedelta(days=retention_days)
    oldest = since or horizon
    age = (now - oldest).total_seconds() / 86_400
    left = retention_days - age
    if since is None:
        message = (
            f"{state.site}/{state.dataset}: nothing exported yet; history older than {retention_days} days "
            "is already gone upstream and more is lost every day until it runs"
        )
    else:
        message = f"{state.site}/{state.dataset}: history since {since.isoformat()} is not landed ({reason}); " + (
            f"the server starts dropping it in {left:.1f} days" if left > 0 else "the server is dropping it now"
        )
    return GapWarning(state.site, state.dataset, reason, since, round(age, 3), round(left, 3), message)


def gap_warnings(
    states: Iterable[DatasetState], now: datetime, retention_days: int, gap_warning_days: int
) -> list[GapWarning]:
    """:func:`gap_warning` for each state, most urgent (fewest days left) first."""
    found = [w for s in states if (w := gap_warning(s, now, retention_days, gap_warning_days))]
    return sorted(found, key=lambda w: (w.days_left, w.site, w.dataset))
