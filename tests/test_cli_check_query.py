"""``check`` and ``query`` as a user runs them: real processes, a real simulator on loopback."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import datetime, timezone

from cli_helpers import cli, write_config

from exporter.simulator import load_profile


def test_check_names_what_works_and_what_does_not(sim_factory, tmp_path):
    config = dataclasses.replace(load_profile("realistic"), now=datetime.now(timezone.utc).replace(microsecond=0))
    sim = sim_factory(config)
    good = write_config(tmp_path / "good.toml", sim.url, sites=("acme-cn",))
    done = cli("check", "--format", "json", config=good)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = json.loads(done.stdout)
    assert {line["status"] for line in lines} == {"ok"} and len(lines) == 4 + 11
    assert any(line["check"] == "time zone" and "45" in line["detail"] for line in lines)
    legacy = write_config(tmp_path / "legacy.toml", sim.url, sites=("legacy",))
    retired = cli("check", config=legacy)
    assert retired.returncode == 1 and "LstAccessAnywhereHistory is retired" in retired.stdout
    refused = cli("check", config=good, password="wrong")
    assert refused.returncode == 3 and "credentials" in refused.stdout and "wrong" not in refused.stdout


def test_query_lists_reads_files_and_stdin_speaks_ndjson_and_keeps_hints(sim_factory, tmp_path):
    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))
    config = write_config(tmp_path / "config.toml", sim.url, datasets=("meeting_usage",))
    assert cli("run", config=config).returncode == 0
    listed = cli("query", "--list", config=config)
    assert listed.returncode == 0 and "top_hosts" in listed.stdout
    sql = tmp_path / "count.sql"
    sql.write_text("select count(*) as n from meeting_usage", encoding="utf-8")
    from_file = cli("query", "--file", str(sql), "--format", "ndjson", config=config)
    assert from_file.returncode == 0 and json.loads(from_file.stdout.splitlines()[0])["n"] > 0
    piped = subprocess.run([sys.executable, "-m", "exporter", "query", "--file", "-", "--format", "ndjson",
                            "--config", str(config)], input="select 41 + 1 as answer", capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    assert piped.returncode == 0 and json.loads(piped.stdout) == {"answer": 42}, piped.stderr
    typo = cli("query", "select * from meetng_usage", config=config)
    assert typo.returncode == 2 and 'Did you mean "meeting_usage"' in typo.stderr
