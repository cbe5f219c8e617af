"""The CLI as a user meets it: help everywhere, documented commands, one-line errors, exit codes."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.app.cli.main import cli
from exporter.obs.logs import configure_logging, event, logger, register_secret

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(cli.commands)


def test_every_expected_command_exists():
    assert {"demo", "simulate", "run", "backfill", "serve", "status", "query", "report"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert "--config" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_documented_in_the_readme(name):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"webex-exporter {name}" in readme, f"README.md does not document `webex-exporter {name}`"


def test_every_config_key_is_documented_in_the_readme():
    import tomllib

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shipped = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    for section, table in shipped.items():
        if section == "sites":
            keys = {f"sites[].{k}" for site in table for k in site}
        else:
            keys = {f"{section}.{k}" for k, v in table.items() if not isinstance(v, dict)}
        for key in keys:
            leaf = key.rsplit(".", 1)[-1]
            assert leaf in readme, f"config key {key} is not documented in README.md"


def test_config_error_is_one_clear_line_and_exit_code_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sites]]\nname = "x"\nurl = "nope"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", "--config", str(bad)])
    assert result.exit_code == 2
    assert "sites[0].url: not a URL" in result.output
    assert "Traceback" not in result.output


def test_console_script_runs_as_a_module():
    proc = subprocess.run([sys.executable, "-m", "exporter", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "webex-exporter demo" in proc.stdout


def test_secrets_never_reach_a_log_line():
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)
    register_secret("pa55-w0rd-XYZ")
    event("login failed", detail="sent password pa55-w0rd-XYZ to the server")
    try:
        raise RuntimeError("ticket pa55-w0rd-XYZ rejected")
    except RuntimeError:
        logger.exception("boom pa55-w0rd-XYZ")
    text = stream.getvalue()
    assert "pa55-w0rd-XYZ" not in text
    assert text.count("***") >= 3
    first = json.loads(text.splitlines()[0])
    assert first["event"] == "login failed" and first["level"] == "info"
    logger.handlers.clear()
    logger.setLevel(logging.WARNING)
