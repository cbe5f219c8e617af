"""The warehouse facade on local disk: exactly-once landing, dedup rules, state, runs, compaction,
schema evolution, the lock, status, and readers in other processes while it loads."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from warehouse_worker import DATASET, SITE, make_table, window_bounds, window_rows, window_size

from exporter.config import ExportSettings, WarehouseSettings
from exporter.errors import WarehouseError
from exporter.model.datasets import DATASETS, by_name
from exporter.model.runs import DatasetOutcome, RunReport
from exporter.model.windows import Window
from exporter.store.lake import STAGING_DIR, UNKNOWN_DATE
from exporter.store.status import read_status
from exporter.store.warehouse import Warehouse

WORKER = Path(__file__).with_name("warehouse_worker.py")
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
USER_COLUMNS = "* EXCLUDE (_commit, _landed_at)"


@pytest.fixture
def settings(tmp_path: Path) -> WarehouseSettings:
    root = tmp_path / "warehouse"
    return WarehouseSettings(
        root=str(root), catalog=str(root / "webex.duckdb"), row_group_size=1000, compact_min_files=3
    )


def query(catalog: str | Path, sql: str) -> list[tuple]:
    """Run ``sql`` on the published catalog the way an analyst would: read-only, then close."""
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def day(i: int) -> Window:
    return Window(T0 + i * DAY, T0 + (i + 1) * DAY)


def usage(keys: list[int], when: datetime, *, name: str = "v1", preliminary: bool = False, **extra: object) -> pa.Table:
    rows = [{"conf_id": k, "conf_name": f"{name}-{k}", "meeting_start_time": when + timedelta(minutes=k % 600), **extra}
            for k in keys]
    return make_table("meeting_usage", rows, preliminary=preliminary)


# The warehouse records what the pipeline reports: the real report types, not stand-ins.
Outcome, Report = DatasetOutcome, RunReport


# ------------------------------------------------------------------------------ basics


def test_fresh_warehouse_has_every_view_and_table(settings: WarehouseSettings) -> None:
    with Warehouse(settings):
        pass
    con = duckdb.connect(settings.catalog, read_only=True)
    tables = {r[0] for r in con.sql("SHOW TABLES").fetchall()}
    assert {d.name for d in DATASETS} | {"runs", "sync_state", "failed_windows", "manifest", "commits"} <= tables
    for dataset in DATASETS:
        assert con.sql(f"SELECT count(*) FROM {dataset.name}").fetchall() == [(0,)]
        described = con.sql(f"DESCRIBE {dataset.name}").fetchall()
        assert [r[0] for r in described][: len(dataset.columns)] == [c.name for c in dataset.columns]
    assert con.sql("SELECT count(*) FROM runs").fetchall() == [(0,)]
    con.close()


def test_rerunning_a_window_changes_nothing_users_see(settings: WarehouseSettings) -> None:
    with Warehouse(settings) as wh:
        for i in range(3):
            wh.commit_window(SITE, DATASET, day(i), usage(list(range(i * 100, i * 100 + 20)), T0 + i * DAY),
                             cursor_to=day(i).end, run_id="r1")
        wh.publish()
        before = query(settings.catalog, f"SELECT {USER_COLUMNS} FROM meeting_usage ORDER BY conf_id")
        result = wh.commit_window(SITE, DATASET, day(1), usage(list(range(100, 120)), T0 + DAY), run_id="r2")
        assert result.rows == 20 and result.cursor == day(2).end  # cursor untouched by a lookback window
        wh.publish()
        after = query(settings.catalog, f"SELECT {USER_COLUMNS} FROM meeting_usage ORDER BY conf_id")
    assert after == before and len(after) == 60


def test_newest_version_wins_and_a_smaller_refetch_deletes_nothing(settings: WarehouseSettings) -> None:
    with Warehouse(settings) as wh:
        wh.commit_window(SITE, DATASET, day(0), usage([1, 2, 3], T0, name="old"))
        wh.commit_window(SITE, DATASET, day(0), usage([2, 3], T0, name="new"))  # record 1 is no longer listed
        wh.publish()
    rows = query(settings.catalog, "SELECT conf_id, conf_name FROM meeting_usage ORDER BY conf_id")
    assert rows == [(1, "old-1"), (2, "new-2"), (3, "new-3")]


def test_final_beats_preliminary_whatever_the_order(settings: WarehouseSettings) -> None:
    with Warehouse(settings) as wh:
        wh.commit_window(SITE, DATASET, day(0), usage([1], T0, name="prelim", preliminary=True))
        wh.commit_window(SITE, DATASET, day(0), usage([1, 2], T0, name="final"))
        wh.commit_window(SITE, DATASET, day(0), usage([2, 3], T0, name="prelim-later", preliminary=True))
        wh.publish()
    rows = query(settings.catalog, "SELECT conf_id, conf_name, _preliminary FROM meeting_usage ORDER BY conf_id")
    assert rows == [(1, "final-1", False), (2, "final-2", False), (3, "prelim-later-3", True)]


def test_rows_sharing_a_natural_key_all_land_and_a_relisting_replaces_them_by_identity(
    settings: WarehouseSettings,
) -> None:
    """Real listings hold rows with equal natural keys (exact twins, the same person on two
    devices): every one lands, numbered by ``_occurrence``; listing the window again replaces them
    one for one (same identity, newer commit), so there are never more rows than the server has."""
    twins = pa.concat_tables([usage([1, 2], T0, name="first"), usage([2], T0, name="second"), usage([2], T0, name="second")])
    with Warehouse(settings) as wh:
        assert wh.commit_window(SITE, DATASET, day(0), twins).rows == 4
        wh.publish()
        rows = "SELECT conf_id, conf_name FROM meeting_usage ORDER BY ALL"
        assert query(settings.catalog, rows) == [(1, "first-1"), (2, "first-2"), (2, "second-2"), (2, "second-2")]
        occurrences = "SELECT conf_id, list(_occurrence ORDER BY _occurrence) FROM meeting_usage GROUP BY 1 ORDER BY 1"
        assert query(settings.catalog, occurrences) == [(1, [1]), (2, [1, 2, 3])]
        wh.commit_window(SITE, DATASET, day(0), twins)  # the lookback lists the same day again
        wh.publish()
        assert query(settings.catalog, "SELECT count(*), max(_commit) FROM meeting_usage") == [(4, 2)]


def test_partitions_by_utc_start_date_and_unknown(settings: WarehouseSettings) -> None:
    rows = [{"conf_id": 1, "meeting_start_time": T0 + timedelta(hours=23)},
            {"conf_id": 2, "meeting_start_time": T0 + timedelta(hours=25)},
            {"conf_id": 3, "meeting_start_time": None}]
    with Warehouse(settings) as wh:
        result = wh.commit_window(SITE, DATASET, Window(T0, T0 + 2 * DAY), make_table(DATASET, rows))
        wh.publish()
    dirs = sorted(Path(f).parent.name for f in result.files)
    assert dirs == ["date=2026-01-01", "date=2026-01-02", f"date={UNKNOWN_DATE}"]
    root = Path(settings.root)
    assert not list((root / STAGING_DIR).glob("*.parquet"))
    direct = query(settings.catalog, f"SELECT date, conf_id FROM read_parquet('{root}/meeting_usage/**/*.parquet', "
                                     "hive_partitioning = true) ORDER BY conf_id")
    assert [r[1] for r in direct] == [1, 2, 3] and direct[2][0] is None


def test_empty_window_still_commits_and_moves_the_cursor(settings: WarehouseSettings) -> None:
    with Warehouse(settings) as wh:
        result = wh.commit_window(SITE, DATASET, day(0), None, cursor_to=day(0).end)
        assert result.rows == 0 and result.files == () and wh.state(SITE, DATASET).cursor == day(0).end


def test_a_failed_commit_leaves_nothing(settings: WarehouseSettings) -> None:
    with Warehouse(settings) as wh:
        bad = pa.table({"conf_id": ["x"], "site": [SITE]})
        with pytest.raises(WarehouseError):
            wh.commit_window(SITE, DATASET, day(0), bad, cursor_to=day(0).end)

        def refuse(stage: str) -> None:
            if stage == "staged":
                raise RuntimeError("disk full, say")

        wh._crash_hook = refuse
        with pytest.raises(RuntimeError):
            wh.commit_window(SITE, DATASET, day(0), usage([1], T0), cursor_to=day(0).end)
        wh._crash_hook = None
        assert wh.state(SITE, DATASET).cursor is None
        assert wh.store.manifest() == []
        assert wh.lake.list_files(STAGING_DIR) == wh.lake.list_files(DATASET) == []  # staged files removed again


def test_direct_readers_never_see_a_file_before_its_commit(settings: WarehouseSettings) -> None:
    glob = f"{settings.root}/meeting_usage/**/*.parquet"
    seen: dict[str, int] = {}

    def look(stage: str) -> None:
        con = duckdb.connect()
        seen[stage] = con.sql(f"SELECT count(*) FROM glob('{glob}')").fetchall()[0][0]
        con.close()

    with Warehouse(settings) as wh:
        wh._crash_hook = look
        wh.commit_window(SITE, DATASET, Window(T0, T0 + 2 * DAY), make_table(DATASET, window_rows(0)))
        wh._crash_hook = None
    assert seen == {"staged": 0, "recorded": 0, "committed": 0, "placed": 2}


def test_unknown_dataset_bad_window_and_bad_site_are_refused(settings: WarehouseSettings) -> None:
    with Warehouse(settings) as wh:
        with pytest.raises(WarehouseError, match="unknown dataset"):
            wh.commit_window(SITE, "nope", day(0), None)
        with pytest.raises(WarehouseError, match="not a window"):
            wh.commit_window(SITE, DATASET, "yesterday", None)  # type: ignore[arg-type]
        with pytest.raises(WarehouseError, match="invalid site name"):
            wh.commit_window("../etc", DATASET, day(0), None)


# ------------------------------------------------------------------------------ state and runs


def test_failed_windows_are_kept_until_covered_piece_by_piece(settings: WarehouseSettings) -> None:
    with Warehouse(settings) as wh:
        wh.fail_window(SITE, DATASET, day(0), "ApiError: boom", run_id="r1", cursor_to=day(0).end)
        wh.fail_window(SITE, DATASET, Window(T0, T0 + timedelta(hours=12)), RuntimeError("again"), run_id="r2")
        st = wh.state(SITE, DATASET)
        assert st.cursor == day(0).end  # the cursor may pass a failed window; the failed list keeps it
        assert st.failed_windows == (day(0),) and st.failures[0].attempts == 2
        assert st.failures[0].error == "RuntimeError: again"
        half = Window(T0, T0 + timedelta(hours=12))
        wh.commit_window(SITE, DATASET, half, usage([1], T0), run_id="r3")
        assert wh.state(SITE, DATASET).failed_windows == (Window(half.end, day(0).end),)
        wh.commit_window(SITE, DATASET, Window(half.end, day(0).end), None, run_id="r3")
        assert wh.state(SITE, DATASET).failed_windows == ()
        # Failed halves merge into a new failure that contains them.
        wh.fail_window(SITE, DATASET, Window(day(5).start, day(5).start + timedelta(hours=6)), "x")
        wh.fail_window(SITE, DATASET, day(5), "y")
        st = wh.state(SITE, DATASET)
        assert st.failed_windows == (day(5),) and st.failures[0].attempts == 2
    with Warehouse(settings):
        pass
    assert query(settings.catalog, "SELECT count(*) FROM failed_windows") == [(1,)]


def test_a_crashed_run_resumes_without_refetching_committed_windows(settings: WarehouseSettings) -> None:
    with Warehouse(settings) as wh:
        wh.start_run("r1", T0)
        for i in range(3):
            wh.commit_window(SITE, DATASET, day(i), usage([i], T0 + i * DAY), cursor_to=day(i).end, run_id="r1")
        wh.finish_run(Report("r1", T0, T0, [Outcome(SITE, DATASET, windows_committed=3)]))
        assert wh.state(SITE, DATASET).resume_done == ()
        wh.start_run("r2", T0)
        wh.commit_window(SITE, DATASET, day(1), usage([1], T0 + DAY), run_id="r2")  # lookback window
        wh.commit_window(SITE, DATASET, day(3), usage([3], T0 + 3 * DAY), cursor_to=day(3).end, run_id="r2")
        # ... and the process dies here: no finish_run.
    with Warehouse(settings, clock=lambda: T0 + 10 * DAY) as wh:
        st = wh.state(SITE, DATASET)
        assert st.resume_done == (day(1), day(3))
        assert st.cursor == day(3).end
        from exporter.store.state import remaining_windows

        assert remaining_windows([day(i) for i in range(5)], st.resume_done) == [day(0), day(2), day(4)]
        wh.finish_run(Report("r3", T0, T0, [Outcome(SITE, DATASET)], interrupted=True))
        assert wh.state(SITE, DATASET).resume_done == (day(1), day(3))  # an interrupted run resumes too
        wh.finish_run(Report("r4", T0, T0, [Outcome(SITE, DATASET)]))
        assert wh.state(SITE, DATASET).resume_done == ()
    outcomes = dict(query(settings.catalog, "SELECT run_id, outcome FROM run_log"))
    assert outcomes == {"r1": "ok", "r2": "crashed", "r3": "interrupted", "r4": "ok"}


def test_finish_run_writes_runs_rows_and_last_outcome(settings: WarehouseSettings) -> None:
    report = Report("run-1", T0, T0 + timedelta(minutes=5), [
        Outcome(SITE, DATASET, windows_committed=3, windows_failed=1, records=42, pages=5, requests=7,
                retries=2, throttles_by_cause=Counter({"000045": 1}), unknown_elements=Counter({"newThing": 3}), bad_values=Counter({"duration": 1}),
                errors=["[w]: ApiError: x"]),
        Outcome("other", DATASET),
    ], site_errors={"other": "AuthError: refused"})
    with Warehouse(settings) as wh:
        wh.start_run("run-1", T0)
        wh.finish_run(report)
        st = wh.state(SITE, DATASET)
        assert st.last_run is not None and st.last_run.outcome == "partial" and st.last_run.run_id == "run-1"
        assert wh.state("other", DATASET).last_run.outcome == "site_stopped"
        wh.publish()
    rows = query(settings.catalog, "SELECT site, outcome, windows, windows_failed, pages, records, requests, retries, "
                                   "throttles, unknown_elements, bad_values, errors, details "
                                   "FROM runs ORDER BY site")
    assert rows[0][:12] == ("acme", "partial", 3, 1, 5, 42, 7, 2, 1, 3, 1, 1)
    assert json.loads(rows[0][12])["unknown_elements"] == {"newThing": 3}
    assert rows[1][:2] == ("other", "site_stopped") and rows[1][11] == 1
    assert query(settings.catalog, "SELECT outcome FROM run_log") == [("partial",)]


# ------------------------------------------------------------------------------ compaction


def _data_files(settings: WarehouseSettings) -> list[Path]:
    return sorted(Path(settings.root, DATASET).rglob("*.parquet"))


def test_compaction_keeps_the_newest_version_and_bounds_file_counts(settings: WarehouseSettings) -> None:
    with Warehouse(settings, retire_grace_seconds=0) as wh:
        # 9 daily runs, each re-landing the last 3 days (lookback) with a new version.
        for run in range(9):
            for i in range(max(0, run - 2), run + 1):
                wh.commit_window(SITE, DATASET, day(i), usage([i * 10, i * 10 + 1], T0 + i * DAY, name=f"run{run}"),
                                 cursor_to=day(i).end, run_id=f"r{run}")
            wh.finish_run(Report(f"r{run}", T0, T0, [Outcome(SITE, DATASET)]))  # auto-compacts
            wh.publish()
            per_partition = Counter(p.parent.name for p in _data_files(settings))
            assert max(per_partition.values()) < settings.compact_min_files
        before = query(settings.catalog, f"SELECT {USER_COLUMNS} FROM meeting_usage ORDER BY conf_id")
        result = wh.compact(min_files=2)
        wh.publish()
        after = query(settings.catalog, f"SELECT {USER_COLUMNS} FROM meeting_usage ORDER BY conf_id")
        assert result.files_after == result.partitions and after == before
        assert len(_data_files(settings)) == 9  # one file per day left, old ones deleted
        names = dict(query(settings.catalog, "SELECT conf_id, conf_name FROM meeting_usage WHERE conf_id % 10 = 0"))
        assert names == {i * 10: f"run{min(i + 2, 8)}-{i * 10}" for i in range(9)}  # each day's last re-fetch won
        manifest = {r["path"] for r in wh.store.manifest()}
        assert manifest == {str(p.relative_to(settings.root)) for p in _data_files(settings)}


def test_retired_files_outlive_a_reader_holding_an_old_catalog(settings: WarehouseSettings) -> None:
    with Warehouse(settings, retire_grace_seconds=0) as wh:
        for version in range(3):
            wh.commit_window(SITE, DATASET, day(0), usage([1, 2], T0, name=f"v{version}"))
        wh.publish()
        reader = subprocess.Popen(
            [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
             "q = 'SELECT conf_name FROM meeting_usage ORDER BY 1'; print(c.sql(q).fetchall(), flush=True); "
             "sys.stdin.readline(); print(c.sql(q).fetchall(), flush=True)", settings.catalog],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            first = reader.stdout.readline().strip()
            wh.compact(min_files=2)
            wh.publish()
            assert len(_data_files(settings)) == 4  # 3 retired files kept for the open old catalog
            out, err = reader.communicate("\n", timeout=60)
        finally:
            if reader.poll() is None:
                reader.kill()
        assert first == out.strip() == "[('v2-1',), ('v2-2',)]", err
        wh.publish(force=True)  # the old generation is no longer open: its files can go
        assert len(_data_files(settings)) == 1


# ------------------------------------------------------------------------------ schema evolution


def test_a_new_registry_field_is_added_without_rewriting_history(settings: WarehouseSettings) -> None:
    current = by_name(DATASET)
    older = dataclasses.replace(current, columns=tuple(c for c in current.columns if c.name != "meeting_uuid"))
    registry_then = [older if d.name == DATASET else d for d in DATASETS]
    old_schema = pa.schema([f for f in make_table(current, []).schema if f.name != "meeting_uuid"])
    with Warehouse(settings, datasets=registry_then) as wh:
        table = make_table(older, [{"conf_id": 1, "meeting_start_time": T0}], schema=old_schema)
        wh.commit_window(SITE, DATASET, day(0), table)
        wh.publish()
        assert "meeting_uuid" not in [r[0] for r in query(settings.catalog, "DESCRIBE meeting_usage")]
    old_files = _data_files(settings)
    with Warehouse(settings) as wh:  # a newer exporter: the registry has meeting_uuid now
        wh.publish()
        assert query(settings.catalog, "SELECT conf_id, meeting_uuid FROM meeting_usage") == [(1, None)]
        promoted = make_table(current, [{"conf_id": 2, "meeting_start_time": T0, "meeting_uuid": "u-2"}])
        promoted = promoted.append_column("promoted_extra", pa.array(["hello"]))  # parse promoted an extra
        wh.commit_window(SITE, DATASET, day(0), promoted)
        wh.publish()
        rows = query(settings.catalog, "SELECT conf_id, meeting_uuid, promoted_extra FROM meeting_usage ORDER BY 1")
        assert rows == [(1, None, None), (2, "u-2", "hello")]
        assert all(p.exists() for p in old_files)  # history was not rewritten
        wh.compact(min_files=2)  # and compaction merges both schemas
        wh.publish()
        assert (
            query(settings.catalog, "SELECT conf_id, meeting_uuid, promoted_extra FROM meeting_usage ORDER BY 1")
            == rows
        )


# ------------------------------------------------------------------------------ lock, safety checks, status


def test_a_second_writer_fails_clearly(settings: WarehouseSettings) -> None:
    with Warehouse(settings):
        with pytest.raises(WarehouseError, match=r"another exporter \(pid \d+"):
            Warehouse(settings).open()
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from exporter.config import WarehouseSettings; "
                "from exporter.store.warehouse import Warehouse; from exporter.errors import WarehouseError\n"
                "try:\n    Warehouse(WarehouseSettings(root=sys.argv[2], catalog=sys.argv[3])).open()\n"
                "except WarehouseError as e:\n    print(e)")
        here = str(Path(__file__).parents[1])
        out = subprocess.run([sys.executable, "-c", code, here, settings.root, settings.catalog],
                             capture_output=True, text=True, timeout=60)

        assert f"pid {os.getpid()}" in out.stdout, out.stderr
    with Warehouse(settings):  # released on close
        pass


def test_a_lake_without_its_state_db_is_refused(settings: WarehouseSettings, tmp_path: Path) -> None:
    with Warehouse(settings) as wh:
        wh.commit_window(SITE, DATASET, day(0), usage([1], T0))
    elsewhere = WarehouseSettings(root=settings.root, catalog=str(tmp_path / "other" / "webex.duckdb"))
    with pytest.raises(WarehouseError, match="state DB"):
        Warehouse(elsewhere).open()


def test_status_and_gap_warnings(settings: WarehouseSettings) -> None:
    now = T0 + 80 * DAY
    export = ExportSettings(retention_days=90, gap_warning_days=75)
    with Warehouse(settings, export=export, clock=lambda: now) as wh:
        wh.commit_window(SITE, DATASET, day(0), usage([1, 2, 3], T0), cursor_to=day(0).end)
        wh.commit_window(SITE, DATASET, day(0), usage([3, 4], T0, name="v2"))
        wh.commit_window("beta", DATASET, day(79), make_table(DATASET, [{"conf_id": 9}], site="beta"),
                         cursor_to=day(79).end)
        wh.fail_window("beta", DATASET, day(78), "boom")
        rows = {(r.site, r.dataset): r for r in wh.status(expected=[("beta", "meeting_attendees")])}
        acme = rows[(SITE, DATASET)]
        assert acme.rows_held == 4 and acme.files == 2 and acme.lag == now - day(0).end
        assert acme.gap_warning and "cursor behind" in acme.gap_warning
        beta = rows[("beta", DATASET)]
        assert beta.rows_held == 1 and beta.failed_windows == 1 and beta.gap_warning is None
        assert rows[("beta", "meeting_attendees")].gap_warning.endswith("until it runs")
        warnings = wh.gap_warnings()
        assert [(w["site"], w["reason"]) for w in warnings] == [(SITE, "cursor behind")]
        assert warnings[0]["days_left"] == pytest.approx(11.0)
        wh.publish()
        # The same from the published catalog, without the writer's lock (status during a run).
        published = read_status(settings, export=export, now=now, expected=[("beta", "meeting_attendees")])
        assert published == list(rows.values())


# ------------------------------------------------------------------------------ readers while loading


def test_reader_processes_see_only_whole_windows_while_it_loads(settings: WarehouseSettings, tmp_path: Path) -> None:
    """Two real reader processes query the catalog the whole time: one reconnects every loop,
    one keeps a connection across many publishes and compactions.  Neither may ever error, see
    part of a window, or see a duplicate."""
    stop = tmp_path / "stop"
    with Warehouse(settings, retire_grace_seconds=0) as wh:
        readers = [
            subprocess.Popen(
                [sys.executable, str(WORKER), "reader", settings.catalog, str(stop), "--mode", mode],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for mode in ("fresh", "long")
        ]
        try:
            for r in readers:
                assert r.stdout.readline().strip() == "READY"
            for i in range(12):
                start, end = window_bounds(i)
                wh.commit_window(SITE, DATASET, Window(start, end), make_table(DATASET, window_rows(i)), cursor_to=end)
                if i % 3 == 2:  # a lookback re-fetch: new versions of the previous window
                    s, e = window_bounds(i - 1)
                    wh.commit_window(SITE, DATASET, Window(s, e), make_table(DATASET, window_rows(i - 1, 2)))
                if i % 6 == 5:
                    wh.compact(min_files=2)
                wh.publish()
            stop.touch()
            results = [json.loads(r.communicate(timeout=60)[0].strip().splitlines()[-1]) for r in readers]
        finally:
            stop.touch()
            for r in readers:
                if r.poll() is None:
                    r.kill()
    for summary in results:
        assert summary["errors"] == [] and summary["partial"] == [], summary
        assert summary["loops"] > 5
    assert len(results[0]["window_counts_seen"]) >= 3, results[0]  # it did watch the catalog grow
    total = query(settings.catalog, "SELECT count(*), count(DISTINCT conf_id) FROM meeting_usage")
    assert total == [(sum(window_size(i) for i in range(12)),) * 2]
