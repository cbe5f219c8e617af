"""Pure sync-state rules: resume, failed-window arithmetic, gap warnings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from exporter.model.windows import Window
from exporter.store.state import (
    DatasetState,
    gap_warning,
    gap_warnings,
    refetch_from,
    remaining_windows,
    subtract_window,
)

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def w(a: int, b: int) -> Window:
    """Window from hour a to hour b after T0."""
    return Window(T0 + a * H, T0 + b * H)


def test_refetch_from_goes_back_by_lookback() -> None:
    assert refetch_from(None, 3) is None
    assert refetch_from(T0, 3) == T0 - timedelta(days=3)
    assert DatasetState("s", "d", cursor=T0, lookback_days=2).refetch_from() == T0 - timedelta(days=2)


def test_remaining_windows_skips_only_fully_covered() -> None:
    planned = [w(0, 24), w(24, 48), w(48, 72), w(72, 96)]
    done = [w(36, 48), w(0, 24), w(24, 36), w(50, 72)]  # unsorted, one split in halves, one partial
    assert remaining_windows(planned, done) == [w(48, 72), w(72, 96)]
    assert remaining_windows(planned, []) == planned
    assert remaining_windows([], done) == []


def test_subtract_window_cases() -> None:
    failed = w(0, 24)
    assert subtract_window(failed, w(30, 40)) == [failed]  # disjoint
    assert subtract_window(failed, w(24, 30)) == [failed]  # touching is disjoint ([s, e))
    assert subtract_window(failed, w(0, 24)) == []
    assert subtract_window(failed, w(-5, 30)) == []
    assert subtract_window(failed, w(0, 12)) == [w(12, 24)]
    assert subtract_window(failed, w(12, 30)) == [w(0, 12)]
    assert subtract_window(failed, w(6, 12)) == [w(0, 6), w(12, 24)]


@given(st.integers(0, 50), st.integers(1, 50), st.integers(-10, 60), st.integers(1, 60))
def test_subtract_window_partitions_time(a: int, la: int, b: int, lb: int) -> None:
    failed, committed = w(a, a + la), w(b, b + lb)
    left = subtract_window(failed, committed)
    for hour in range(a, a + la):
        moment = T0 + hour * H
        in_left = any(p.contains(moment) for p in left)
        assert in_left != committed.contains(moment)  # every hour either still failed or committed
    assert all(failed.start <= p.start < p.end <= failed.end for p in left)


def test_no_warning_for_a_current_dataset() -> None:
    state = DatasetState("acme", "meeting_usage", cursor=T0 - timedelta(days=1))
    assert gap_warning(state, T0, 90, 75) is None


def test_warning_when_cursor_falls_behind() -> None:
    state = DatasetState("acme", "meeting_usage", cursor=T0 - timedelta(days=80))
    warning = gap_warning(state, T0, 90, 75)
    assert warning is not None
    assert warning.reason == "cursor behind"
    assert warning.since == T0 - timedelta(days=80)
    assert warning.days_left == 10
    assert "10.0 days" in warning.message
    assert warning.as_dict()["since"] == (T0 - timedelta(days=80)).isoformat()


def test_warning_for_old_failed_window_even_with_current_cursor() -> None:
    old = Window(T0 - timedelta(days=88), T0 - timedelta(days=87))
    state = DatasetState("acme", "meeting_usage", cursor=T0, failed_windows=(old,))
    warning = gap_warning(state, T0, 90, 75)
    assert warning is not None and warning.reason == "failed window"
    assert warning.days_left == 2


def test_never_exported_is_already_losing_data() -> None:
    warning = gap_warning(DatasetState("acme", "scheduled_sessions"), T0, 90, 75)
    assert warning is not None and warning.reason == "never exported"
    assert warning.since is None and warning.days_left == 0


def test_gap_warnings_most_urgent_first() -> None:
    states = [
        DatasetState("a", "meeting_usage", cursor=T0 - timedelta(days=76)),
        DatasetState("b", "meeting_usage", cursor=T0 - timedelta(days=89)),
        DatasetState("c", "meeting_usage", cursor=T0),
    ]
    found = gap_warnings(states, T0, 90, 75)
    assert [x.site for x in found] == ["b", "a"]
