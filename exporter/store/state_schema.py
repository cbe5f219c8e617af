"""The state DB's schema: its first-release tables and an ordered registry of numbered
migrations, each applied once, in order, in its own transaction, when the state DB opens.

``schema_version`` records each migration applied (number, name, when).  A state DB from before
the registry has no ``schema_version``: it reads as version 0 and every migration runs on it.
That is safe because the migrations up to :data:`REGISTRY_INTRODUCED` are the statements the old
single script ran on every open (``CREATE TABLE IF NOT EXISTS``, ``ADD COLUMN IF NOT EXISTS``):
an old DB holds some or all of them already, and they do nothing twice.

To change the schema, append a :class:`Migration` with the next number; never edit or reorder
one that has shipped (an existing state DB has applied it as it was).  A migration whose
``backfill`` derives its new column from older ones is also replayed by ``state rebuild`` after
restoring a backup taken before it (:func:`backfill_restored`).
"""

from __future__ import annotations

from dataclasses import dataclass

from duckdb import DuckDBPyConnection

from ..errors import WarehouseError

__all__ = ["MIGRATIONS", "Migration", "REGISTRY_INTRODUCED", "SCHEMA_VERSION", "applied_version",
           "backfill_restored", "migrate"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema step: its ``statements``, then its ``backfill`` statements (data the
    new shape needs, derived from what is there; also replayed after restoring an older backup)."""

    version: int
    name: str
    statements: tuple[str, ...]
    backfill: tuple[str, ...] = ()


_FIRST_RELEASE_TABLES = """
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
"""

#: The ``unavailable`` note an ``auto`` site writes when it switches a dataset to REST
#: (``exporter.store.state.REST_SWITCH_NOTE`` + `` (<endpoint>) from <ISO time>``), as written
#: before ``rest_switched_at`` existed: frozen here, a migration reads the notes of its day.
_SWITCH_NOTE_BEFORE_V8 = "XML operation retired; exported through the REST APIs"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "first-release tables", tuple(s for s in _FIRST_RELEASE_TABLES.split(";") if s.strip())),
    Migration(2, "commits.sources: a compaction's merged commits (JSON list)",
              ("ALTER TABLE commits ADD COLUMN IF NOT EXISTS sources VARCHAR",)),
    Migration(3, "generations.reader_file: the copy open_reader opens",
              ("ALTER TABLE generations ADD COLUMN IF NOT EXISTS reader_file VARCHAR",)),
    Migration(4, "commits.verified", ("ALTER TABLE commits ADD COLUMN IF NOT EXISTS verified BOOLEAN DEFAULT true",)),
    Migration(5, "sync_state.unavailable: why the site does not serve the dataset (e.g. a retired operation)",
              ("ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS unavailable VARCHAR",)),
    Migration(6, "sync_state.unavailable_since",
              ("ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS unavailable_since TIMESTAMPTZ",)),
    Migration(7, "runs.windows_unverified",
              ("ALTER TABLE runs ADD COLUMN IF NOT EXISTS windows_unverified BIGINT DEFAULT 0",)),
    Migration(
        8, "sync_state.rest_switched_at: when an auto site switched the dataset from XML to REST",
        ("ALTER TABLE sync_state ADD COLUMN IF NOT EXISTS rest_switched_at TIMESTAMPTZ",),
        # The time was kept only at the end of the note ("... from <ISO time>").
        ("UPDATE sync_state SET rest_switched_at = TRY_CAST(nullif(trim(regexp_extract("
        "unavailable, ' from ([^ ]*)\\s*$', 1)), '') AS TIMESTAMPTZ) "
        f"WHERE rest_switched_at IS NULL AND starts_with(unavailable, '{_SWITCH_NOTE_BEFORE_V8}')",),
    ),
)

#: The last migration of the single script that ran before the registry (see the module text).
REGISTRY_INTRODUCED = 7

#: The schema version a state DB opened by this code has.
SCHEMA_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)
"""


def applied_version(con: DuckDBPyConnection, database: str | None = None) -> int:
    """The newest migration applied to ``database`` (default: the connection's own; 0 when it has
    no ``schema_version`` table: a state DB from before the registry, or a new one)."""
    catalog = database or str(con.execute("SELECT current_database()").fetchall()[0][0])
    (exists,) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main' "
        "AND table_name = 'schema_version'", [catalog],
    ).fetchall()[0]
    if not exists:
        return 0
    (version,) = con.execute(f'SELECT coalesce(max(version), 0) FROM "{catalog}".main.schema_version').fetchall()[0]
    return int(version)


def migrate(con: DuckDBPyConnection) -> list[int]:
    """Apply every migration above the state DB's version, in order, each in one transaction with
    its ``schema_version`` row; returns the versions applied."""
    con.execute(_VERSION_TABLE)
    done = applied_version(con)
    if done > SCHEMA_VERSION:  # an older exporter would write rows the newer schema reads wrongly
        raise WarehouseError(
            f"the state DB is at schema version {done}, written by a newer webex-exporter (this one knows up to "
            f"{SCHEMA_VERSION}); upgrade webex-exporter rather than run an older one on it"
        )
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements + migration.backfill:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [migration.version, migration.name])
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        applied.append(migration.version)
    return applied


def backfill_restored(con: DuckDBPyConnection, backup_version: int) -> None:
    """After copying the tables of a backup at ``backup_version`` into an up-to-date state DB
    (inside the caller's transaction): derive again what the later migrations derived."""
    for migration in MIGRATIONS:
        if migration.version > backup_version and migration.backfill:
            for statement in migration.backfill:
                con.execute(statement)
