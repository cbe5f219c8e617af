"""Running the real ``webex-exporter`` command in a subprocess against a simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, url: str, *, sites: tuple[str, ...] = ("demo",), datasets: tuple[str, ...] | None = None,
                 extra: str = "") -> Path:  # fmt: skip
    """A config.toml for the simulator at ``url`` (password from $WEBEX_TEST_PW), warehouse beside it."""
    lines = []
    for name in sites:
        lines += [
            "[[sites]]", f'name = "{name}"', f'url = "{url}"', f'site_name = "{name}"', 'auth = "ticket"',
            'webex_id = "admin"', 'password_env = "WEBEX_TEST_PW"',
        ]  # fmt: skip
        if datasets:
            lines.append("datasets = [" + ", ".join(f'"{d}"' for d in datasets) + "]")
        lines.append("")
    lines += [
        "[throttle]", "requests_per_minute = 6000", "cooldown_seconds = 0.2", "backoff_base_seconds = 0.01",
        "backoff_max_seconds = 0.05", "request_timeout_seconds = 10", "",
        "[warehouse]", 'root = "warehouse"', 'catalog = "warehouse/webex.duckdb"', "",
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def cli(*args: str, config: Path | None = None, password: str = "sim-password", timeout: float = 120,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``webex-exporter ARGS --config CONFIG`` as a user would run it; never sleeps."""
    command = [sys.executable, "-m", "exporter", *args]
    if config is not None:
        command += ["--config", str(config)]
    full_env = {**os.environ, "WEBEX_TEST_PW": password, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=config.parent if config else ROOT)  # fmt: skip


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
