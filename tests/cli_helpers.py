"""Running the real ``webex-exporter`` command in a subprocess against a simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, url: str, *, sites: tuple[str, ...] = ("demo",), datasets: tuple[str, ...] | None = None,
                 extra: str = "") -> Path:
    """A config.toml for the simulator at ``url`` (password from $WEBEX_TEST_PW), warehouse beside it."""
    lines = []
    for name in sites:
        lines += [
            "[[sites]]", f'name = "{name}"', f'url = "{url}"', f'site_name = "{name}"', 'auth = "ticket"',
            'webex_id = "admin"', 'password_env = "WEBEX_TEST_PW"',
        ]
        if datasets:
            lines.append("datasets = [" + ", ".join(f'"{d}"' for d in datasets) + "]")
        lines.append("")
    lines += [
        "[throttle]", "requests_per_minute = 6000", "cooldown_seconds = 0.2", "backoff_base_seconds = 0.01",
        "backoff_max_seconds = 0.05", "request_timeout_seconds = 10", "",
        "[warehouse]", 'root = "warehouse"', 'catalog = "warehouse/webex.duckdb"', "",
    ]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def cli(*args: str, config: Path | None = None, password: str = "sim-password", timeout: float = 120,
        env: dict[str, str] | None = None, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """``webex-exporter ARGS --config CONFIG`` as a user would run it (``input_text`` on stdin); never sleeps."""
    command = [sys.executable, "-m", "exporter", *args]
    if config is not None:
        command += ["--config", str(config)]
    full_env = {**os.environ, "WEBEX_TEST_PW": password, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=config.parent if config else ROOT, input=input_text)


def json_events(stderr: str) -> list[dict[str, Any]]:
    """The JSON log events in a command's stderr."""
    events = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return events


def run_and_kill(command: str, config: Path, rng: "random.Random", *, commits: tuple[int, int] = (1, 8),
                 extra_seconds: float = 0.2, timeout: float = 60, env: dict[str, str] | None = None) -> bool:
    """Start ``webex-exporter COMMAND --config CONFIG`` and SIGKILL it after a random number of
    window commits (between ``commits``) and a random moment more (up to ``extra_seconds``).
    True when it was killed, False when it finished first.  Bounded by ``timeout``."""
    import signal
    import time

    env = {**os.environ, "WEBEX_TEST_PW": "sim-password", **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "exporter", command, "--config", str(config)], cwd=config.parent,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    left = rng.randint(*commits)
    assert proc.stderr is not None
    while time.monotonic() < deadline and left:
        line = proc.stderr.readline()
        if not line:
            break
        left -= '"window committed"' in line
    time.sleep(rng.uniform(0.0, extra_seconds))
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=timeout)
    proc.stderr.close()
    return killed
