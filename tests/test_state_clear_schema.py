"""``state clear`` resets one dataset's progress without touching its data; ``schema`` prints the
tables' typed columns and the row identity."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import duckdb
from cli_helpers import cli, json_events, write_config


def _count(tmp_path, dataset: str) -> int:
    con = duckdb.connect(str(tmp_path / "warehouse" / "webex.duckdb"), read_only=True)
    try:
        return con.execute(f"select count(*) from {dataset}").fetchone()[0]
    finally:
        con.close()


def test_state_clear_relists_one_dataset_and_duplicates_nothing(sim_factory, tmp_path):
    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))
    config = write_config(tmp_path / "config.toml", sim.url, datasets=("meeting_usage", "recording_access"),
                          extra='[observability]\nlog_format = "json"\n')
    assert cli("run", config=config).returncode == 0
    before = {d: _count(tmp_path, d) for d in ("meeting_usage", "recording_access")}
    cleared = cli("state", "clear", "--site", "demo", "--dataset", "meeting_usage", config=config)
    assert cleared.returncode == 0 and "cursor reset" in cleared.stdout, cleared.stdout + cleared.stderr
    status = json.loads(cli("status", "--format", "json", config=config).stdout)
    cursors = {row["dataset"]: row["cursor"] for row in status}
    assert cursors["meeting_usage"] is None and cursors["recording_access"] is not None
    again = cli("run", config=config)
    assert again.returncode == 0, again.stderr
    windows = [e for e in json_events(again.stderr) if e["event"] == "window committed" and e["dataset"] == "meeting_usage"]
    assert windows, "the cleared dataset is listed again"
    assert {d: _count(tmp_path, d) for d in before} == before == {d: len(sim.ground_truth("demo", d)) for d in before}
    refused = cli("state", "clear", "--site", "demo", config=config)
    assert refused.returncode == 2 and "--dataset" in refused.stderr


def test_schema_prints_types_elements_and_identity(tmp_path):
    done = cli("schema", "--dataset", "meeting_attendees", "--format", "json")
    assert done.returncode == 0, done.stderr
    columns = {row["column"]: row for row in json.loads(done.stdout)}
    assert columns["join_time"]["type"] == "TIMESTAMPTZ" and columns["join_time"]["webex_element"] == "joinTime"
    assert columns["join_time"]["rest_field"] == "joinedTime" and columns["meeting_id"]["webex_element"] is None
    assert {c for c, row in columns.items() if row["identity"]} == {"conf_id", "name", "email", "join_time", "site",
                                                                   "_occurrence", "meeting_id"}
    assert cli("schema", "--dataset", "nope").returncode == 2
