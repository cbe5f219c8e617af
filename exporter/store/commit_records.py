"""The lake's own account of what was committed: ``<root>/_commits/<commit>.json``.

Every commit writes a small record (its window, cursor, files, the files it retired) *before*
its transaction commits (:func:`write_commit_record`), so the lake itself says what was
committed.  Loose records are folded into segment files (:func:`fold_commit_records`); a record
above the newest commit, left by a crash before its transaction committed, is deleted at the
next start (:func:`drop_uncommitted_records`).  :func:`exporter.store.state_rebuild.rebuild_state`
replays them (:func:`read_commit_records`).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from duckdb import DuckDBPyConnection

from ..errors import WarehouseError
from ..obs.logs import event
from .lake import COMMITS_DIR, Lake
from .state_db import StateStore

__all__ = [
    "RECORDS_PER_SEGMENT",
    "commit_record",
    "drop_uncommitted_records",
    "fold_commit_records",
    "json_default",
    "read_commit_records",
    "record_path",
    "write_commit_record",
]

#: Loose commit records are folded into one segment file once there are this many.
RECORDS_PER_SEGMENT = 256

_RECORD_NAME = re.compile(r"^(\d{10})\.json$")
_SEGMENT_NAME = re.compile(r"^segment-(\d{10})-(\d{10})\.jsonl$")


def record_path(commit_id: int) -> str:
    """Where commit ``commit_id``'s record lives in the lake (relative to its root)."""
    return f"{COMMITS_DIR}/{commit_id:010d}.json"


def json_default(value: Any) -> Any:
    """``json.dumps`` ``default`` for commit records and manifest rows: datetimes as UTC ISO text."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def commit_record(con: DuckDBPyConnection, commit_id: int) -> dict[str, Any]:
    """What commit ``commit_id`` did, from inside its own transaction: the commit row, its files,
    the files it retired, and for an unverified listing why."""

    def rows(sql: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = con.sql(sql, params=[commit_id]).to_arrow_table().to_pylist()
        return found

    (commit,) = rows("SELECT * FROM commits WHERE commit_id = ?")
    files = rows("SELECT path, partition, rows, bytes, min_start, max_start, columns FROM manifest "
                 "WHERE commit_id = ? ORDER BY path")
    retires = [r["path"] for r in rows("SELECT path FROM retired_files WHERE retired_by = ? ORDER BY path")]
    problem = rows("SELECT problem FROM unverified_windows WHERE commit_id = ?")
    return {
        "format": 1,
        "commit_id": commit_id,
        "kind": commit["kind"],
        "site": commit["site"],
        "dataset": commit["dataset"],
        "window": [commit["window_start"], commit["window_end"]] if commit["window_start"] is not None else None,
        "run_id": commit["run_id"],
        "committed_at": commit["committed_at"],
        "rows": commit["rows"],
        "cursor_to": commit["cursor_to"],
        "verified": commit.get("verified") is not False,
        "problem": problem[0]["problem"] if problem else None,
        "sources": json.loads(commit["sources"]) if commit.get("sources") else None,
        "files": [{**f, "columns": json.loads(f["columns"])} for f in files],
        "retires": retires,
    }


def write_commit_record(lake: Lake, con: DuckDBPyConnection, commit_id: int) -> None:
    """Write ``<root>/_commits/<commit>.json``: the commit row, its files (with what the
    manifest knows of them), the files it retired and, for an unverified listing, why.  Called
    inside the commit's transaction, after every statement of it: if writing fails, the commit
    rolls back; if the process dies before the transaction commits, the next start deletes the
    record (its number is above the newest commit).  :func:`rebuild_state` replays these."""
    record = commit_record(con, commit_id)
    lake.write_bytes(record_path(commit_id), (json.dumps(record, default=json_default) + "\n").encode())


def drop_uncommitted_records(store: StateStore, lake: Lake, state_path: Path) -> None:
    """Delete commit records above the newest commit whose transaction never committed (a
    crash after the record was written; or records of a lake whose files were cleared): none
    of their files is in its partition, and the next commit reuses the number.  A record above
    the newest commit whose files *are* in place means the state DB is older than the lake
    (an old backup copied over it): refuse, rather than number new commits over those."""
    newest = store.max_commit()
    for name in lake.list_files(COMMITS_DIR):
        leaf = name.rsplit("/", 1)[-1]
        if leaf.startswith("."):
            lake.delete(name)  # a temporary file of a write that did not finish
            continue
        record, segment = _RECORD_NAME.match(leaf), _SEGMENT_NAME.match(leaf)
        last = int(record.group(1)) if record else int(segment.group(2)) if segment else 0
        if last <= newest:
            continue
        lines = [line for line in lake.read_bytes(name).splitlines() if line.strip()]
        ahead = [r for r in (_parse_record(line, name) for line in lines) if r and int(r["commit_id"]) > newest]
        placed = [f["path"] for r in ahead for f in r.get("files") or () if lake.exists(f["path"])]
        if placed:
            raise WarehouseError(
                f"the state DB {state_path} knows commits up to {newest}, but the lake at {lake.root_uri} "
                f"holds later ones ({lake.uri(name)} names {lake.uri(placed[0])}): the state DB is older than "
                "the lake (restored from an old copy?). Rebuild it: `webex-exporter state rebuild --force` "
                "(from its backups and the lake's commit records)"
            )
        lake.delete(name)


def fold_commit_records(store: StateStore, lake: Lake, *, per_segment: int = RECORDS_PER_SEGMENT) -> None:
    """Fold loose commit records into one segment file once there are many (fewer files to
    list and read for a rebuild); a crash between writing the segment and deleting the loose
    records leaves both, which :func:`rebuild_state` reads as one."""
    newest = store.max_commit()
    loose = sorted(
        (int(m.group(1)), name) for name in lake.list_files(COMMITS_DIR)
        if (m := _RECORD_NAME.match(name.rsplit("/", 1)[-1])) and int(m.group(1)) <= newest
    )
    if len(loose) < per_segment:
        return
    lines = [lake.read_bytes(name).strip() for _, name in loose]
    first, last = loose[0][0], loose[-1][0]
    lake.write_bytes(f"{COMMITS_DIR}/segment-{first:010d}-{last:010d}.jsonl", b"\n".join(lines) + b"\n")
    for _, name in loose:
        lake.delete(name)


def read_commit_records(lake: Lake) -> dict[int, dict[str, Any]]:
    """Every commit record in the lake by commit number: segments, then loose records (a record
    in both, left by a crash while folding, is the same record)."""
    records: dict[int, dict[str, Any]] = {}
    names = lake.list_files(COMMITS_DIR)
    leaves = [(n, n.rsplit("/", 1)[-1]) for n in names]
    for name, leaf in sorted(leaves, key=lambda x: x[1]):
        if _SEGMENT_NAME.match(leaf):
            for line in lake.read_bytes(name).splitlines():
                if line.strip():
                    record = _parse_record(line, name)
                    if record:
                        records[int(record["commit_id"])] = record
    for name, leaf in leaves:
        if _RECORD_NAME.match(leaf):
            record = _parse_record(lake.read_bytes(name), name)
            if record:
                records[int(record["commit_id"])] = record
    return records


def _parse_record(data: bytes, name: str) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(data)
        int(record["commit_id"])
        return record
    except (ValueError, KeyError, TypeError) as exc:
        event("skipping an unreadable commit record", level=logging.WARNING, file=name, error=str(exc))
        return None
