"""A stopped export logs clean lines: Ctrl-C (SIGINT to the whole process group, parse workers
included) or SIGTERM in the middle of a run leaves only JSON log lines on stderr, no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from cli_helpers import write_config


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
