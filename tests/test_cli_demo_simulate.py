"""``demo`` and ``simulate`` as a user runs them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from urllib.request import urlopen

from cli_helpers import ROOT


def test_demo_exports_everything_and_matches_the_ground_truth(tmp_path):
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "exporter", "demo", "--config", str(tmp_path / "config.toml")],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert time.monotonic() - started < 120
    assert "differs" not in done.stdout
    assert "example: webex-exporter query top_hosts" in done.stdout
    catalog = tmp_path / "warehouse" / "webex.duckdb"
    assert catalog.exists()
    # Every named query runs on the demo warehouse.
    from exporter.app.queries import load_queries, run_query
    from exporter.config import load_settings

    settings = load_settings(tmp_path / "config.toml", env={"WEBEX_SIM_PASSWORD": "x"})
    for name in load_queries():
        columns, rows = run_query(settings, name)
        assert columns, name
    assert run_query(settings, "meetings_per_day")[1], "the demo has meetings every day"


def test_simulate_serves_until_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "simulate", "--port", "0", "--days", "2",
                             "--config", str(tmp_path / "absent.toml")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        url = None
        deadline = time.monotonic() + 60
        banner = []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "".join(banner)
            banner.append(line)
            for word in line.split():
                if word.startswith("http://127.0.0.1:") and "/WBXService/XMLService" in word:
                    url = word.strip("'\",")
        assert url, "".join(banner)
        info = urlopen(url.replace("/WBXService/XMLService", "/_sim/info"), timeout=10).read().decode()
        assert "acme" in info
        assert any("WEBEX_SIM_PASSWORD" in line for line in banner) or "sim-password" in info
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
