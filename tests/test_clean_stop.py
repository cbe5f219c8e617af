"""A stopped export logs clean lines: Ctrl-C (SIGINT to the whole process group, parse workers
included) or SIGTERM in the middle of a run leaves only JSON log lines on stderr, no traceback.
A killed one is told truthfully: running, then crashed, never the previous run's ok."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from cli_helpers import cli, run_and_kill, write_config


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_run_stopped_midway_logs_only_json(sim_factory, tmp_path, sig):
    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0), days=20, meetings_per_day=300,
                      attendees_per_meeting=10)  # large answers: the parse workers are busy when it stops
    sim.set_faults(latency_ms=150)
    config = write_config(tmp_path / "config.toml", sim.url,
                          extra='[export]\nwindow_hours = 6\n[observability]\nlog_format = "json"\n')
    env = {**os.environ, "WEBEX_TEST_PW": "sim-password"}
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "run", "--config", str(config)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line, f"the run ended before it could be stopped ({proc.poll()})"
        lines.append(line)
        if '"window committed"' in line:
            break
    time.sleep(0.3)
    os.killpg(proc.pid, sig)  # as a terminal's Ctrl-C or systemd's stop does: every process of the group
    _, rest = proc.communicate(timeout=60)  # a clean stop takes seconds; generous for a loaded CI host
    lines += rest.splitlines(keepends=True)
    assert proc.returncode in (0, 1, 130), proc.returncode
    messy = [line for line in lines if line.strip() and not line.startswith("{")]
    assert not messy, "".join(messy[:20])
    events = [json.loads(line)["event"] for line in lines if line.startswith("{")]
    assert "window committed" in events
    # The stop is the exporter's to carry out: the parse workers do not die of the group's signal
    # (a pool restarted during shutdown), and no request is cut off by the closing session and
    # then retried.
    stopping = next(i for i, e in enumerate(events) if e.startswith("stopping: no new windows start"))
    after = events[stopping:]
    assert not [e for e in after if e.startswith(("request failed", "a parse worker process died"))], after


def test_a_killed_run_reads_as_running_then_crashed_never_as_the_last_ok(sim_factory, tmp_path):
    """A run SIGKILLed midway (the OOM killer, a kill -9) cannot say how it ended.  ``status``
    shows its pairs as running from its start (not the previous run's ok), and the next run
    records it as crashed, in the run log and as those pairs' outcome until it finishes itself."""
    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0), days=20, meetings_per_day=200)
    config = write_config(tmp_path / "config.toml", sim.url, datasets=("meeting_usage", "meeting_attendees"),
                          extra="[export]\nwindow_hours = 6\n[observability]\nlog_format = \"json\"\n")
    assert cli("run", config=config).returncode == 0

    def outcomes() -> set[str]:
        done = cli("status", "--format", "json", config=config)
        assert done.returncode == 0, done.stderr
        return {row["outcome"] for row in json.loads(done.stdout)}

    assert outcomes() == {"ok"}
    sim.set_faults(latency_ms=300)  # room to be killed in the middle of the backfill
    assert run_and_kill("backfill", config, random.Random(7), commits=(1, 2), extra_seconds=0.0)
    assert outcomes() == {"running"}
    killed = cli("query", "--format", "json", "SELECT run_id FROM run_log WHERE outcome = 'running'", config=config)
    assert killed.returncode == 0, killed.stderr
    (run_id,) = [row["run_id"] for row in json.loads(killed.stdout)]
    assert cli("run", config=config).returncode == 0
    assert outcomes() == {"ok"}
    ended = cli("query", "--format", "json", f"SELECT outcome FROM run_log WHERE run_id = '{run_id}'", config=config)
    assert [row["outcome"] for row in json.loads(ended.stdout)] == ["crashed"], ended.stdout + ended.stderr
