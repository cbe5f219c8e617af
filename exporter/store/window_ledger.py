"""The state DB's lists of windows still to fetch: failed windows and unverified windows.

The rules every change to them follows, in one place: a window commit clears the failed windows
it covers and retires the unverified landings a verified listing supersedes; a failure, a damaged
lake file and a state rebuild add failed windows.  :mod:`exporter.store.warehouse` (commits),
:mod:`exporter.store.lake_health` (damaged files) and :mod:`exporter.store.state_rebuild` (replaying commit
records) all go through these functions, inside their own transactions (``con``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from duckdb import DuckDBPyConnection

from ..model.windows import Window, clamp_to_retention
from . import state as state_rules
from .state_db import ts

__all__ = [
    "as_utc",
    "clear_failures",
    "merge_spans",
    "overlapping_failures",
    "record_failure",
    "record_unverified",
    "retention_horizon",
    "retire_verified",
]


def merge_spans(spans: Iterable[tuple[datetime, datetime]]) -> list[Window]:
    """Overlapping or touching ``(start, end)`` spans merged into windows, in order."""
    merged: list[list[datetime]] = []
    for start, end in sorted((as_utc(a), as_utc(b)) for a, b in spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [Window(a, b) for a, b in merged if a < b]


def retention_horizon(now: datetime, retention_days: int) -> datetime:
    """The oldest moment the server still safely holds (as the pipeline plans: retention minus a margin)."""
    return clamp_to_retention(now - timedelta(days=retention_days + 1), now, retention_days)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC."""
    return value.astimezone(timezone.utc)


def overlapping_failures(con: DuckDBPyConnection, site: str, dataset: str, window: Window) -> list[dict[str, Any]]:
    """The failed windows of (site, dataset) that overlap ``window``."""
    rows: list[dict[str, Any]] = (
        con.sql(
            "SELECT * FROM failed_windows WHERE site = ? AND dataset = ? "
            "AND window_start < CAST(? AS TIMESTAMPTZ) AND window_end > CAST(? AS TIMESTAMPTZ)",
            params=[site, dataset, ts(window.end), ts(window.start)],
        )
        .to_arrow_table()
        .to_pylist()
    )
    return rows


def clear_failures(con: DuckDBPyConnection, site: str, dataset: str, window: Window) -> None:
    """Remove ``window`` from the failed windows it overlaps, keeping the parts it does not cover."""
    rows = overlapping_failures(con, site, dataset, window)
    for row in rows:
        failed = Window(row["window_start"], row["window_end"])
        con.execute(
            "DELETE FROM failed_windows WHERE site = ? AND dataset = ? "
            "AND window_start = CAST(? AS TIMESTAMPTZ) AND window_end = CAST(? AS TIMESTAMPTZ)",
            [site, dataset, ts(failed.start), ts(failed.end)],
        )
        for piece in state_rules.subtract_window(failed, window):
            con.execute(
                "INSERT INTO failed_windows VALUES (?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?, "
                "CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?)",
                [site, dataset, ts(piece.start), ts(piece.end), row["error"], row["attempts"],
                 ts(row["first_failed_at"]), ts(row["last_failed_at"]), row["run_id"]],
            )


def record_failure(
    con: DuckDBPyConnection, site: str, dataset: str, window: Window, error: str, run_id: str | None, now: datetime
) -> None:
    """Add ``window`` to the failed list: a window already inside a failed one bumps that one's
    attempts; failed windows inside the new one are merged into it."""
    rows = overlapping_failures(con, site, dataset, window)
    where = "site = ? AND dataset = ? AND window_start = CAST(? AS TIMESTAMPTZ) AND window_end = CAST(? AS TIMESTAMPTZ)"
    for row in rows:
        if row["window_start"] <= window.start and row["window_end"] >= window.end:
            con.execute(
                f"UPDATE failed_windows SET attempts = attempts + 1, error = ?, "
                f"last_failed_at = CAST(? AS TIMESTAMPTZ), run_id = ? WHERE {where}",
                [error, ts(now), run_id, site, dataset, ts(row["window_start"]), ts(row["window_end"])],
            )
            return
    attempts, first = 1, now
    for row in rows:
        if row["window_start"] >= window.start and row["window_end"] <= window.end:
            attempts = max(attempts, row["attempts"] + 1)
            first = min(first, row["first_failed_at"])
            con.execute(f"DELETE FROM failed_windows WHERE {where}",
                        [site, dataset, ts(row["window_start"]), ts(row["window_end"])])
    con.execute(
        "INSERT INTO failed_windows VALUES (?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?, "
        "CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?)",
        [site, dataset, ts(window.start), ts(window.end), error, attempts, ts(first), ts(now), run_id],
    )


def record_unverified(
    con: DuckDBPyConnection, site: str, dataset: str, window: Window, commit_id: int, problem: str | None, run_id: str | None,
    now: datetime,
) -> None:
    """List ``window`` as landed-but-unverified (its rows are in ``commit_id``); an entry for the
    same window from an earlier unverified landing keeps its first time and counts one more try."""
    where = "site = ? AND dataset = ? AND window_start = CAST(? AS TIMESTAMPTZ) AND window_end = CAST(? AS TIMESTAMPTZ)"
    args = [site, dataset, ts(window.start), ts(window.end)]
    old = con.sql(f"SELECT attempts, first_seen_at FROM unverified_windows WHERE {where}", params=args).fetchall()
    attempts = 1 + max((r[0] for r in old), default=0)
    first = min((r[1] for r in old), default=now)
    # The earlier unverified commit stays (it may hold rows this one missed); both are retired
    # together by the first verified listing.
    con.execute(f"DELETE FROM unverified_windows WHERE {where}", args)
    con.execute(
        "INSERT INTO unverified_windows VALUES (?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?, ?, "
        "CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?)",
        [site, dataset, ts(window.start), ts(window.end), commit_id, (problem or "")[:2000], attempts, ts(first),
         ts(now), run_id],
    )


def retire_verified(con: DuckDBPyConnection, site: str, dataset: str, window: Window, commit_id: int, now: datetime) -> None:
    """After a verified commit of ``window``: every unverified window now covered by verified
    commits made after its own landing is verified.  Its entry goes, and so do the files of the
    unverified commits of that window (their rows are superseded by complete listings; they may
    hold rows served twice).  Verified rows are never retired this way: they are only replaced
    row by row (same identity, newer commit), so a listing that comes back short loses nothing."""
    entries = con.sql(
        "SELECT * FROM unverified_windows WHERE site = ? AND dataset = ? "
        "AND window_start < CAST(? AS TIMESTAMPTZ) AND window_end > CAST(? AS TIMESTAMPTZ)",
        params=[site, dataset, ts(window.end), ts(window.start)],
    ).to_arrow_table().to_pylist()
    for entry in entries:
        start, end = entry["window_start"], entry["window_end"]
        spans = con.sql(
            "SELECT window_start, window_end FROM commits WHERE site = ? AND dataset = ? AND kind = 'window' "
            "AND coalesce(verified, true) AND commit_id > ? AND window_start < CAST(? AS TIMESTAMPTZ) "
            "AND window_end > CAST(? AS TIMESTAMPTZ) ORDER BY window_start",
            params=[site, dataset, entry["commit_id"], ts(end), ts(start)],
        ).fetchall()
        reached = start
        for s_start, s_end in spans:
            if s_start > reached:
                break
            reached = max(reached, s_end)
        if reached < end:
            continue  # part of it is still unverified
        # Every unverified commit of exactly this window (the entry's and earlier tries').
        old = [r[0] for r in con.sql(
            "SELECT commit_id FROM commits WHERE site = ? AND dataset = ? AND kind = 'window' AND NOT "
            "coalesce(verified, true) AND commit_id < ? AND window_start >= CAST(? AS TIMESTAMPTZ) "
            "AND window_end <= CAST(? AS TIMESTAMPTZ)",
            params=[site, dataset, commit_id, ts(start), ts(end)],
        ).fetchall()]
        if old:
            con.execute(
                "INSERT INTO retired_files SELECT path, dataset, site, ?, CAST(? AS TIMESTAMPTZ) FROM manifest "
                "WHERE site = ? AND dataset = ? AND list_contains(?, commit_id) ON CONFLICT DO NOTHING",
                [commit_id, ts(now), site, dataset, old],
            )
            con.execute("DELETE FROM manifest WHERE site = ? AND dataset = ? AND list_contains(?, commit_id)",
                        [site, dataset, old])
        con.execute(
            "DELETE FROM unverified_windows WHERE site = ? AND dataset = ? AND window_start = CAST(? AS TIMESTAMPTZ) "
            "AND window_end = CAST(? AS TIMESTAMPTZ)",
            [site, dataset, ts(start), ts(end)],
        )

