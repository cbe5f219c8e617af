"""Storage hardening (issue #13) on real files and real processes:

1. a tool holding ``webex.duckdb`` read-write blocks none of our readers and no publish;
2. a truncated or deleted lake file is left out of the views, shown by ``status`` and fetched
   again by the next run, which does not report success while it is damaged;
3. a lost or damaged state DB is rebuilt from its backups and the lake's commit records.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cli_helpers import cli, json_events, write_config
from test_pipeline import assert_equal_to_ground_truth, landed, truth
from warehouse_worker import DATASET, SITE, make_table, window_bounds, window_rows

from exporter.config import WarehouseSettings
from exporter.errors import WarehouseError
from exporter.model.datasets import DATASETS
from exporter.model.windows import Window
from exporter.store.catalog_readers import open_reader
from exporter.store.status import read_status
from exporter.store.warehouse import Warehouse

# What this file tests is imported where it is used, so that each test also runs (and fails on
# its own assertion) against the modules as they were before the fix.

#: Holds the file argv[1] open read-write (the DuckDB CLI's default mode) until stdin closes; prints
#: HELD, then on each input line the count of meeting_usage it sees (its own snapshot).
_HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("HELD", flush=True)
for line in sys.stdin:
    print(con.sql("SELECT count(*) FROM meeting_usage").fetchall()[0][0], flush=True)
con.close()
"""


class Holder:
    """A real process holding a DuckDB file open read-write."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "HELD", self.proc.stderr.read()

    def count(self) -> int:
        """What the holder's own (old) snapshot says: its files must still be there."""
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        assert line.isdigit(), self.proc.stderr.read()
        return int(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate("", timeout=60)


@pytest.fixture
def live_simulator(sim_factory: Any) -> Any:
    """The small simulator with its clock at the real now: the CLI plans windows from the real clock."""
    return sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))


def _warehouse_settings(root: Path, **changes: Any) -> WarehouseSettings:
    return WarehouseSettings(root=str(root), catalog=str(root / "webex.duckdb"), row_group_size=1000, **changes)


def _rows_of(windows: range) -> int:
    return sum(len(window_rows(i)) for i in windows)


def _land(settings: WarehouseSettings, windows: range) -> None:
    with Warehouse(settings) as wh:
        for i in windows:
            start, end = window_bounds(i)
            wh.commit_window(SITE, DATASET, Window(start, end), make_table(DATASET, window_rows(i)), cursor_to=end)


# ====================================================================== 1. readers


def test_a_read_write_holder_of_webex_duckdb_blocks_no_command_and_no_publish(
    live_simulator: Any, tmp_path: Path
) -> None:
    sim = live_simulator
    config = write_config(tmp_path / "config.toml", sim.url, datasets=("meeting_usage",),
                          extra="compact_min_files = 2\n")  # lands in [warehouse]: the rerun compacts
    first = cli("run", config=config)
    assert first.returncode == 0, first.stderr
    catalog = tmp_path / "warehouse" / "webex.duckdb"
    truth_before = len(sim.ground_truth("demo", "meeting_usage"))
    holder = Holder(catalog)  # e.g. `duckdb warehouse/webex.duckdb` left open in a terminal
    try:
        assert holder.count() == truth_before
        # DuckDB itself refuses every other open of that file meanwhile (this is what blocked us):
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(catalog), read_only=True)
        query = cli("query", "select 1 as one", "--format", "csv", config=config)
        assert (query.returncode, query.stdout.split()) == (0, ["one", "1"]), query.stderr
        status = cli("status", "--format", "json", config=config)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)[0]["rows"] == truth_before
        report = cli("report", "--output", str(tmp_path / "r.html"), config=config)
        assert report.returncode == 0, report.stderr

        # New history arrives; a run lands it and publishes while the holder still holds its file.
        now = sim.clock.now()
        # A day back: inside the lookback at any time of day (two days back fell before the
        # lookback's first day-aligned window just after midnight UTC, and was never listed).
        sim.add_late_rows("demo", "meeting_usage", 3, start=now - timedelta(days=1, hours=3),
                          end=now - timedelta(days=1))
        second = cli("run", config=config)
        assert second.returncode == 0, second.stderr
        count = cli("query", "select count(*) as n from meeting_usage", "--format", "csv", config=config)
        assert count.returncode == 0, count.stderr
        assert count.stdout.split() == ["n", str(truth_before + 3)]
        compactions = cli("query", "select count(*) from commits where kind = 'compaction'", "--format", "csv",
                          config=config)
        assert int(compactions.stdout.split()[1]) > 0, compactions.stderr
        # The run compacted: files the holder's old generation names were retired, not deleted.
        assert holder.count() == truth_before
        # And BI tools opening webex.duckdb by name get the new generation (a new inode).
        con = duckdb.connect(str(catalog), read_only=True)
        assert con.sql("SELECT count(*) FROM meeting_usage").fetchall() == [(truth_before + 3,)]
        con.close()
    finally:
        holder.close()


def test_open_reader_reads_a_private_copy_when_even_the_pointed_generation_is_held(tmp_path: Path) -> None:
    settings = _warehouse_settings(tmp_path / "wh")
    _land(settings, range(3))
    catalog = Path(settings.catalog)
    pointer = catalog.parent / ".webex-exporter" / "current-catalog"
    assert pointer.exists(), "no pointer to a private generation file"
    pointed = pointer.parent / json.loads(pointer.read_text())["file"]
    assert pointed.exists() and not pointed.samefile(catalog)
    holders = [Holder(catalog), Holder(pointed)]  # someone opened even the private copy read-write
    try:
        before = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
        con = open_reader(catalog)
        assert con.sql("SELECT count(*) FROM meeting_usage").fetchall() == [(_rows_of(range(3)),)]
        con.close()
        left = set(os.listdir(os.environ.get("TMPDIR", "/tmp"))) - before
        assert not {n for n in left if n.startswith("webex-catalog-")}, "the private copy was left behind"
    finally:
        for h in holders:
            h.close()


def test_a_catalog_without_pointer_held_read_write_is_read_through_a_copy(tmp_path: Path) -> None:
    """A warehouse last published by an older exporter (no pointer file)."""
    settings = _warehouse_settings(tmp_path / "wh")
    _land(settings, range(2))
    catalog = Path(settings.catalog)
    (catalog.parent / ".webex-exporter" / "current-catalog").unlink(missing_ok=True)
    holder = Holder(catalog)
    try:
        con = open_reader(catalog)
        assert con.sql("SELECT count(*) FROM meeting_usage").fetchall() == [(_rows_of(range(2)),)]
        con.close()
    finally:
        holder.close()


def test_an_idle_publish_frees_webex_duckdb_from_a_read_write_holder(tmp_path: Path) -> None:
    settings = _warehouse_settings(tmp_path / "wh")
    _land(settings, range(2))
    catalog = Path(settings.catalog)
    with Warehouse(settings, retire_grace_seconds=0) as wh:
        assert wh.publish().skipped  # nothing changed, nobody holds it: nothing to do
        holder = Holder(catalog)
        try:
            with pytest.raises(duckdb.IOException):
                duckdb.connect(str(catalog), read_only=True)
            result = wh.publish()  # nothing changed, but webex.duckdb is held read-write
            assert not result.skipped
            con = duckdb.connect(str(catalog), read_only=True)  # a BI tool can open it again
            assert con.sql("SELECT generation FROM catalog_info").fetchall() == [(result.generation,)]
            con.close()
            wh.publish(force=True)
            held_generation = [g for g in wh.store.generations() if g["generation"] == result.generation - 1]
            assert held_generation and Path(held_generation[0]["file"]).exists()  # still open: kept
            assert holder.count() == sum(len(window_rows(i)) for i in range(2))
        finally:
            holder.close()
        wh.publish(force=True)
        assert [g["generation"] for g in wh.store.generations()] == [result.generation + 2]


# ====================================================================== 2. damaged lake files


def run(settings: Any, sim: Any, **options: Any) -> Any:
    """One export at the simulator's time, the warehouse on the same clock (its retention horizon
    decides which damaged windows can still be fetched)."""
    import asyncio

    from exporter.model.runs import RunOptions
    from exporter.run.pipeline import export

    async def main() -> Any:
        with Warehouse(settings.warehouse, export=settings.export, clock=sim.clock.now) as warehouse:
            return await export(settings, RunOptions(now=sim.clock.now(), **options), warehouse=warehouse)

    return asyncio.run(main())


def _meeting_usage_files(settings: Any) -> list[dict[str, Any]]:
    with Warehouse(settings.warehouse, export=settings.export) as wh:
        return wh.store.manifest("meeting_usage")


def test_a_truncated_and_a_deleted_file_are_left_out_listed_and_fetched_again(
    sim_factory: Any, make_settings: Any
) -> None:
    sim = sim_factory()
    settings = make_settings(sim)
    assert run(settings, sim).exit_code == 0
    files = [f for f in _meeting_usage_files(settings) if f["rows"] > 0]
    corrupt, gone = files[0], files[len(files) // 2]
    assert corrupt["partition"] != gone["partition"]
    root = Path(settings.warehouse.root)
    data = (root / corrupt["path"]).read_bytes()
    (root / corrupt["path"]).write_bytes(data[: len(data) // 2])  # truncated: the footer is gone
    (root / gone["path"]).unlink()

    with Warehouse(settings.warehouse, export=settings.export, clock=sim.clock.now) as wh:  # opening publishes
        failed = wh.state("demo", "meeting_usage").failed_windows
        assert failed, "the damaged files' windows must be listed again"
    # The views answer, without the two files' rows.
    rows = landed(settings, "meeting_usage")
    assert 0 < len(rows) <= len(truth(sim, "meeting_usage")) - 1
    for dataset in ("meeting_attendees", "training_sessions"):
        assert_equal_to_ground_truth(settings, sim, dataset)  # other datasets untouched
    status = {r.dataset: r for r in read_status(settings.warehouse, export=settings.export)}
    assert status["meeting_usage"].damaged_files == 2
    con = open_reader(Path(settings.warehouse.catalog))
    listed = dict(con.sql("SELECT path, problem FROM damaged_files").fetchall())
    con.close()
    assert listed.keys() == {corrupt["path"], gone["path"]}
    assert listed[gone["path"]] == "missing" and "size" in listed[corrupt["path"]]
    assert (root / "_damaged" / corrupt["path"]).exists() and not (root / corrupt["path"]).exists()
    # The CLI's status shows them too.
    config_status = read_status(settings.warehouse, export=settings.export, count_rows=False)
    assert sum(r.damaged_files for r in config_status) == 2

    report = run(settings, sim)
    (usage,) = [o for o in report.outcomes if o.dataset == "meeting_usage"]
    assert report.exit_code == 1 and any("damaged lake file" in e for e in usage.errors), report.summary()
    for ds in DATASETS:
        assert_equal_to_ground_truth(settings, sim, ds.name)
    status = {r.dataset: r for r in read_status(settings.warehouse, export=settings.export)}
    assert status["meeting_usage"].damaged_files == 0 and status["meeting_usage"].failed_windows == 0
    assert run(settings, sim).exit_code == 0  # reported once; repaired since


def test_a_run_that_finds_damage_does_not_exit_0(live_simulator: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", live_simulator.url, datasets=("meeting_usage",))
    assert cli("run", config=config).returncode == 0
    root = tmp_path / "warehouse"
    victim = sorted((root / "meeting_usage").rglob("*.parquet"))[0]
    victim.write_bytes(b"PAR1" + b"\0" * 100)
    damaged = cli("run", config=config)
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    assert "damaged lake file" in damaged.stdout
    events = [e for e in json_events(damaged.stderr) if e["event"].startswith("damaged lake file")]
    assert events and events[0]["file"].endswith(victim.name) and events[0]["level"] == "error"
    status = cli("status", "--format", "json", config=config)
    assert json.loads(status.stdout)[0]["damaged_files"] == 0  # fetched again by that same run
    sql = cli("query", "select count(*) as n from meeting_usage", "--format", "csv", config=config)
    assert sql.stdout.split() == ["n", str(len(live_simulator.ground_truth("demo", "meeting_usage")))]
    again = cli("run", config=config)
    assert again.returncode == 0, again.stdout + again.stderr
    verify = cli("state", "verify", config=config)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_damage_beyond_the_retention_is_recorded_as_lost(tmp_path: Path) -> None:
    from exporter.config import ExportSettings

    settings = _warehouse_settings(tmp_path / "wh")
    _land(settings, range(4))  # windows in January 2026
    later = datetime(2026, 6, 1, tzinfo=timezone.utc)
    with Warehouse(settings, export=ExportSettings(), clock=lambda: later) as wh:
        victim = wh.store.manifest(DATASET)[0]
        path = Path(settings.root) / victim["path"]
        saved = path.read_bytes()
        path.unlink()
        found = wh.verify_lake()
        assert [f["path"] for f in found] == [victim["path"]]
        (row,) = wh.damaged_files()
        assert row["state"] == "lost" and not wh.state(SITE, DATASET).failed_windows
        path.write_bytes(saved)  # a good copy put back (from a backup of the lake)
        assert wh.verify_lake() == [] and wh.damaged_files() == []
        assert victim["path"] in {r["path"] for r in wh.store.manifest(DATASET)}
        wh.publish()
    con = open_reader(Path(settings.catalog))
    assert con.sql("SELECT count(*) FROM meeting_usage").fetchall() == [(sum(len(window_rows(i)) for i in range(4)),)]
    con.close()


def test_so_many_missing_files_look_like_an_unmounted_lake_and_change_nothing(tmp_path: Path) -> None:
    settings = _warehouse_settings(tmp_path / "wh")
    _land(settings, range(12))  # 24 files
    with Warehouse(settings) as wh:
        paths = [r["path"] for r in wh.store.manifest()]
    for p in paths:
        (Path(settings.root) / p).unlink()
    with pytest.raises(WarehouseError, match="is the lake's disk mounted"):
        Warehouse(settings).open()
    from exporter.store.state_db import StateStore

    store = StateStore(Path(settings.catalog).parent / ".webex-exporter" / "state.duckdb")
    assert len(store.manifest()) == len(paths) and not store.rows("SELECT * FROM damaged_files")
    store.close()


def test_footers_are_read_once_until_a_file_changes(tmp_path: Path, monkeypatch: Any) -> None:
    from exporter.store.lake import Lake

    settings = _warehouse_settings(tmp_path / "wh")
    _land(settings, range(3))
    reads: list[str] = []
    original = Lake.check_parquet
    monkeypatch.setattr(Lake, "check_parquet", lambda self, rel, **kw: reads.append(rel) or original(self, rel, **kw))
    with Warehouse(settings) as wh:
        assert reads == []  # remembered from the publishes that landed them
        wh.publish(force=True)
        assert reads == []
        target = Path(settings.root) / wh.store.manifest()[0]["path"]
        os.utime(target, ns=(1, 1))  # touched: read again
        wh.publish(force=True)
        assert reads == [wh.store.manifest()[0]["path"]]


# ====================================================================== 3. state DB loss


def _status(config: Path) -> dict[str, dict[str, Any]]:
    done = cli("status", "--format", "json", config=config)
    assert done.returncode == 0, done.stderr
    return {r["dataset"]: r for r in json.loads(done.stdout)}


def _rows(config: Path, sql: str) -> list[list[str]]:
    done = cli("query", sql, "--format", "csv", config=config)
    assert done.returncode == 0, done.stderr
    return [line.split(",") for line in done.stdout.splitlines()[1:]]


_LAST_RUN_WINDOWS = ("select dataset, windows from runs where run_id = "
                     "(select run_id from run_log order by started_at desc limit 1) order by dataset")


@pytest.mark.parametrize("damage", ["deleted", "corrupted"])
def test_a_lost_or_corrupted_state_db_is_rebuilt_and_the_next_run_is_complete(
    live_simulator: Any, tmp_path: Path, damage: str
) -> None:
    sim = live_simulator
    datasets = ("meeting_attendees", "meeting_usage")
    config = write_config(tmp_path / "config.toml", sim.url, datasets=datasets)
    assert cli("run", config=config).returncode == 0
    now = sim.clock.now()
    sim.add_late_rows("demo", "meeting_usage", 2, start=now - timedelta(days=1, hours=3), end=now - timedelta(days=1))
    assert cli("run", config=config).returncode == 0  # an incremental run (the lookback)
    incremental = _rows(config, _LAST_RUN_WINDOWS)
    before = _status(config)
    home = tmp_path / "warehouse" / ".webex-exporter"
    backups = sorted((home / "backups").glob("state-*.duckdb"))
    assert len(backups) == 2
    # Only the first run's backup survives: the lake's commit records must bring the second back.
    backups[-1].unlink()

    state = home / "state.duckdb"
    if damage == "deleted":
        state.unlink()
    else:
        data = bytearray(state.read_bytes())
        data[: 4096 * 3] = os.urandom(4096 * 3)  # headers and first blocks overwritten
        state.write_bytes(bytes(data))
    refused = cli("run", config=config)
    assert refused.returncode == 4 and "state rebuild" in refused.stderr, refused.stderr

    rebuilt = cli("state", "rebuild", config=config)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "from backup" in rebuilt.stdout and "commit record" in rebuilt.stdout, rebuilt.stdout
    print(rebuilt.stdout)
    root = tmp_path / "warehouse"
    with Warehouse(WarehouseSettings(root=str(root), catalog=str(root / "webex.duckdb"))) as wh:
        for dataset in datasets:
            st = wh.state("demo", dataset)
            assert st.cursor is not None and st.cursor.isoformat() == before[dataset]["cursor"], dataset
            assert not st.failed_windows, (dataset, st.failed_windows)  # nothing uncovered to fetch again
    again = cli("run", config=config)
    assert again.returncode == 0, again.stdout + again.stderr
    after = _status(config)
    for dataset in datasets:
        want = len(sim.ground_truth("demo", dataset))
        assert after[dataset]["rows"] == want, dataset
        assert _rows(config, f"select count(*) from {dataset}") == [[str(want)]]  # nothing lost, nothing twice
        assert after[dataset]["cursor"] >= before[dataset]["cursor"]
        assert after[dataset]["failed_windows"] == 0 and after[dataset]["damaged_files"] == 0
    # Incremental, not a 90-day refetch: the same windows as the incremental run before the loss.
    assert _rows(config, _LAST_RUN_WINDOWS) == incremental
    assert int(incremental[0][1]) < 20
    assert sorted(p.name for p in home.glob("state.duckdb.broken-*")) != [] or damage == "deleted"


def test_a_rebuild_from_commit_records_alone_lists_a_failed_window_the_cursor_passed(
    simulator: Any, make_settings: Any
) -> None:
    settings = make_settings(simulator, window_hours=24)
    settings = dataclasses.replace(settings, sites=(dataclasses.replace(
        settings.sites[0], datasets=("meeting_usage",),
        throttle=dataclasses.replace(settings.sites[0].throttle, max_attempts=1),
    ),))
    simulator.queue_fault("http5xx", count=50, operation="LstmeetingusageHistory")
    assert run(settings, simulator).exit_code == 1  # some windows failed; the cursor moved past them
    with Warehouse(settings.warehouse, export=settings.export, clock=simulator.clock.now) as wh:
        failed = wh.state("demo", "meeting_usage").failed_windows
        cursor = wh.state("demo", "meeting_usage").cursor
    assert failed and cursor is not None and max(w.end for w in failed) <= cursor
    home = Path(settings.warehouse.catalog).parent / ".webex-exporter"
    shutil.rmtree(home / "backups", ignore_errors=True)
    (home / "state.duckdb").unlink()
    with pytest.raises(WarehouseError, match="state rebuild"):
        Warehouse(settings.warehouse, export=settings.export).open()
    from exporter.store.state_rebuild import rebuild_state

    result = rebuild_state(settings.warehouse, export=settings.export, clock=simulator.clock.now)
    assert result.backup is None and result.records > 0 and result.gaps >= len(failed)
    with Warehouse(settings.warehouse, export=settings.export, clock=simulator.clock.now) as wh:
        st = wh.state("demo", "meeting_usage")
        assert st.cursor == cursor
        listed = st.failed_windows
        assert all(any(g.start <= w.start and w.end <= g.end or (g.start <= w.start < g.end) for g in listed)
                   for w in failed), (failed, listed)
    simulator.set_faults(queue=())
    second = run(settings, simulator)
    assert second.exit_code == 0, second.summary()
    assert_equal_to_ground_truth(settings, simulator, "meeting_usage")


def test_a_healthy_state_db_is_not_replaced_without_force_and_backups_rotate(tmp_path: Path) -> None:
    settings = _warehouse_settings(tmp_path / "wh")
    from exporter.model.runs import RunReport

    with Warehouse(settings) as wh:
        for i in range(5):
            start, end = window_bounds(i)
            wh.commit_window(SITE, DATASET, Window(start, end), make_table(DATASET, window_rows(i)), cursor_to=end)
            wh.finish_run(RunReport(run_id=f"r{i}", started_at=datetime.now(timezone.utc)))
    backups = sorted((Path(settings.catalog).parent / ".webex-exporter" / "backups").iterdir())
    assert len(backups) == 3 and all(b.name.startswith("state-") for b in backups)
    from exporter.store.state_rebuild import rebuild_state

    with pytest.raises(WarehouseError, match="--force"):
        rebuild_state(settings)
    result = rebuild_state(settings, force=True)
    assert result.backup == backups[-1] and result.records == 0 and result.moved_aside
    with Warehouse(settings) as wh:
        assert wh.state(SITE, DATASET).cursor == window_bounds(4)[1]
        assert len(wh.store.rows("SELECT * FROM run_log")) == 5  # the run history came from the backup
    con = open_reader(Path(settings.catalog))
    assert con.sql("SELECT count(*) FROM meeting_usage").fetchall() == [(sum(len(window_rows(i)) for i in range(5)),)]
    con.close()


def test_a_rebuild_from_the_records_alone_equals_the_state_it_replaces(tmp_path: Path, monkeypatch: Any) -> None:
    """Re-landings, an unverified listing retired by a verified one, compactions, a failed window
    the cursor moved past, records folded into segments: the rebuilt state holds exactly the same
    files, cursor and unverified windows, and lists the failed window again."""
    import exporter.store.commit_records as warehouse_module
    from exporter.config import ExportSettings
    from exporter.model.runs import RunReport
    from exporter.store.state_rebuild import rebuild_state

    monkeypatch.setattr(warehouse_module, "RECORDS_PER_SEGMENT", 3)
    settings = _warehouse_settings(tmp_path / "wh", compact_min_files=3)
    # The retention horizon falls inside window 0: everything from there on was planned and landed.
    export = ExportSettings(retention_days=30)
    now = datetime(2026, 1, 31, 12, tzinfo=timezone.utc)
    with Warehouse(settings, export=export, retire_grace_seconds=0, clock=lambda: now) as wh:
        for i in range(8):
            start, end = window_bounds(i)
            if i == 5:
                wh.fail_window(SITE, DATASET, Window(start, end), "boom", cursor_to=end)
                continue
            wh.commit_window(SITE, DATASET, Window(start, end), make_table(DATASET, window_rows(i)), cursor_to=end)
            if i % 3 == 2:
                s, e = window_bounds(i - 1)
                wh.commit_window(SITE, DATASET, Window(s, e), make_table(DATASET, window_rows(i - 1, 2)))
            if i == 6:
                s, e = window_bounds(6)
                wh.commit_window(SITE, DATASET, Window(s, e), make_table(DATASET, window_rows(6, 3)), verified=False,
                                 problem="total moved")
            if i == 4:
                wh.compact(min_files=2)
            wh.finish_run(RunReport(run_id=f"r{i}", started_at=now))  # folds records, backs up
        s, e = window_bounds(6)
        wh.commit_window(SITE, DATASET, Window(s, e), make_table(DATASET, window_rows(6, 4)))  # verifies it
        s, e = window_bounds(7)
        wh.commit_window(SITE, DATASET, Window(s, e), make_table(DATASET, window_rows(7, 5)), verified=False,
                         problem="still moving")
        manifest = {r["path"]: r for r in wh.store.manifest()}
        retired = {r["path"] for r in wh.store.rows("SELECT path FROM retired_files")}
        cursor = wh.state(SITE, DATASET).cursor
        unverified = [(u.window, u.commit_id) for u in wh.state(SITE, DATASET).unverified]
        commits = wh.store.max_commit()
        kinds = {r["kind"]: r["n"] for r in wh.store.rows("SELECT kind, count(*) AS n FROM commits GROUP BY kind")}
    con = open_reader(Path(settings.catalog))
    before = con.sql("SELECT conf_id, conf_name, _verified FROM meeting_usage ORDER BY ALL").fetchall()
    con.close()
    root = Path(settings.root)
    assert list((root / "_commits").glob("segment-*.jsonl")), "records were folded into segments"
    assert kinds.get("compaction") and kinds.get("window")
    home = Path(settings.catalog).parent / ".webex-exporter"
    shutil.rmtree(home / "backups")
    (home / "state.duckdb").unlink()

    result = rebuild_state(settings, export=export, clock=lambda: now)
    assert result.backup is None and result.records == commits and result.adopted_files == 0
    with Warehouse(settings, export=export, retire_grace_seconds=0, clock=lambda: now) as wh:
        assert {r["path"]: r for r in wh.store.manifest()} == manifest
        assert {r["path"] for r in wh.store.rows("SELECT path FROM retired_files")} <= retired
        st = wh.state(SITE, DATASET)
        assert st.cursor == cursor
        assert [(u.window, u.commit_id) for u in st.unverified] == unverified
        failed = sorted(st.failed_windows)  # window 5, listed again in pieces of window_hours
        assert (failed[0].start, failed[-1].end) == window_bounds(5)
        assert all(a.end == b.start for a, b in zip(failed, failed[1:]))
        assert wh.store.max_commit() == commits
    con = open_reader(Path(settings.catalog))
    assert con.sql("SELECT conf_id, conf_name, _verified FROM meeting_usage ORDER BY ALL").fetchall() == before
    con.close()


def test_a_commit_killed_after_its_record_leaves_no_record_behind(tmp_path: Path) -> None:
    worker = Path(__file__).with_name("warehouse_worker.py")
    root = tmp_path / "wh"
    done = subprocess.run([sys.executable, str(worker), "writer", str(root), "--windows", "6", "--kill-stage",
                           "recorded", "--kill-at", "4"], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    assert len(list((root / "_commits").glob("*.json"))) == 4  # the fourth record: its commit never happened
    with Warehouse(WarehouseSettings(root=str(root), catalog=str(root / "webex.duckdb"))) as wh:
        commits = {r["commit_id"] for r in wh.store.rows("SELECT commit_id FROM commits")}
    records = {int(p.stem) for p in (root / "_commits").glob("*.json")}
    assert records == commits == {1, 2, 3}


@pytest.fixture(scope="module")
def s3_endpoint() -> Any:
    """A moto S3 server on loopback (as in test_warehouse_s3), with dummy credentials."""
    pytest.importorskip("fsspec", reason="fsspec is needed to read an S3 lake through DuckDB without httpfs")
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as mp:
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


def test_an_s3_lake_survives_the_loss_of_the_machine_that_ran_the_exporter(tmp_path: Path, s3_endpoint: str) -> None:
    """State DB, backups and catalogs were on the lost machine; the bucket holds the data and the
    commit records, which are enough for a new machine to carry on."""
    import boto3

    from exporter.store.state_rebuild import rebuild_state

    name = f"lake-{os.urandom(5).hex()}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    first = WarehouseSettings(root=f"s3://{name}/webex", catalog=str(tmp_path / "old" / "webex.duckdb"),
                              row_group_size=1000, compact_min_files=3, s3_endpoint_url=s3_endpoint)
    with Warehouse(first, retire_grace_seconds=0) as wh:
        for i in range(5):
            start, end = window_bounds(i)
            wh.commit_window(SITE, DATASET, Window(start, end), make_table(DATASET, window_rows(i)), cursor_to=end)
        s, e = window_bounds(3)
        wh.commit_window(SITE, DATASET, Window(s, e), make_table(DATASET, window_rows(3, 2)))
        wh.compact(min_files=2)
        manifest = {r["path"] for r in wh.store.manifest()}
        cursor = wh.state(SITE, DATASET).cursor
    shutil.rmtree(tmp_path / "old")
    second = dataclasses.replace(first, catalog=str(tmp_path / "new" / "webex.duckdb"))
    result = rebuild_state(second)
    assert result.backup is None and result.adopted_files == 0 and result.missing_files == 0
    with Warehouse(second) as wh:
        assert {r["path"] for r in wh.store.manifest()} == manifest
        assert wh.state(SITE, DATASET).cursor == cursor
        fs = wh.lake.duckdb_filesystem()
    con = duckdb.connect(second.catalog, read_only=True)
    con.register_filesystem(fs)
    rows = con.sql("SELECT count(*), count(DISTINCT conf_id), max(duration) FROM meeting_usage").fetchall()
    con.close()
    total = sum(len(window_rows(i)) for i in range(5))
    assert rows == [(total, total, 2)]


def test_an_old_state_db_copied_over_the_current_one_is_refused(tmp_path: Path) -> None:
    """A backup copied back by hand knows fewer commits than the lake: commits numbered over the
    newer ones would hide their files, so the exporter refuses and names the rebuild."""
    from exporter.model.runs import RunReport

    settings = _warehouse_settings(tmp_path / "wh")
    with Warehouse(settings) as wh:
        start, end = window_bounds(0)
        wh.commit_window(SITE, DATASET, Window(start, end), make_table(DATASET, window_rows(0)), cursor_to=end)
        wh.finish_run(RunReport(run_id="r1", started_at=datetime.now(timezone.utc)))
        start, end = window_bounds(1)
        wh.commit_window(SITE, DATASET, Window(start, end), make_table(DATASET, window_rows(1)), cursor_to=end)
    home = Path(settings.catalog).parent / ".webex-exporter"
    (backup,) = (home / "backups").glob("state-*.duckdb")
    shutil.copyfile(backup, home / "state.duckdb")
    with pytest.raises(WarehouseError, match=r"older than the lake .*state rebuild --force"):
        Warehouse(settings).open()
    from exporter.store.state_rebuild import rebuild_state

    rebuild_state(settings, force=True)
    with Warehouse(settings) as wh:
        assert wh.state(SITE, DATASET).cursor == window_bounds(1)[1]
        assert len(wh.store.manifest()) == 4
