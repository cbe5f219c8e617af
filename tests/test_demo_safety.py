"""``demo`` never destroys data: it refuses a warehouse it did not create, and one that another
exporter (a running ``serve``) is writing.  Real processes, a real simulator, loopback only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from cli_helpers import cli, write_config

DATASETS = ("meeting_usage",)


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))


def test_demo_refuses_a_warehouse_with_exports_it_did_not_create(sim_factory, tmp_path):
    sim = sim_factory(now=__import__("datetime").datetime.now(__import__("datetime").timezone.utc).replace(microsecond=0))
    config = write_config(tmp_path / "config.toml", sim.url, sites=("demo",), datasets=DATASETS)
    assert cli("run", config=config).returncode == 0
    before = _files(tmp_path / "warehouse")
    assert before
    refused = cli("demo", config=config, timeout=120)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "did not create" in refused.stderr and "never touches it" in refused.stderr
    assert _files(tmp_path / "warehouse") == before


def test_demo_refuses_while_serve_writes_its_warehouse_and_serve_carries_on(tmp_path):
    # A warehouse the demo created (so only the lock stands between the demo and clearing it) ...
    config = write_config(tmp_path / "config.toml", "http://127.0.0.1:9/WBXService/XMLService", sites=("acme",),
                          datasets=DATASETS)
    first = cli("demo", config=config, timeout=180)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    again = cli("demo", config=config, timeout=180)  # the demo may clear what it made itself
    assert again.returncode == 0, again.stderr[-2000:]
    # ... that `serve` now writes (its site points at the demo's simulator, started by `simulate`).
    env = {**os.environ, "WEBEX_TEST_PW": "sim-password"}
    sim = subprocess.Popen([sys.executable, "-m", "exporter", "simulate", "--config", str(config), "--port", "0"],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    serve = None
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = sim.stdout.readline()
            assert line, "simulate exited early"
            if "http://127.0.0.1:" in line:
                url = line[line.index("http://127.0.0.1:"):].split()[0]
        assert url
        text = config.read_text(encoding="utf-8").replace("http://127.0.0.1:9/WBXService/XMLService", url)
        config.write_text(text + "[schedule]\ninterval_seconds = 3600\n[observability]\nlog_format = \"json\"\n",
                          encoding="utf-8")
        serve = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--config", str(config)], cwd=tmp_path,
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = serve.stderr.readline()
            assert line, f"serve exited early ({serve.poll()})"
            if line.startswith("{") and json.loads(line).get("event") == "job finished":
                break
        before = _files(tmp_path / "warehouse")
        refused = cli("demo", config=config, timeout=120)
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert "another exporter" in refused.stderr
        assert _files(tmp_path / "warehouse") == before and before
        assert serve.poll() is None, "serve must keep running"
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=20) == 0
    finally:
        for proc in (serve, sim):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
