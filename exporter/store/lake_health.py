"""The health of the lake's committed files: checking them, and what happens to damaged ones.

Every publish checks that each manifest file exists, has its recorded size and a readable footer
(footers already read are remembered by path, size and mtime in ``verified_files``).  A damaged
file is left out of the views, recorded in ``damaged_files`` (copied into the catalog, shown by
``status``), set aside under ``<root>/_damaged/`` when it exists, and the windows it held are
recorded as failed windows, so the next run or backfill fetches them again while Webex still has
them.  A good copy put back at its path goes back into the manifest (``restored``); a damaged
file is ``repaired`` once later window commits cover its windows.  The run that finds damage, and
every run while it is not repaired, does not report success (:meth:`LakeHealth.report_damage`).

:class:`exporter.store.warehouse.Warehouse` owns one :class:`LakeHealth` while it is open and
delegates ``verify_lake`` and ``damaged_files`` here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from duckdb import DuckDBPyConnection

from ..config import ExportSettings
from ..errors import WarehouseError
from ..model.runs import DatasetOutcome
from ..model.windows import Window, plan_windows
from ..obs.logs import event
from .commit_records import json_default
from .lake import DAMAGED_DIR, UNKNOWN_DATE, Lake
from .state_db import StateStore, ts
from .window_ledger import as_utc, merge_spans, record_failure, retention_horizon

__all__ = ["LakeHealth", "damaged_files", "MASS_MISSING_MIN"]


#: Missing files beyond which a publish refuses to record damage and stops instead: so many
#: files gone at once is an unmounted disk or a wrong ``warehouse.root``, not damage to repair
#: (re-fetching would be wrong, and history older than the retention would be written off).
MASS_MISSING_MIN = 10


class LakeHealth:
    """Checks the committed files of one open warehouse's lake and records the damaged ones.

    ``store``/``lake``: the warehouse's state DB and lake; ``export``: retention and window
    size (for the windows listed again); ``clock``: the current time in UTC; ``on_change``:
    called whenever the manifest or ``damaged_files`` changed (the catalog must be published
    again).  Remembers the footers already read for as long as it lives (one open warehouse).
    """

    def __init__(
        self,
        store: StateStore,
        lake: Lake,
        export: ExportSettings,
        *,
        clock: Callable[[], datetime],
        on_change: Callable[[], None],
    ) -> None:
        self.store = store
        self.lake = lake
        self.export = export
        self._now = clock
        self._changed = on_change
        #: Footers already read: path -> (size, mtime_ns) as it was then (loaded on first use).
        self._verified: dict[str, tuple[int, int]] | None = None

    def verify(self, *, full: bool = False) -> list[dict[str, Any]]:
        """Check that every committed file is whole: it exists, has the size the manifest
        recorded and a readable Parquet footer with the recorded row count.  Footers already read
        are remembered (state table ``verified_files``) by path, size and mtime, so a publish reads
        only new or changed files; ``full`` reads every footer again.

        A damaged file is taken out of the manifest (so no view names it), recorded in
        ``damaged_files`` with the windows it held, set aside under ``<root>/_damaged/`` when it
        exists, and those windows become failed windows: the next run or backfill lists them
        again (while Webex's retention still holds them; older ones are recorded as ``lost``).
        Returns the files found damaged now (dicts: ``path``, ``dataset``, ``site``, ``problem``).

        Local lakes only: on S3 this is skipped (one request per file per publish would cost more
        than it finds; S3 does not truncate objects).  ``WarehouseError`` when so many files are
        missing that the lake looks unmounted (nothing is recorded then).
        """
        store, lake = self.store, self.lake
        if not lake.is_local:
            return []
        if full:
            store.execute("DELETE FROM verified_files")
            self._verified = {}
        elif self._verified is None:
            self._verified = {r["path"]: (int(r["size"]), int(r["mtime_ns"]))
                              for r in store.rows("SELECT path, size, mtime_ns FROM verified_files")}
        self._restore_returned_files()
        manifest = store.rows("SELECT * FROM manifest ORDER BY commit_id, path")
        damaged: list[tuple[dict[str, Any], str]] = []
        fresh: list[tuple[str, int, int]] = []
        for row in manifest:
            path = row["path"]
            if row["staged_as"] is not None:  # its move is pending (_settle found it in neither place)
                if not lake.exists(row["staged_as"]) and not lake.exists(path):
                    damaged.append((row, "missing (neither in its partition nor in staging)"))
                continue
            found = lake.stat(path)
            if found is None:
                damaged.append((row, "missing"))
                continue
            if self._verified.get(path) == found:
                continue
            problem = lake.check_parquet(path, size=row["bytes"], rows=row["rows"])
            if problem is None:
                fresh.append((path, *found))
                self._verified[path] = found
            else:
                damaged.append((row, problem))
        if fresh:  # one statement (executemany goes row by row: 1.6 s for 1,000 files)
            store.execute(
                "INSERT OR REPLACE INTO verified_files "
                "SELECT unnest(?), unnest(?), unnest(?), CAST(? AS TIMESTAMPTZ)",
                [[f[0] for f in fresh], [f[1] for f in fresh], [f[2] for f in fresh], ts(self._now())],
                action="remembering verified lake files",
            )
        listed = {row["path"] for row in manifest}
        stale = [p for p in self._verified if p not in listed]
        if stale:  # retired or damaged since: forget them
            for p in stale:
                del self._verified[p]
            store.execute("DELETE FROM verified_files WHERE list_contains(?, path)", [stale])
        missing = sum(1 for _, problem in damaged if problem.startswith("missing"))
        if missing >= MASS_MISSING_MIN and 2 * missing > len(manifest):
            raise WarehouseError(
                f"{missing} of the {len(manifest)} committed files of the lake at {lake.root_uri} are missing "
                f"(e.g. {lake.uri(next(r['path'] for r, p in damaged if p.startswith('missing')))}): is the "
                "lake's disk mounted, and is warehouse.root right?  Nothing was changed; fix the path or restore "
                "the files, then run again"
            )
        if damaged:
            self._record_damage(damaged)
        self._update_damage_states()
        return [{"path": r["path"], "dataset": r["dataset"], "site": r["site"], "problem": problem}
                for r, problem in damaged]

    def _record_damage(self, damaged: Sequence[tuple[dict[str, Any], str]]) -> None:
        """Take damaged files out of the manifest, record them and list their windows again."""
        store, lake = self.store, self.lake
        now = self._now()
        horizon = retention_horizon(now, self.export.retention_days)
        detected_after = store.max_commit()
        with store.transaction("recording damaged lake files") as con:
            for row, problem in damaged:
                site, dataset = row["site"], row["dataset"]
                held = _commit_windows(con, row)
                live = [Window(max(w.start, horizon), w.end) for w in held if w.end > horizon]
                for window in live:
                    for piece in plan_windows(window.start, window.end, self.export.window_hours):
                        message = f"listed again: lake file {row['path']} is damaged ({problem})"
                        record_failure(con, site, dataset, piece, message, None, now)
                con.execute(
                    """
                    INSERT INTO damaged_files VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), ?, ?, ?, NULL, NULL,
                                                      NULL, ?)
                    ON CONFLICT (path) DO UPDATE SET problem = excluded.problem, detected_at = excluded.detected_at,
                        detected_after = excluded.detected_after, refetch = excluded.refetch, state = excluded.state,
                        repaired_at = NULL, reported_in = NULL, manifest_row = excluded.manifest_row
                    """,
                    [row["path"], dataset, site, row["partition"], row["commit_id"], row["rows"], problem[:2000],
                     ts(now), detected_after, json.dumps([[ts(w.start), ts(w.end)] for w in live]),
                     "refetching" if live else "lost", json.dumps({**row, "staged_as": None}, default=json_default)],
                )
                con.execute("DELETE FROM manifest WHERE path = ?", [row["path"]])
                con.execute("DELETE FROM verified_files WHERE path = ?", [row["path"]])
        self._changed()
        for row, problem in damaged:
            moved_to = None
            if lake.exists(row["path"]):  # unreadable, not gone: out of every dataset glob, kept for a look
                moved_to = f"{DAMAGED_DIR}/{row['path']}"
                try:
                    lake.move_aside(row["path"], moved_to)
                    store.execute("UPDATE damaged_files SET moved_to = ? WHERE path = ?", [moved_to, row["path"]])
                except WarehouseError as exc:
                    event("cannot set a damaged file aside", level=logging.WARNING, file=lake.uri(row["path"]), error=str(exc))
                    moved_to = None
            event(
                "damaged lake file left out of the catalog; its windows are listed again", level=logging.ERROR,
                site=row["site"], dataset=row["dataset"], file=lake.uri(row["path"]), problem=problem,
                commit=row["commit_id"], rows=row["rows"], moved_to=lake.uri(moved_to) if moved_to else None,
            )

    def _restore_returned_files(self) -> None:
        """A damaged file not yet repaired whose good copy is back at its path (restored from a
        backup of the lake) goes back into the manifest as it was: state ``restored``."""
        store, lake = self.store, self.lake
        for row in store.rows("SELECT * FROM damaged_files WHERE state IN ('refetching', 'lost') "
                              "AND manifest_row IS NOT NULL"):
            entry = json.loads(row["manifest_row"])
            if lake.stat(row["path"]) is None or lake.check_parquet(row["path"], size=entry["bytes"],
                                                                    rows=entry["rows"]) is not None:
                continue
            with store.transaction(f"restoring {row['path']} into the manifest") as con:
                con.execute(
                    "INSERT OR REPLACE INTO manifest VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), "
                    "CAST(? AS TIMESTAMPTZ), ?, NULL)",
                    [entry["path"], entry["dataset"], entry["site"], entry["partition"], entry["commit_id"],
                     entry["rows"], entry["bytes"], entry["min_start"], entry["max_start"], entry["columns"]],
                )
                con.execute("UPDATE damaged_files SET state = 'restored', repaired_at = CAST(? AS TIMESTAMPTZ) "
                            "WHERE path = ?", [ts(self._now()), row["path"]])
            self._changed()
            event("damaged lake file is back and readable: in the catalog again", level=logging.WARNING,
                  site=row["site"], dataset=row["dataset"], file=lake.uri(row["path"]))

    def _update_damage_states(self) -> None:
        """A damaged file is ``repaired`` once window commits made after it was found cover every
        window it held; ``lost`` while the uncovered ones are past the server's retention (a file
        recorded lost is still repaired should those windows be landed again, e.g. by a rerun
        against an archive)."""
        store = self.store
        pending = store.rows("SELECT * FROM damaged_files WHERE state IN ('refetching', 'lost') AND refetch <> '[]'")
        if not pending:
            return
        now = self._now()
        horizon = now - timedelta(days=self.export.retention_days)
        changed = False
        with store.transaction("updating damaged lake files") as con:
            for row in pending:
                windows = [Window(datetime.fromisoformat(a), datetime.fromisoformat(b))
                           for a, b in json.loads(row["refetch"])]
                open_ = [w for w in windows if not _covered(con, row["site"], row["dataset"], w, row["detected_after"])]
                if not open_:
                    con.execute("UPDATE damaged_files SET state = 'repaired', repaired_at = CAST(? AS TIMESTAMPTZ) "
                                "WHERE path = ?", [ts(now), row["path"]])
                    changed = True
                elif row["state"] == "refetching" and all(w.end <= horizon for w in open_):
                    con.execute("UPDATE damaged_files SET state = 'lost' WHERE path = ?", [row["path"]])
                    changed = True
        if changed:
            self._changed()

    def report_damage(self, outcomes: Sequence[DatasetOutcome], run_id: str) -> None:
        """Check the lake once more, then add an error to the outcome of every (site, dataset) of
        this run that holds damaged files not yet repaired, or damaged files no run has reported
        yet (found by this run's start, a publish or ``verify``; reported once even when this run
        fetched their windows again already).  The pipeline's exit code counts outcome errors
        (``RunReport.exit_code``), so such a run never exits 0 and its summary says why.  Damage
        of (site, dataset) pairs outside the run is logged, and reported by their next run."""
        try:
            self.verify()
        except WarehouseError as exc:
            event("checking the lake's files after the run failed", level=logging.ERROR, error=str(exc))
        rows = self.store.rows(
            "SELECT * FROM damaged_files WHERE state NOT IN ('repaired', 'restored') OR reported_in IS NULL "
            "ORDER BY detected_at, path"
        )
        by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            by_pair.setdefault((row["site"], row["dataset"]), []).append(row)
        reported: list[str] = []
        for o in outcomes:
            found = by_pair.pop((o.site, o.dataset), None)
            if found:
                o.errors.append(_damage_message(found))
                reported += [r["path"] for r in found]
        if reported:
            self.store.execute("UPDATE damaged_files SET reported_in = coalesce(reported_in, ?) "
                               "WHERE list_contains(?, path)", [run_id, reported])
        for (site, dataset), found in by_pair.items():
            event(_damage_message(found), level=logging.ERROR, site=site, dataset=dataset)


def damaged_files(store: StateStore, *, include_repaired: bool = False) -> list[dict[str, Any]]:
    """Rows of ``damaged_files`` (by default those not repaired), oldest first."""
    where = "" if include_repaired else "WHERE state NOT IN ('repaired', 'restored')"
    return store.rows(f"SELECT * FROM damaged_files {where} ORDER BY detected_at, path")


def _commit_windows(con: DuckDBPyConnection, row: dict[str, Any]) -> list[Window]:
    """The listing windows whose rows the manifest file ``row`` holds, merged: its commit's
    window; for a compacted file, the windows of the commits it merged (recursively).  A file
    compacted before compactions recorded their sources: every window commit of its (site,
    dataset) that could hold a row of it (windows are on the session start; a row's start column
    may be a later join time, hence two days of slack)."""
    site, dataset = row["site"], row["dataset"]
    spans: list[tuple[datetime, datetime]] = []
    todo, seen = [int(row["commit_id"])], set()
    fallback = False
    while todo:
        commit_id = todo.pop()
        if commit_id in seen:
            continue
        seen.add(commit_id)
        found = con.sql("SELECT kind, window_start, window_end, sources FROM commits WHERE commit_id = ?",
                        params=[commit_id]).fetchall()
        if not found:
            fallback = True
            continue
        kind, start, end, sources = found[0]
        if kind == "window" and start is not None:
            spans.append((start, end))
        elif kind == "compaction" and sources:
            todo.extend(int(c) for c in json.loads(sources))
        else:
            fallback = True
    if fallback:
        low, high = row.get("min_start"), row.get("max_start")
        if row.get("partition") == UNKNOWN_DATE or low is None or high is None:
            low, high = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9999, 1, 1, tzinfo=timezone.utc)
        else:
            low, high = low - timedelta(days=2), high + timedelta(seconds=1)
        spans += con.sql(
            "SELECT window_start, window_end FROM commits WHERE site = ? AND dataset = ? AND kind = 'window' "
            "AND window_start < CAST(? AS TIMESTAMPTZ) AND window_end > CAST(? AS TIMESTAMPTZ)",
            params=[site, dataset, ts(high), ts(low)],
        ).fetchall()
    return merge_spans(spans)


def _covered(con: DuckDBPyConnection, site: str, dataset: str, window: Window, after: int) -> bool:
    """Whether window commits made after commit ``after`` cover all of ``window``."""
    spans = con.sql(
        "SELECT window_start, window_end FROM commits WHERE site = ? AND dataset = ? AND kind = 'window' "
        "AND commit_id > ? AND window_start < CAST(? AS TIMESTAMPTZ) AND window_end > CAST(? AS TIMESTAMPTZ) "
        "ORDER BY window_start",
        params=[site, dataset, after, ts(window.end), ts(window.start)],
    ).fetchall()
    reached = window.start
    for start, end in spans:
        if as_utc(start) > reached:
            return False
        reached = max(reached, as_utc(end))
    return reached >= window.end


def _damage_message(rows: Sequence[dict[str, Any]]) -> str:
    """One line about the damaged files of one (site, dataset)."""
    states = sorted({r["state"] for r in rows})
    first = rows[0]
    more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
    what = {
        "refetching": "its windows are listed again by the next run or backfill",
        "repaired": "their windows were fetched again",
        "lost": "their windows are past Webex's retention: those rows are lost unless the file is restored",
        "restored": "a good copy was put back",
    }
    return (
        f"{len(rows)} damaged lake file(s) left out of the catalog ({', '.join(states)}): {first['path']} "
        f"({first['problem']}){more}; " + "; ".join(what[s] for s in states if s in what)
        + "; see `webex-exporter status` and the table damaged_files"
    )

