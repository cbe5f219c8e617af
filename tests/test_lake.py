"""Parquet files: shaping tables for landing, staging, moving into place, local reading."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from warehouse_worker import arrow_schema, make_table

from exporter.errors import WarehouseError
from exporter.model.datasets import by_name
from exporter.store.lake import STAGING_DIR, UNKNOWN_DATE, Lake
from exporter.store.lake_shaping import conform, dedupe_latest, split_partitions, with_lineage

USAGE = by_name("meeting_usage")
T0 = datetime(2026, 2, 1, 12, tzinfo=timezone.utc)


def test_conform_orders_types_and_fills_columns() -> None:
    table = pa.table({
        "conf_name": ["a"],
        "conf_id": pa.array([7], pa.int32()),  # narrower int: cast to int64
        "brand_new": ["kept"],  # a column the registry does not know (a promoted extra)
    })
    shaped = conform(table, USAGE, "acme")
    names = [c.name for c in USAGE.columns]
    assert shaped.column_names == names + ["site", "extra", "_preliminary", "_occurrence", "_verified", "brand_new"]
    assert shaped.schema.field("conf_id").type == pa.int64()
    assert shaped.schema.field("meeting_start_time").type == pa.timestamp("us", tz="UTC")
    row = shaped.to_pylist()[0]
    assert row["conf_id"] == 7 and row["site"] == "acme" and row["_preliminary"] is False
    assert row["brand_new"] == "kept" and row["duration"] is None


def test_conform_accepts_parse_schema_unchanged() -> None:
    table = make_table(USAGE, [{"conf_id": 1, "meeting_start_time": T0}])
    shaped = conform(table, USAGE, "acme")
    assert shaped.column_names == arrow_schema(USAGE).names + ["_occurrence", "_verified"]
    assert shaped.column("conf_id").to_pylist() == [1]


def test_conform_refuses_rows_of_another_site_and_uncastable_types() -> None:
    with pytest.raises(WarehouseError, match="site"):
        conform(make_table(USAGE, [{"conf_id": 1}], site="other"), USAGE, "acme")
    with pytest.raises(WarehouseError, match="conf_id"):
        conform(pa.table({"conf_id": ["not a number"]}), USAGE, "acme")


def _lineaged(rows: list[tuple[int, int, bool, str]]) -> pa.Table:
    """rows of (key, commit, preliminary, label)."""
    return pa.table({
        "site": ["s"] * len(rows),
        "conf_id": [r[0] for r in rows],
        "_commit": pa.array([r[1] for r in rows], pa.int64()),
        "_preliminary": [r[2] for r in rows],
        "label": [r[3] for r in rows],
    })


def test_dedupe_latest_rules() -> None:
    table = _lineaged([
        (1, 1, False, "old final"), (1, 2, False, "new final"),
        (2, 1, False, "final"), (2, 5, True, "later preliminary"),
        (3, 1, True, "prelim"), (3, 1, True, "prelim, later row"),
        (None, 1, False, "null key a"), (None, 2, False, "null key b"),
    ])
    kept = dedupe_latest(table, ["site", "conf_id"]).to_pylist()
    assert sorted((r["conf_id"] or 0, r["label"]) for r in kept) == [
        (0, "null key b"), (1, "new final"), (2, "final"), (3, "prelim, later row"),
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(1, 5), st.booleans()), min_size=1, max_size=30))
def test_dedupe_latest_matches_brute_force(rows: list[tuple[int, int, bool]]) -> None:
    table = _lineaged([(k, c, p, str(i)) for i, (k, c, p) in enumerate(rows)])
    kept = {r["conf_id"]: r["label"] for r in dedupe_latest(table, ["site", "conf_id"]).to_pylist()}
    expected = {}
    for key in {k for k, _, _ in rows}:
        best = max((i for i, r in enumerate(rows) if r[0] == key), key=lambda i: (not rows[i][2], rows[i][1], i))
        expected[key] = str(best)
    assert kept == expected


def test_split_partitions_by_utc_date_with_unknown() -> None:
    late = datetime(2026, 2, 1, 23, 30, tzinfo=timezone.utc)  # 00:30 next day in UTC+1: still Feb 1
    table = conform(make_table(USAGE, [
        {"conf_id": 1, "meeting_start_time": late},
        {"conf_id": 2, "meeting_start_time": late + timedelta(hours=1)},
        {"conf_id": 3, "meeting_start_time": None},
        {"conf_id": 4, "meeting_start_time": late - timedelta(hours=5)},
    ]), USAGE, "acme")
    parts = dict(split_partitions(table, USAGE.start_column))
    assert sorted(parts) == ["2026-02-01", "2026-02-02", UNKNOWN_DATE]
    assert parts["2026-02-01"].column("conf_id").to_pylist() == [4, 1]  # sorted by start
    assert parts[UNKNOWN_DATE].column("conf_id").to_pylist() == [3]


def _stage(lake: Lake, commit_id: int = 1, n: int = 3, partition: str = "2026-02-01"):
    rows = [{"conf_id": i, "meeting_start_time": T0 + timedelta(minutes=i)} for i in range(n)]
    table = with_lineage(conform(make_table(USAGE, rows), USAGE, "acme"), commit_id, T0)
    return lake.write_staged(table, dataset=USAGE, site="acme", partition=partition, commit_id=commit_id)


def test_staged_file_is_invisible_to_readers_until_placed(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"), row_group_size=2)
    staged = _stage(lake)
    assert staged.staged.startswith(f"{STAGING_DIR}/") and lake.exists(staged.staged)
    assert staged.final.startswith("meeting_usage/site=acme/date=2026-02-01/part-0000000001-")
    glob = str(tmp_path / "lake" / "meeting_usage" / "**" / "*.parquet")
    con = duckdb.connect()
    assert con.sql(f"SELECT count(*) FROM glob('{glob}')").fetchall() == [(0,)]
    # Even a reader pointed at the whole root skips '_'-prefixed directories.
    assert pads.dataset(str(tmp_path / "lake"), format="parquet").files == []

    lake.place(staged.staged, staged.final)
    assert not lake.exists(staged.staged) and lake.exists(staged.final)
    assert con.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(3,)]
    lake.place(staged.staged, staged.final)  # idempotent: a repeat after a crash is harmless

    meta = pq.ParquetFile(lake.path(staged.final)).metadata
    assert meta.num_row_groups == 2  # row_group_size=2, 3 rows
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert meta.metadata[b"webex.commit"] == b"1"
    assert staged.rows == 3 and staged.bytes == Path(lake.path(staged.final)).stat().st_size
    assert staged.min_start == T0 and staged.max_start == T0 + timedelta(minutes=2)


def test_place_reports_a_lost_file(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    staged = _stage(lake)
    lake.delete(staged.staged)
    with pytest.raises(WarehouseError, match="missing"):
        lake.place(staged.staged, staged.final)


def test_list_read_delete_and_schema_union(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    a = _stage(lake, 1, 2)
    lake.place(a.staged, a.final)
    extra = pa.table({"conf_id": pa.array([9], pa.int64()), "new_col": ["x"]})
    with lake.fs.open_output_stream(lake.path("meeting_usage/other.parquet")) as out:
        pq.write_table(extra, out)
    assert lake.list_files("meeting_usage") == sorted([a.final, "meeting_usage/other.parquet"])
    assert lake.list_files("nothing_here") == []
    both = lake.read([a.final, "meeting_usage/other.parquet"])
    assert both.num_rows == 3 and both.column("new_col").to_pylist() == [None, None, "x"]
    lake.delete("meeting_usage/other.parquet")
    lake.delete("meeting_usage/other.parquet")  # missing is fine
    assert lake.list_files("meeting_usage") == [a.final]


def test_storage_errors_become_warehouse_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(WarehouseError):
        Lake(str(blocker / "lake"))
    with pytest.raises(WarehouseError, match="s3://"):
        Lake("gs://bucket/x")
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(WarehouseError, match="reading"):
        lake.read(["meeting_usage/missing.parquet"])
