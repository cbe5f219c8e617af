"""The state DB's migrations registry: applied once each, in order; a state DB from before the
registry (no ``schema_version``) upgrades cleanly and keeps an ``auto`` site's REST switch time."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from exporter.errors import WarehouseError
from exporter.run.site_setup import switched_at
from exporter.store.state_db import StateStore
from exporter.store.state_schema import MIGRATIONS, SCHEMA_VERSION, applied_version, migrate
from exporter.store.status import dataset_state

# The single script state_db.py ran on every open before the migrations registry.
_OLD_SCRIPT = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS commits (
    commit_id BIGINT PRIMARY KEY,
    kind VARCHAR NOT NULL,                -- 'window' or 'compaction'
    site VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    window_start TIMESTAMPTZ,
    window_end TIMESTAMPTZ,
    run_id VARCHAR,
    committed_at TIMESTAMPTZ NOT NULL,
    rows BIGINT NOT NULL,
    files INTEGER NOT NULL,
    cursor_to TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS unverified_windows (  -- landed, but no listing could be verified complete
    site VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    commit_id BIGINT NOT NULL,            -- the commit holding its rows (retired once verified)
    problem VARCHAR,
    attempts INTEGER NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS manifest (
    path VARCHAR PRIMARY KEY,             -- relative to the lake root
    dataset VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    partition VARCHAR NOT NULL,           -- 'YYYY-MM-DD' or '__HIVE_DEFAULT_PARTITION__'
    commit_id BIGINT NOT NULL,
    rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    min_start TIMESTAMPTZ,
    max_start TIMESTAMPTZ,
    columns VARCHAR NOT NULL,             -- JSON object: the file's columns -> Arrow types
    staged_as VARCHAR                     -- staging path while the move into place is pending
);
CREATE TABLE IF NOT EXISTS published_months (  -- what each <root>/tables/<dataset>/month=<m>/ file was built from
    dataset VARCHAR NOT NULL,
    month VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS retired_files (
    path VARCHAR PRIMARY KEY,
    dataset VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    retired_by BIGINT NOT NULL,           -- the commit that replaced it (a compaction, or a verified listing)
    retired_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_state (
    site VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    "cursor" TIMESTAMPTZ,                 -- end of the last closed window
    cursor_updated_at TIMESTAMPTZ,
    last_commit_id BIGINT,
    last_commit_at TIMESTAMPTZ,
    finished_commit BIGINT NOT NULL DEFAULT 0,  -- commits up to here belong to finished runs
    last_run_id VARCHAR,
    last_run_at TIMESTAMPTZ,
    last_outcome VARCHAR,
    PRIMARY KEY (site, dataset)
);
CREATE TABLE IF NOT EXISTS failed_windows (
    site VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    error VARCHAR,
    attempts INTEGER NOT NULL,
    first_failed_at TIMESTAMPTZ NOT NULL,
    last_failed_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    outcome VARCHAR NOT NULL,
    windows BIGINT NOT NULL DEFAULT 0,
    windows_failed BIGINT NOT NULL DEFAULT 0,
    pages BIGINT NOT NULL DEFAULT 0,
    records BIGINT NOT NULL DEFAULT 0,
    requests BIGINT NOT NULL DEFAULT 0,
    retries BIGINT NOT NULL DEFAULT 0,
    throttles BIGINT NOT NULL DEFAULT 0,
    throttle_wait_seconds DOUBLE NOT NULL DEFAULT 0,
    unknown_elements BIGINT NOT NULL DEFAULT 0,
    bad_values BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    error_messages VARCHAR,               -- JSON list (first 20)
    details VARCHAR,                      -- JSON: unknown elements and bad values by name
    PRIMARY KEY (run_id, site, dataset)
);
CREATE TABLE IF NOT EXISTS run_log (
    run_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    outcome VARCHAR NOT NULL,             -- running, ok, partial, failed, interrupted, crashed
    site_errors VARCHAR                   -- JSON object site -> message
);
CREATE TABLE IF NOT EXISTS generations (
    generation BIGINT PRIMARY KEY,
    file VARCHAR NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    max_commit BIGINT NOT NULL,           -- the newest commit this catalog shows
    superseded_at TIMESTAMPTZ,
    removed BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS damaged_files (   -- committed files found missing or unreadable
    path VARCHAR PRIMARY KEY,             -- where the manifest had it (relative to the lake root)
    dataset VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    partition VARCHAR NOT NULL,
    commit_id BIGINT NOT NULL,            -- the commit that wrote it
    rows BIGINT NOT NULL,
    problem VARCHAR NOT NULL,             -- 'missing', a size mismatch, an unreadable footer
    detected_at TIMESTAMPTZ NOT NULL,
    detected_after BIGINT NOT NULL,       -- the newest commit when it was found: later ones repair it
    refetch VARCHAR NOT NULL,             -- JSON list of [start, end]: the windows listed again for it
    state VARCHAR NOT NULL,               -- 'refetching', 'repaired', 'lost' (past the retention), 'restored'
    repaired_at TIMESTAMPTZ,
    moved_to VARCHAR,                     -- where an unreadable file was set aside (under _damaged/)
    reported_in VARCHAR,                  -- the first run whose outcome reported it (NULL: none yet)
    manifest_row VARCHAR                  -- JSON: its manifest entry, put back if a good copy returns
);
CREATE TABLE IF NOT EXISTS verified_files (  -- footers already read, by what the file looked like
    path VARCHAR PRIMARY KEY,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    verified_at TIMESTAMPTZ NOT NULL
);
-- Columns added after the first release (state DBs written before them gain them here).
ALTER TABLE commits ADD COLUMN IF NOT EXISTS sources VARCHAR;  -- compaction: JSON list of the merged commits
ALTER TABLE generations ADD COLUMN IF NOT EXISTS reader_file VARCHAR;  -- the copy open_reader opens
ALTER TABLE commits ADD COLUMN IF NOT EXISTS verified BOOLEAN DEFAULT true;
ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS unavailable VARCHAR;  -- e.g. the operation is retired
ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS unavailable_since TIMESTAMPTZ;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS windows_unverified BIGINT DEFAULT 0;
"""

SWITCHED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
NOTE = "XML operation retired; exported through the REST APIs (/v1/meetings) from " + SWITCHED.isoformat()


def _old_state_db(path: Path) -> None:
    con = duckdb.connect(str(path))
    for statement in _OLD_SCRIPT.split(";"):
        if statement.strip():
            con.execute(statement)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO sync_state (site, dataset, unavailable) VALUES ('a', 'meeting_usage', ?), "
                "('a', 'event_sessions', 'XML operation retired; exported through the REST APIs (/x)'), "
                "('b', 'meeting_usage', 'gone from 2026-01-01T00:00:00+00:00')", [NOTE])
    con.close()


def _state(store: StateStore, site: str, dataset: str):  # noqa: ANN202 - a DatasetState
    return dataset_state(site, dataset, store.sync_row(site, dataset), [], [], 3, [])


def test_a_new_state_db_records_every_migration_once(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.duckdb")
    try:
        rows = store.rows("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))
        assert migrate(store.con) == []  # applied once: opening again applies nothing
    finally:
        store.close()


def test_a_state_db_from_before_the_registry_upgrades_and_keeps_its_switch_time(tmp_path: Path) -> None:
    path = tmp_path / "state.duckdb"
    _old_state_db(path)
    store = StateStore(path)
    try:
        assert applied_version(store.con) == SCHEMA_VERSION
        switched = _state(store, "a", "meeting_usage")
        assert switched.rest_switched_at == SWITCHED and switched_at(switched) == SWITCHED
        assert _state(store, "a", "event_sessions").rest_switched_at is None  # the note had no time
        assert _state(store, "b", "meeting_usage").rest_switched_at is None  # not a switch note
    finally:
        store.close()
    reopened = StateStore(path)  # nothing applied twice, nothing lost
    try:
        assert reopened.value("SELECT count(*) FROM schema_version") == SCHEMA_VERSION
        assert _state(reopened, "a", "meeting_usage").rest_switched_at == SWITCHED
    finally:
        reopened.close()


def test_the_switch_time_is_read_from_its_column_not_the_note(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.duckdb")
    try:
        store.execute("INSERT INTO sync_state (site, dataset, unavailable, rest_switched_at) VALUES "
                      "('a', 'meeting_usage', 'XML operation retired; exported through the REST APIs (/v1)', "
                      "CAST(? AS TIMESTAMPTZ))", [SWITCHED.isoformat()])
        assert switched_at(_state(store, "a", "meeting_usage")) == SWITCHED
    finally:
        store.close()


def test_a_state_db_from_a_newer_exporter_is_refused_not_written(tmp_path: Path) -> None:
    path = tmp_path / "state.duckdb"
    store = StateStore(path)
    store.execute("INSERT INTO schema_version VALUES (?, 'from a newer exporter', now())", [SCHEMA_VERSION + 1])
    store.close()
    with pytest.raises(WarehouseError, match=f"schema version {SCHEMA_VERSION + 1}, written by a newer webex-exporter"):
        StateStore(path)
    con = duckdb.connect(str(path), read_only=True)
    try:  # nothing was applied or changed
        assert con.execute("SELECT max(version) FROM schema_version").fetchall() == [(SCHEMA_VERSION + 1,)]
    finally:
        con.close()
