"""Every command run as a user would: a subprocess, a config file, the simulator on loopback."""

from __future__ import annotations

import json

import duckdb
import pytest
from cli_helpers import cli, json_events, write_config


@pytest.fixture
def simulator(sim_factory):
    """The small simulator, its clock frozen at the real now: the CLI plans windows from the real clock."""
    from datetime import datetime, timezone

    return sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))


def test_run_status_query_backfill_and_report(simulator, tmp_path):
    config = write_config(tmp_path / "config.toml", simulator.url, datasets=("meeting_usage", "meeting_attendees"))
    done = cli("run", config=config)
    assert done.returncode == 0, done.stderr
    assert "meeting_attendees" in done.stdout and "ok" in done.stdout
    events = json_events(done.stderr)  # off a terminal the log is JSON, one event per window
    committed = [e for e in events if e["event"] == "window committed"]
    assert committed and {"site", "dataset", "window", "records", "requests"} <= set(committed[0])

    status = cli("status", "--format", "json", config=config)
    assert status.returncode == 0, status.stderr
    rows = {r["dataset"]: r for r in json.loads(status.stdout)}
    truth = len(simulator.ground_truth("demo", "meeting_usage"))
    assert rows["meeting_usage"]["rows"] == truth and rows["meeting_usage"]["outcome"] == "ok"

    query = cli("query", "top_hosts", "--param", "limit=2", "--format", "json", config=config)
    assert query.returncode == 0, query.stderr
    assert len(json.loads(query.stdout)) == 2
    sql = cli("query", "select count(*) as n from meeting_usage", "--format", "csv", config=config)
    assert sql.stdout.splitlines() == ["n", str(truth)]

    backfill = cli("backfill", "--dataset", "meeting_usage", config=config)
    assert backfill.returncode == 0, backfill.stderr
    con = duckdb.connect(str(tmp_path / "warehouse" / "webex.duckdb"), read_only=True)
    assert con.execute("select count(*) from meeting_usage").fetchone()[0] == truth
    assert con.execute("select count(distinct run_id) from runs where dataset = 'meeting_usage'").fetchone()[0] == 2
    con.close()

    report = cli("report", "--output", str(tmp_path / "r.html"), config=config)
    assert report.returncode == 0, report.stderr
    assert "<svg" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_usage_errors_are_one_line_with_exit_code_2(simulator, tmp_path):
    config = write_config(tmp_path / "config.toml", simulator.url)
    bad_date = cli("run", "--since", "last tuesday", config=config)
    assert bad_date.returncode == 2
    assert bad_date.stderr.strip().splitlines()[-1] == (
        "error: --since: not a date or time: 'last tuesday' (use YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)"
    )
    unknown = cli("run", "--dataset", "meetings", config=config)
    assert unknown.returncode == 2 and "unknown dataset 'meetings'" in unknown.stderr
    bad_param = cli("query", "top_hosts", "--param", "limit=many", config=config)
    assert bad_param.returncode == 2 and "--param limit: expected int, got 'many'" in bad_param.stderr


def test_refused_credentials_exit_3_without_leaking_the_password(simulator, tmp_path):
    config = write_config(tmp_path / "config.toml", simulator.url, datasets=("meeting_usage",))
    done = cli("run", config=config, password="wrong-pass-1234")
    assert done.returncode == 3
    assert "AuthError" in done.stdout + done.stderr
    assert "wrong-pass-1234" not in done.stdout + done.stderr
    assert simulator.stats()["requests_by_operation"].get("AuthenticateUser") == 1


def test_debug_shows_the_traceback(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[[sites]]\nname='x'\n", encoding="utf-8")
    plain = cli("run", config=config)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = cli("run", "--debug", config=config)
    assert "Traceback" in debug.stderr
