"""Windows: half-open UTC intervals on a grid, splitting, and the retention clamp."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.model.windows import RETENTION_MARGIN, Window, clamp_to_retention, plan_windows

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_window_normalises_to_utc_whole_seconds_and_refuses_naive_or_empty() -> None:
    paris = datetime(2026, 7, 1, 2, 0, 0, 500_000, tzinfo=ZoneInfo("Europe/Paris"))
    window = Window(paris, paris + timedelta(hours=1))
    assert window.start == utc(2026, 7, 1, 0, 0, 0) and window.start.tzinfo is UTC
    assert str(window) == "[2026-07-01T00:00:00Z, 2026-07-01T01:00:00Z)"
    assert window.last_second == utc(2026, 7, 1, 0, 59, 59)
    with pytest.raises(ValueError, match="naive"):
        Window(datetime(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(ValueError, match="empty window"):
        Window(utc(2026, 1, 2), utc(2026, 1, 2))
    assert window.contains(utc(2026, 7, 1, 0, 59, 59)) and not window.contains(window.end)


def test_split_halves_on_whole_seconds_and_one_second_windows_cannot_split() -> None:
    left, right = Window(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 3)).split()
    assert (left.end, right.start) == (utc(2026, 1, 1, 0, 0, 1), utc(2026, 1, 1, 0, 0, 1))
    one = Window(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 1))
    assert not one.can_split()
    with pytest.raises(ValueError, match="cannot be split"):
        one.split()


def test_plan_windows_aligns_to_the_utc_grid_and_clips_the_ends() -> None:
    windows = plan_windows(utc(2026, 3, 1, 5, 30), utc(2026, 3, 3, 2), 24)
    assert windows == [
        Window(utc(2026, 3, 1, 5, 30), utc(2026, 3, 2)),
        Window(utc(2026, 3, 2), utc(2026, 3, 3)),
        Window(utc(2026, 3, 3), utc(2026, 3, 3, 2)),
    ]
    six = plan_windows(utc(2026, 3, 1, 1), utc(2026, 3, 1, 13), 6)
    assert [w.start.hour for w in six] == [1, 6, 12]
    assert plan_windows(utc(2026, 3, 2), utc(2026, 3, 1), 24) == []
    with pytest.raises(ValueError):
        plan_windows(utc(2026, 3, 1), utc(2026, 3, 2), 0)


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
    span=st.integers(min_value=0, max_value=40 * 86_400),
    hours=st.sampled_from([1, 2, 3, 5, 6, 8, 12, 24, 36, 48, 168]),
)
def test_planned_windows_tile_the_range_exactly(start: datetime, span: int, hours: int) -> None:
    start = start.replace(tzinfo=UTC, microsecond=0)
    end = start + timedelta(seconds=span)
    windows = plan_windows(start, end, hours)
    if span == 0:
        assert windows == []
        return
    assert windows[0].start == start and windows[-1].end == end
    for a, b in zip(windows, windows[1:], strict=False):
        assert a.end == b.start  # no gap, no overlap: each record in exactly one window
        assert int(a.end.timestamp()) % (hours * 3600) == 0  # inner boundaries on the grid
    assert all(w.duration <= timedelta(hours=hours) for w in windows)


def test_clamp_to_retention_keeps_a_margin_inside_the_horizon() -> None:
    now = utc(2026, 11, 20, 12, 0, 0)
    old = utc(2026, 1, 1)
    clamped = clamp_to_retention(old, now, 90)
    assert clamped == now - timedelta(days=90) + RETENTION_MARGIN
    recent = utc(2026, 11, 1)
    assert clamp_to_retention(recent, now, 90) == recent
    odd = datetime(2026, 11, 20, 12, 0, 0, 250_000, tzinfo=UTC)
    assert clamp_to_retention(old, odd, 90).microsecond == 0
    assert clamp_to_retention(old, odd, 90) > odd - timedelta(days=90)
