"""The same landing on object storage: a real S3-compatible server (moto) on loopback.

S3 has no rename: files are staged under ``_staging/`` and copied to their final key after the
manifest commit; only the manifest makes a file part of a table.  The catalog's views read
``s3://`` URIs (this DuckDB binds them through fsspec over pyarrow's S3 client, because DuckDB's
httpfs extension cannot be downloaded here)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

import boto3
import duckdb
import pytest
from test_warehouse_crash import committed, run_writer, verify
from warehouse_worker import DATASET, SITE, make_table, window_rows

from exporter.config import WarehouseSettings
from exporter.model.windows import Window
from exporter.store.status import read_status
from exporter.store.warehouse import Warehouse

# fsspec lets DuckDB read s3:// through pyarrow's client (httpfs cannot be downloaded offline).
pytest.importorskip("fsspec", reason="fsspec is needed to read an S3 lake through DuckDB without httpfs")

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    with pytest.MonkeyPatch.context() as mp:
        # Dummy credentials: the server is ours, on loopback; children inherit them.
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"lake-{uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def settings(s3_endpoint: str, bucket: str, tmp_path: Path) -> WarehouseSettings:
    return WarehouseSettings(root=f"s3://{bucket}/webex", catalog=str(tmp_path / "catalog" / "webex.duckdb"),
                             row_group_size=1000, compact_min_files=3, s3_endpoint_url=s3_endpoint)


def keys(s3_endpoint: str, bucket: str, prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))


def query(wh: Warehouse, sql: str) -> list[tuple]:
    """Read the published catalog as a Python analyst without httpfs would: read-only, with
    pyarrow's S3 client registered for s3:// (closed before the next publish)."""
    con = duckdb.connect(str(wh.catalog_path), read_only=True)
    try:
        con.register_filesystem(wh.lake.duckdb_filesystem())
        return con.sql(sql).fetchall()
    finally:
        con.close()


def usage(keys_: list[int], name: str, *, preliminary: bool = False):
    rows = [{"conf_id": k, "conf_name": f"{name}-{k}", "meeting_start_time": T0 + timedelta(hours=k)} for k in keys_]
    return make_table(DATASET, rows, preliminary=preliminary)


def test_landing_rerun_dedup_and_compaction_on_s3(settings: WarehouseSettings, s3_endpoint: str, bucket: str) -> None:
    with Warehouse(settings, retire_grace_seconds=0) as wh:
        assert query(wh, "SELECT count(*) FROM meeting_usage") == [(0,)]
        wh.commit_window(SITE, DATASET, Window(T0, T0 + 2 * DAY), usage([1, 2, 30], "v1"), cursor_to=T0 + 2 * DAY)
        wh.publish()
        before = query(wh, "SELECT * EXCLUDE (_commit, _landed_at) FROM meeting_usage ORDER BY conf_id")
        wh.commit_window(SITE, DATASET, Window(T0, T0 + 2 * DAY), usage([1, 2, 30], "v1"))  # rerun
        wh.publish()
        assert query(wh, "SELECT * EXCLUDE (_commit, _landed_at) FROM meeting_usage ORDER BY conf_id") == before
        wh.commit_window(SITE, DATASET, Window(T0, T0 + DAY), usage([1], "v2"))
        wh.commit_window(SITE, DATASET, Window(T0, T0 + DAY), usage([1, 2], "late-prelim", preliminary=True))
        wh.publish()
        expected = [(1, "v2-1"), (2, "v1-2"), (30, "v1-30")]
        assert query(wh, "SELECT conf_id, conf_name FROM meeting_usage ORDER BY 1") == expected
        uris = [r[0] for r in query(wh, "SELECT uri FROM manifest")]
        assert all(u.startswith(f"s3://{bucket}/webex/meeting_usage/site=acme/date=") for u in uris)

        result = wh.compact(min_files=2)
        assert (result.partitions, result.files_before, result.files_after) == (2, 6, 2)
        wh.publish()
        assert query(wh, "SELECT conf_id, conf_name FROM meeting_usage ORDER BY 1") == expected
        assert len(keys(s3_endpoint, bucket, "webex/meeting_usage/")) == 2  # one per day; old ones deleted
        assert keys(s3_endpoint, bucket, "webex/_staging/") == []
        status = {r.dataset: r for r in wh.status()}
        assert status[DATASET].rows_held == 3 and status[DATASET].files == 2
        assert [(r.rows_held, r.files) for r in read_status(settings)] == [(3, 2)]  # from the catalog, no lock


def test_uncommitted_objects_stay_out_of_the_table_prefix(
    settings: WarehouseSettings, s3_endpoint: str, bucket: str
) -> None:
    seen: dict[str, tuple[int, int]] = {}

    def look(stage: str) -> None:
        seen[stage] = (
            len(keys(s3_endpoint, bucket, "webex/_staging/")),
            len(keys(s3_endpoint, bucket, "webex/meeting_usage/")),
        )

    with Warehouse(settings) as wh:
        wh._crash_hook = look
        wh.commit_window(SITE, DATASET, Window(T0, T0 + 2 * DAY), make_table(DATASET, window_rows(0)))
        wh._crash_hook = None
    assert seen == {"staged": (2, 0), "recorded": (2, 0), "committed": (2, 0), "placed": (0, 2)}


def test_orphans_are_removed_at_start(settings: WarehouseSettings, s3_endpoint: str, bucket: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    with Warehouse(settings):
        pass
    client.put_object(Bucket=bucket, Key="webex/_staging/part-0000000001-dead.parquet", Body=b"half a file")
    with Warehouse(settings) as wh:
        assert keys(s3_endpoint, bucket, "webex/_staging/") == []
        assert query(wh, "SELECT count(*) FROM meeting_usage") == [(0,)]


@pytest.mark.parametrize(("stage", "at"), [("staged", 2), ("committed", 3), ("compact-committed", 1)])
def test_sigkill_during_commit_on_s3(settings: WarehouseSettings, stage: str, at: int) -> None:
    extra = ("--catalog", settings.catalog, "--s3-endpoint", settings.s3_endpoint_url)
    code, lines = run_writer(settings.root, *extra, "--kill-stage", stage, "--kill-at", str(at), windows=6)
    assert code == -signal.SIGKILL
    verify(settings.root, committed(lines), inflight_durable=stage in ("committed",), windows=6,
           catalog=Path(settings.catalog), s3_endpoint=settings.s3_endpoint_url)


def test_catalog_without_a_way_to_read_s3_fails_loudly_not_empty(settings: WarehouseSettings) -> None:
    """Where neither fsspec nor DuckDB's httpfs is available, the S3 catalog's views keep their
    typed columns but refuse to answer, naming the way out (never silently empty)."""
    with Warehouse(settings) as wh:
        wh.commit_window(SITE, DATASET, Window(T0, T0 + DAY), usage([1], "v1"))
    code = (
        "import sys; sys.modules['fsspec'] = None; sys.path.insert(0, sys.argv[1])\n"
        "from exporter.config import WarehouseSettings; from exporter.store.warehouse import Warehouse\n"
        "import duckdb\n"
        "s = WarehouseSettings(root=sys.argv[2], catalog=sys.argv[3], s3_endpoint_url=sys.argv[4])\n"
        "Warehouse(s).open().close()\n"
        "c = duckdb.connect(sys.argv[3], read_only=True)\n"
        "print(c.sql('SELECT lake_readable FROM catalog_info').fetchall())\n"
        "print([r[0] for r in c.sql('DESCRIBE meeting_usage').fetchall()][:2])\n"
        "print(c.sql('SELECT count(*) FROM meeting_attendees').fetchall())\n"
        "try:\n    c.sql('SELECT * FROM meeting_usage').fetchall()\nexcept duckdb.Error as e:\n    print('ERROR', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parents[1]), settings.root, settings.catalog,
         settings.s3_endpoint_url], capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    lines = out.stdout.splitlines()
    assert lines[:3] == ["[(False,)]", "['session_key', 'conf_name']", "[(0,)]"], out.stderr
    assert lines[3].startswith("ERROR") and "manifest" in lines[3] and "reading-the-lake" in lines[3]
