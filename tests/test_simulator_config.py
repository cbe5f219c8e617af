"""Configuration: validation, bundled profiles, CLI options and environment, the CLI itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from exporter.errors import ConfigError
from exporter.simulator import FaultSettings, SimulatorConfig, SiteConfig, config_from_options, load_profile
from exporter.simulator.cli import banner

ROOT = Path(__file__).resolve().parents[1]


def test_from_dict_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        SimulatorConfig.from_dict({
            "days": 0, "meetings_per_dya": 3,
            "sites": [{"name": "a", "default_time_zone_id": 70}, {"name": "a", "colour": "red"}],
            "faults": {"rates": {"reset": 1.5}},
        })
    text = str(caught.value)
    for expected in ("meetings_per_dya: unknown key", "sites[1].colour: unknown key", "faults.rates.reset"):
        assert expected in text
    with pytest.raises(ConfigError) as caught:
        SimulatorConfig.from_dict({"days": 0, "sites": [{"name": "a", "default_time_zone_id": 70}, {"name": "A"}]})
    text = str(caught.value)
    assert "days: must be" in text and "default_time_zone_id" in text and "duplicate site name" in text


def test_bundled_profiles_load() -> None:
    default = load_profile("default")
    assert [s.name for s in default.sites] == ["acme", "globex", "initech-eu"]
    assert all(s.return_scheduled_pmr_switch for s in default.sites)
    assert default.sites[0].users_dict == {"admin": "sim-password"}
    assert default.faults == FaultSettings()
    faults = load_profile("faults")
    assert faults.faults.rate("http5xx") > 0 and faults.faults.encoding == "ISO-8859-1"
    with pytest.raises(ConfigError, match="no such file"):
        load_profile("no-such-profile")


def test_options_and_environment_override_the_profile() -> None:
    config = config_from_options(seed=9, sites="3", days=2, latency_ms=5.0, fault_rates="http5xx=0.1,reset=0.05",
                                 env={"WEBEX_SIM_MEETINGS_PER_DAY": "12", "WEBEX_SIM_ENCODING": "ISO-8859-1"})
    assert (config.seed, config.days, config.meetings_per_day) == (9, 2, 12)
    assert [s.name for s in config.sites] == ["acme", "globex", "initech-eu"]
    assert [s.name for s in config_from_options(sites=4, env={}).sites] == ["acme", "globex", "initech-eu", "acme4"]
    assert config.faults.latency_ms == 5.0 and config.faults.encoding == "ISO-8859-1"
    assert dict(config.faults.rates) == {"http5xx": 0.1, "reset": 0.05}
    named = config_from_options(sites="north,south", profile="faults", env={})
    assert [s.name for s in named.sites] == ["north", "south"]
    assert named.sites[1].users_dict == named.sites[0].users_dict
    queued = config_from_options(fault_queue="http5xx:2:LstmeetingusageHistory,reset", rate_limits="user=10",
                                 rate_limit_per_minute=100, throttle_cooldown_seconds=0.5, env={})
    assert [(q.kind, q.count, q.operation) for q in queued.faults.queue] == [
        ("http5xx", 2, "LstmeetingusageHistory"), ("reset", 1, None)]
    assert queued.faults.limit_for("user") == 10 and queued.faults.limit_for("meeting_list") == 100
    http = config_from_options(fault_rates=["http503=0.25"], env={})
    assert http.faults.rate("http5xx") == 0.25 and http.faults.http5xx_status == 503
    with pytest.raises(ConfigError, match="KIND=PROBABILITY"):
        config_from_options(fault_rates="http5xx", env={})
    with pytest.raises(ConfigError, match="unknown fault kind"):
        config_from_options(fault_queue="meteor", env={})
    with pytest.raises(ConfigError, match="WEBEX_SIM_DAYS"):
        config_from_options(env={"WEBEX_SIM_DAYS": "many"})


def test_site_config_accepts_mappings_and_token_lists() -> None:
    site = SiteConfig("x", users={"u": "p", "v": "q"}, access_tokens=["t1"])
    assert site.users == (("u", "p"), ("v", "q")) and site.access_tokens == (("t1", "u"),)
    with pytest.raises(ConfigError, match="unknown user"):
        SimulatorConfig(sites=(SiteConfig("x", access_tokens={"t": "ghost"}),))


def test_banner_names_url_sites_and_credentials(simulator: Any) -> None:
    text = banner(simulator)
    assert simulator.url in text and "site demo: webex_id admin, password sim-password" in text
    assert "export WEBEX_SIM_PASSWORD='sim-password'" in text


def test_cli_main_serves_until_sigterm(tmp_path: Path) -> None:
    profile = tmp_path / "tiny.toml"
    profile.write_text('days = 1\nmeetings_per_day = 2\n[[sites]]\nname = "tiny"\n[sites.users]\nadmin = "pw"\n')
    code = ("from exporter.simulator import cli_main; "
            f"raise SystemExit(cli_main(port=0, profile={str(profile)!r}))")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WEBEX_SIM_SEED": "3"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert re.match(r"Webex XML API simulator listening on http://127\.0\.0\.1:\d+/WBXService/XMLService", first)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        rest = proc.stdout.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.stdout.close()  # type: ignore[union-attr]
    assert proc.returncode == 0
    assert "site tiny: webex_id admin, password pw" in rest and "seed 3" in rest and "simulator stopped" in rest
