"""Secrets are needed only where they are used: read-only commands need none, and a run needs only
those of the sites it runs.  Real processes against a real simulator."""

from __future__ import annotations

from datetime import datetime, timezone

from cli_helpers import cli, write_config


def test_read_only_commands_need_no_secret_and_a_run_only_its_sites(sim_factory, tmp_path):
    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))
    config = write_config(tmp_path / "config.toml", sim.url, sites=("demo",), datasets=("meeting_usage",))
    # A second site whose password lives in a variable nobody set.
    text = config.read_text(encoding="utf-8")
    other = text.split("[throttle]")[0].split("[[sites]]")[1].replace('name = "demo"', 'name = "other"')
    config.write_text(text.replace("[throttle]", "[[sites]]" + other.replace("WEBEX_TEST_PW", "OTHER_PW") + "[throttle]", 1),
                      encoding="utf-8")
    done = cli("run", "--site", "demo", config=config)
    assert done.returncode == 0, done.stdout + done.stderr
    everything = cli("run", config=config)
    assert everything.returncode == 2 and "sites[1].password_env" in everything.stderr and "OTHER_PW" in everything.stderr
    for command in (("status",), ("query", "select count(*) from meeting_usage")):
        result = cli(*command, config=config, env={"WEBEX_TEST_PW": ""})
        assert result.returncode == 0, (command, result.stdout + result.stderr)
