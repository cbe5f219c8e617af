"""The warehouse travels and its Parquet reads directly (issue #16): after routine runs over a
realistic site (twins, revisions, growing counters), a *copy* of the warehouse, with the
original deleted, answers in DuckDB, pandas and pyarrow with exactly one row per record."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as pads
from cli_helpers import cli, write_config
from test_realistic_runs import NOW, _row, run, settings_for, truth_rows

from exporter.model.datasets import by_name
from exporter.records.identity import identity_key
from exporter.simulator import load_profile

DATASETS = ("meeting_usage", "meeting_attendees", "recording_access")


def _identities(rows: list[dict], dataset: str) -> Counter:
    key = identity_key(by_name(dataset))
    return Counter(tuple(r.get(k) if k != "_occurrence" else (r.get(k) or 1) for k in key) for r in rows)


def _final(rows: list[dict]) -> list[dict]:
    return [r for r in rows if not r["_preliminary"]]


def test_a_copied_warehouse_answers_in_duckdb_pandas_and_pyarrow_one_row_per_record(sim_factory, make_settings):
    sim = sim_factory(dataclasses.replace(load_profile("realistic"), now=NOW, freeze_clock=True))
    settings = settings_for(make_settings, sim, sites=("acme-cn",))
    settings = dataclasses.replace(settings, sites=(dataclasses.replace(settings.sites[0], datasets=DATASETS),))
    for step in range(4):  # a backfill, then routine runs a day apart: revisions supersede rows
        report = run(settings, sim, backfill=step == 0)
        assert report.exit_code == 0, report.summary()
        sim.clock.advance(86_400 if step < 3 else 0)
    tmp_path = Path(settings.warehouse.root).parent
    original = Path(settings.warehouse.root)
    landed = {ds: sum(1 for _ in original.glob(f"{ds}/**/*.parquet")) for ds in DATASETS}
    moved = tmp_path / "mounted" / "copy-of-warehouse"
    shutil.copytree(original, moved)
    shutil.rmtree(original)  # the catalog must not need its original path

    con = duckdb.connect(str(moved / "webex.duckdb"), read_only=True)
    try:
        for ds in DATASETS:
            truth = truth_rows(sim, "acme-cn", ds)
            rows = _final(con.sql(f"SELECT * FROM {ds} WHERE site = 'acme-cn'").to_arrow_table().to_pylist())
            assert Counter(_row(r, ds) for r in rows) == truth, ds
            raw = con.execute(f"SELECT count(*) FROM read_parquet('{moved}/{ds}/**/*.parquet')").fetchall()[0][0]
            assert raw > len(rows), f"{ds}: the landing lake should hold superseded versions ({raw} rows)"

            # pandas over the published folder: no recipe, no schema clash with the path
            frame = pd.read_parquet(moved / "tables" / ds)
            assert len(frame) == len(rows), ds
            assert "month" in frame.columns and frame["site"].eq("acme-cn").all()
            records = frame.drop(columns=["month"]).to_dict("records")
            assert max(_identities(records, ds).values()) == 1, f"{ds}: an identity twice in the Parquet tables"

            # pyarrow datasets, hive partitioning on
            table = pads.dataset(moved / "tables" / ds, format="parquet", partitioning="hive").to_table()
            assert Counter(_row(r, ds) for r in _final(table.to_pylist())) == truth, ds
            assert landed[ds] >= 1
    finally:
        con.close()


def test_readers_of_the_published_tables_during_a_load_never_see_a_record_twice(sim_factory, tmp_path: Path):
    """A backfill runs in another process while this one reads ``tables/meeting_attendees``
    over and over with pyarrow: every read has each identity at most once, and the last read
    (after the load) has every record."""
    sim = sim_factory(dataclasses.replace(load_profile("realistic"), now=NOW, freeze_clock=True))
    config = write_config(tmp_path / "config.toml", sim.url, sites=("acme-cn",), datasets=("meeting_attendees",),
                          extra="[export]\nmax_window_records = 300\n")  # many commits, many publishes
    folder = tmp_path / "warehouse" / "tables" / "meeting_attendees"
    reads: list[int] = []
    doubled: list[int] = []
    stop = threading.Event()

    def read_forever() -> None:
        while not stop.is_set():
            if folder.exists():
                try:
                    rows = pads.dataset(folder, format="parquet", partitioning="hive").to_table().to_pylist()
                except (FileNotFoundError, OSError):
                    continue  # a month folder removed between listing and reading: read again
                counts = _identities(rows, "meeting_attendees")
                reads.append(len(rows))
                doubled.append(sum(n - 1 for n in counts.values() if n > 1))
            time.sleep(0.01)

    reader = threading.Thread(target=read_forever, daemon=True)
    reader.start()
    try:
        load = subprocess.run([sys.executable, "-m", "exporter", "backfill", "--config", str(config)],
                              capture_output=True, text=True, timeout=240, cwd=tmp_path,
                              env={**__import__("os").environ, "WEBEX_TEST_PW": "sim-password"})
    finally:
        stop.set()
        reader.join(timeout=30)
    assert load.returncode == 0, load.stderr[-2000:]
    assert len(reads) >= 3, f"only {len(reads)} reads happened during the load"
    assert sum(doubled) == 0, f"{sum(doubled)} doubled rows over {len(reads)} reads"
    final = pads.dataset(folder, format="parquet", partitioning="hive").to_table().to_pylist()
    assert Counter(_row(r, "meeting_attendees") for r in _final(final)) == truth_rows(sim, "acme-cn", "meeting_attendees")


def test_a_catalog_generation_costs_what_changed_not_the_history(sim_factory, tmp_path: Path) -> None:
    """A run that changes nothing rewrites no published month; the catalog still has every row."""
    sim = sim_factory(dataclasses.replace(load_profile("realistic"), now=NOW, freeze_clock=True))
    config = write_config(tmp_path / "config.toml", sim.url, sites=("acme-cn",), datasets=("meeting_usage",))
    assert cli("backfill", config=config).returncode == 0
    months = sorted((tmp_path / "warehouse" / "tables" / "meeting_usage").glob("month=*/part-0.parquet"))
    assert months, "no published months"
    stamps = {p: p.stat().st_mtime_ns for p in months}
    assert cli("run", config=config).returncode == 0  # same data again: new commits, same rows
    con = duckdb.connect(str(tmp_path / "warehouse" / "webex.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM meeting_usage WHERE NOT _preliminary").fetchall()[0][0] == sum(
            truth_rows(sim, "acme-cn", "meeting_usage").values()
        )
        kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'meeting_usage'").fetchall()[0]
        assert kind == ("BASE TABLE",)
    finally:
        con.close()
    # the run's windows held nothing new (the simulator's history ends before the lookback):
    # no month's lake files changed, so no published month was rewritten
    assert [p for p in months if p.stat().st_mtime_ns != stamps[p]] == []
