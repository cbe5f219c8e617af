"""DuckDB: the exporter's private state DB, ``<catalog dir>/.webex-exporter/state.duckdb``.

Opened read-write by the one exporter that holds the warehouse lock (DuckDB allows one read-write
process *or* many readers per file; readers get the published catalog, :mod:`.catalog`).
Tables: ``commits``, ``manifest`` (the files that make up the tables), ``retired_files``,
``damaged_files``, ``verified_files``, ``sync_state``, ``failed_windows``, ``unverified_windows``,
``runs``, ``run_log``, ``generations``.  A window's manifest entries, its commit row and the cursor
move in one transaction (:meth:`StateStore.transaction`).  :meth:`StateStore.backup_to` writes a
consistent copy (``.webex-exporter/backups/``, after every finished run).

Also the DuckDB helpers both files share (:func:`duckdb_errors`, :func:`ts`, quoting, fsync).
All DuckDB exceptions are translated into :class:`~exporter.errors.WarehouseError` here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:  # fsspec is optional at run time: only S3 lakes read through it
    from fsspec import AbstractFileSystem

from ..errors import WarehouseError
from .lake import StagedFile, fsync_dir
from .state_schema import migrate

__all__ = [
    "StateStore",
    "duckdb_errors",
    "first_line",
    "fsync_file",
    "quote_ident",
    "quote_str",
    "ts",
]


@contextmanager
def duckdb_errors(action: str) -> Iterator[None]:
    """Translate DuckDB failures into :class:`WarehouseError` naming ``action``."""
    try:
        yield
    except WarehouseError:
        raise
    except duckdb.Error as exc:
        raise WarehouseError(f"{action}: {first_line(exc)}") from exc


def first_line(exc: Exception) -> str:
    """An exception's message without DuckDB's multi-line detail."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def ts(value: datetime | None) -> str | None:
    """A datetime as an ISO string for a ``CAST(? AS TIMESTAMPTZ)`` parameter (DuckDB's Python
    binding wants pytz for aware datetimes; text avoids that dependency)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise WarehouseError(f"naive datetime {value!r}: the warehouse stores UTC instants only")
    return value.astimezone(timezone.utc).isoformat()


def _utc(value: Any) -> Any:
    """Normalise DuckDB's aware datetimes to ``datetime.timezone.utc``."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc)
    return value


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def quote_str(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


class StateStore:
    """The private state DB: one read-write connection, owned by the lock holder.

    Every method is a short statement or transaction; callers serialise access (the
    :class:`~exporter.store.warehouse.Warehouse` holds a thread lock around each public call).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.Error as exc:
            raise WarehouseError(
                f"cannot open the state DB {path}: {first_line(exc)}; if it is damaged, rebuild it with "
                "`webex-exporter state rebuild` (from its newest backup and the lake's commit records)"
            ) from exc
        try:
            with duckdb_errors(f"opening state DB {path}"):
                self.con.execute("SET TimeZone = 'UTC'")
                # Never reach for the network from the exporter: extensions load only if installed.
                self.con.execute("SET autoinstall_known_extensions = false")
                migrate(self.con)
        except BaseException:
            self.con.close()  # refused (a newer schema) or failed: no handle left on the file
            raise

    def backup_to(self, target: Path) -> None:
        """Write a consistent copy of the whole state DB to ``target`` atomically (a temporary
        file, fsynced, renamed): a logical copy through DuckDB, so it reads every table (a damaged
        page fails here, not on the day the backup is needed) and holds no WAL."""
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        for leftover in (temp, temp.with_name(temp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        with duckdb_errors(f"backing up the state DB to {target}"):
            ((name,),) = self.con.execute("SELECT current_database()").fetchall()
            self.con.execute(f"ATTACH {quote_str(str(temp))} AS webex_backup")
            try:
                self.con.execute(f"COPY FROM DATABASE {quote_ident(name)} TO webex_backup")
                self.con.execute("CHECKPOINT webex_backup")
            finally:
                self.con.execute("DETACH webex_backup")
        try:
            fsync_file(temp)
            os.replace(temp, target)
        except OSError as exc:
            raise WarehouseError(f"backing up the state DB to {target}: {exc}") from exc
        fsync_dir(target.parent)

    def close(self) -> None:
        """Checkpoint and close (a clean close leaves no WAL behind)."""
        with duckdb_errors(f"closing state DB {self.path}"):
            try:
                self.con.execute("CHECKPOINT")
            finally:
                self.con.close()

    # -- primitives ----------------------------------------------------------------------

    @contextmanager
    def transaction(self, action: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """``BEGIN`` .. ``COMMIT``; any failure rolls back and raises :class:`WarehouseError`."""
        with duckdb_errors(action):
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Query rows as dicts (times as aware UTC datetimes)."""
        with duckdb_errors("reading state"):
            table = self.con.sql(sql, params=list(params) if params else None).to_arrow_table()
        return [{k: _utc(v) for k, v in row.items()} for row in table.to_pylist()]

    def value(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """The first column of the first row (None when there is none)."""
        rows = self.rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def execute(self, sql: str, params: Sequence[Any] | None = None, *, action: str = "updating state") -> None:
        """One statement in its own (auto-committed) transaction."""
        with duckdb_errors(action):
            self.con.execute(sql, list(params) if params else None)

    def register_filesystem(self, filesystem: AbstractFileSystem) -> None:
        """Let this connection read ``s3://`` through an fsspec filesystem (no httpfs needed)."""
        with duckdb_errors("registering the lake filesystem with DuckDB"):
            self.con.register_filesystem(filesystem)

    # -- commits and the manifest --------------------------------------------------------

    def max_commit(self) -> int:
        """The newest commit number (0 when nothing was committed)."""
        return int(self.value("SELECT coalesce(max(commit_id), 0) FROM commits") or 0)

    @staticmethod
    def insert_commit(
        con: duckdb.DuckDBPyConnection,
        *,
        commit_id: int,
        kind: str,
        site: str,
        dataset: str,
        window: tuple[datetime, datetime] | None,
        run_id: str | None,
        committed_at: datetime,
        rows: int,
        files: int,
        cursor_to: datetime | None = None,
        verified: bool = True,
        sources: Sequence[int] | None = None,
    ) -> None:
        """Record one commit (inside the caller's transaction); ``sources``: the commits whose
        files a compaction merged (so a damaged compacted file names the windows it held)."""
        start, end = window or (None, None)
        con.execute(
            "INSERT INTO commits (commit_id, kind, site, dataset, window_start, window_end, run_id, committed_at, "
            "rows, files, cursor_to, verified, sources) VALUES (?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), "
            "CAST(? AS TIMESTAMPTZ), ?, CAST(? AS TIMESTAMPTZ), ?, ?, CAST(? AS TIMESTAMPTZ), ?, ?)",
            [commit_id, kind, site, dataset, ts(start), ts(end), run_id, ts(committed_at), rows, files, ts(cursor_to),
             verified, json.dumps(sorted(set(sources))) if sources is not None else None],
        )

    @staticmethod
    def add_files(
        con: duckdb.DuckDBPyConnection, *, commit_id: int, dataset: str, site: str, files: Iterable[StagedFile]
    ) -> None:
        """Add staged files to the manifest (inside the caller's transaction); they are part of
        the tables from this commit on, and ``staged_as`` says their move is still pending."""
        for f in files:
            con.execute(
                "INSERT INTO manifest VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), "
                "CAST(? AS TIMESTAMPTZ), ?, ?)",
                [f.final, dataset, site, f.partition, commit_id, f.rows, f.bytes, ts(f.min_start),
                 ts(f.max_start), json.dumps(dict(f.columns)), f.staged],
            )

    def mark_placed(self, paths: Sequence[str]) -> None:
        """The files ``paths`` are in their partitions now: no move pending."""
        if paths:
            self.execute("UPDATE manifest SET staged_as = NULL WHERE list_contains(?, path)", [list(paths)])

    def pending_moves(self) -> list[tuple[str, str]]:
        """``(staged, final)`` for committed files whose move into place did not finish."""
        rows = self.rows("SELECT staged_as, path FROM manifest WHERE staged_as IS NOT NULL ORDER BY path")
        return [(r["staged_as"], r["path"]) for r in rows]

    def manifest(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Manifest rows (one per committed file), oldest commit first."""
        if dataset is None:
            return self.rows("SELECT * FROM manifest ORDER BY commit_id, path")
        return self.rows("SELECT * FROM manifest WHERE dataset = ? ORDER BY commit_id, path", [dataset])

    # -- sync state ----------------------------------------------------------------------

    @staticmethod
    def advance_cursor(
        con: duckdb.DuckDBPyConnection,
        *,
        site: str,
        dataset: str,
        cursor_to: datetime | None,
        commit_id: int | None,
        at: datetime,
    ) -> None:
        """Move the cursor forward to ``cursor_to`` (never backwards) and note the commit."""
        con.execute(
            """
            INSERT INTO sync_state (site, dataset, "cursor", cursor_updated_at, last_commit_id, last_commit_at)
            VALUES (?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, CAST(? AS TIMESTAMPTZ))
            ON CONFLICT (site, dataset) DO UPDATE SET
                "cursor" = greatest(sync_state."cursor", excluded."cursor"),
                cursor_updated_at = CASE
                    WHEN excluded."cursor" > coalesce(sync_state."cursor", '-infinity'::TIMESTAMPTZ)
                    THEN excluded.cursor_updated_at ELSE sync_state.cursor_updated_at END,
                last_commit_id = coalesce(excluded.last_commit_id, sync_state.last_commit_id),
                last_commit_at = coalesce(excluded.last_commit_at, sync_state.last_commit_at)
            """,
            [site, dataset, ts(cursor_to), ts(at) if cursor_to else None, commit_id, ts(at) if commit_id else None],
        )

    def sync_row(self, site: str, dataset: str) -> dict[str, Any] | None:
        """The ``sync_state`` row of one (site, dataset)."""
        rows = self.rows("SELECT * FROM sync_state WHERE site = ? AND dataset = ?", [site, dataset])
        return rows[0] if rows else None

    def failures(self, site: str, dataset: str) -> list[dict[str, Any]]:
        """Failed windows of one (site, dataset), oldest first."""
        return self.rows(
            "SELECT * FROM failed_windows WHERE site = ? AND dataset = ? ORDER BY window_start, window_end",
            [site, dataset],
        )

    def unverified(self, site: str, dataset: str) -> list[dict[str, Any]]:
        """Windows of one (site, dataset) landed unverified, oldest first."""
        return self.rows(
            "SELECT * FROM unverified_windows WHERE site = ? AND dataset = ? ORDER BY window_start, window_end",
            [site, dataset],
        )

    def unfinished_windows(self, site: str, dataset: str, since: datetime) -> list[tuple[datetime, datetime]]:
        """Windows committed after the last finished run (i.e. by a run that crashed or was
        interrupted) that end after ``since``."""
        rows = self.rows(
            """
            SELECT c.window_start, c.window_end FROM commits c
            LEFT JOIN sync_state s ON s.site = c.site AND s.dataset = c.dataset
            WHERE c.site = ? AND c.dataset = ? AND c.kind = 'window'
              AND c.commit_id > coalesce(s.finished_commit, 0) AND c.window_end > CAST(? AS TIMESTAMPTZ)
            ORDER BY c.window_start
            """,
            [site, dataset, ts(since)],
        )
        return [(r["window_start"], r["window_end"]) for r in rows]

    def pairs(self) -> list[tuple[str, str]]:
        """Every (site, dataset) the state knows, sorted."""
        rows = self.rows(
            "SELECT site, dataset FROM sync_state UNION SELECT site, dataset FROM failed_windows "
            "UNION SELECT site, dataset FROM unverified_windows UNION SELECT site, dataset FROM manifest "
            "ORDER BY site, dataset"
        )
        return [(r["site"], r["dataset"]) for r in rows]

    # -- generations of the published catalog ----------------------------------------------

    def generations(self) -> list[dict[str, Any]]:
        """Published catalog generations whose files may still exist, oldest first."""
        return self.rows("SELECT * FROM generations WHERE NOT removed ORDER BY generation")


def fsync_file(path: Path) -> None:
    """Flush one file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
