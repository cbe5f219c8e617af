"""``serve`` as an operator runs it: a real process on a seconds-long schedule, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import duckdb
from cli_helpers import cli, write_config

DATASETS = ("meeting_usage", "meeting_attendees")


def _wait_for(proc: subprocess.Popen, lines: list[dict], predicate, timeout: float) -> None:
    """Read JSON log lines from ``proc.stderr`` until ``predicate(lines)``; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate(lines):
        assert time.monotonic() < deadline, f"timed out; last events: {[e.get('event') for e in lines[-8:]]}"
        line = proc.stderr.readline()
        assert line, f"serve exited early with {proc.poll()}"
        if line.startswith("{"):
            lines.append(json.loads(line))
        elif line.strip():
            lines.append({"event": "non-json line", "raw": line})


def _finished(lines: list[dict], dataset: str) -> int:
    return sum(1 for e in lines if e["event"] == "job finished" and e.get("dataset") == dataset)


def _started(lines: list[dict], dataset: str) -> int:
    return sum(1 for e in lines if e["event"] == "job started" and e.get("dataset") == dataset)


def test_serve_runs_cycles_and_stops_cleanly_on_sigterm(sim_factory, tmp_path):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # 150 ms per request: a cycle takes long enough to be stopped in the middle of it.
    sim = sim_factory(now=now, days=4)
    sim.set_faults(latency_ms=150)
    config = write_config(tmp_path / "config.toml", sim.url, datasets=DATASETS,
                          extra="[schedule]\ninterval_seconds = 2\nmisfire_grace_seconds = 30\n"
                                "[observability]\nlog_format = \"json\"\nmetrics_port = 0\n")
    env = {**os.environ, "WEBEX_TEST_PW": "sim-password"}
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--config", str(config)], cwd=tmp_path,
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: list[dict] = []
    try:
        _wait_for(proc, lines, lambda ls: all(_finished(ls, d) >= 2 for d in DATASETS), timeout=90)
        # A second exporter must not write the same warehouse while serve holds it.
        locked = cli("run", config=config)
        assert locked.returncode == 4, locked.stderr
        assert "lock" in locked.stderr.lower()
        # Stop in the middle of a third cycle.
        _wait_for(proc, lines, lambda ls: _started(ls, "meeting_attendees") >= 3, timeout=60)
        time.sleep(0.2)
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        exit_seconds = time.monotonic() - stopped_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rest = proc.stderr.read() if proc.stderr else ""
        lines += [json.loads(x) if x.startswith("{") else {"event": "non-json line", "raw": x}
                  for x in rest.splitlines() if x.strip()]
    assert proc.returncode == 0
    assert exit_seconds < 10, f"serve took {exit_seconds:.1f} s to stop"
    # A JSON log is JSON line for line, the scheduler's own warnings (a job skipped while its
    # previous run goes on) included.
    messy = [e["raw"] for e in lines if e["event"] == "non-json line"]
    assert not messy, messy[:5]
    assert any(e["event"] == "service stopped" for e in lines)
    # Committed work stayed; nothing partial: every table equals the server's ground truth.
    con = duckdb.connect(str(tmp_path / "warehouse" / "webex.duckdb"), read_only=True)
    try:
        for dataset in DATASETS:
            truth = len(sim.ground_truth("demo", dataset))
            rows, keys = con.execute(
                f"select count(*), count(distinct (conf_id, {'name, email, join_time' if dataset == 'meeting_attendees' else 'conf_id'})) "
                f"from {dataset} where not _preliminary"
            ).fetchone()
            assert rows == keys == truth, (dataset, rows, keys, truth)
        runs = con.execute("select count(distinct run_id) from runs").fetchone()[0]
        assert runs >= 4
    finally:
        con.close()
    assert not any((tmp_path / "warehouse" / "_staging").glob("*.parquet"))
