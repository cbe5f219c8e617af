"""A wrong host or port fails the site fast: its first request of the run (the site's facts) gets
no answer after its attempts, and the site stops, instead of every window spending retries."""

from __future__ import annotations

import socket
import time

from cli_helpers import cli, write_config


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_site_nobody_answers_for_stops_after_its_first_request(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/WBXService/XMLService"
    config = write_config(tmp_path / "config.toml", url)
    started = time.monotonic()
    done = cli("run", config=config, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert "does not answer" in done.stdout + done.stderr
    assert "window failed" not in done.stderr  # no window spent its own retries on it
    assert elapsed < 30, elapsed
