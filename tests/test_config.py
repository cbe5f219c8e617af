"""Config validation: every problem at once, each naming its key; secrets never from the file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from exporter.config import Secret, load_settings, parse_settings
from exporter.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
ENV = {"WEBEX_SIM_PASSWORD": "s3cret-demo"}


def _base() -> dict:
    """The shipped config reduced to its first site."""
    data = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    data["sites"] = data["sites"][:1]
    return data


def test_shipped_config_is_valid_and_points_at_the_simulator():
    settings = load_settings(ROOT / "config.toml", env=ENV)
    site = settings.sites[0]
    assert [s.name for s in settings.sites] == ["acme", "globex", "initech-eu"]
    assert site.url.startswith("http://127.0.0.1:")
    assert site.password == Secret("s3cret-demo")
    assert len(site.datasets) == 11
    assert settings.warehouse.catalog.endswith("warehouse/webex.duckdb")


def test_every_problem_is_reported_at_once_with_its_key():
    data = _base()
    data["sites"].append({"name": "two", "url": "ftp:/nope", "auth": "magic", "datasets": ["meeting_usage", "meetings"]})
    data["throttle"]["page_size"] = 900
    data["export"]["lookback_days"] = "three"
    data["warehouse"]["rooot"] = "x"
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, env=ENV)
    problems = "\n".join(caught.value.problems)
    for expected in (
        "sites[1].url: not a URL",
        "sites[1].auth: must be 'password', 'ticket' or 'token'",
        "sites[1].webex_id: missing",
        "sites[1].datasets: unknown dataset 'meetings'",
        "throttle.page_size: must be between 1 and 500",
        "export.lookback_days: must be an integer",
        "warehouse.rooot: unknown key (did you mean 'root'?)",
    ):
        assert expected in problems
    assert len(caught.value.problems) >= 7


def test_password_written_in_the_file_is_refused_and_never_echoed():
    data = _base()
    data["sites"][0]["password"] = "hunter2-in-the-repo"
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, env=ENV)
    assert "sites[0].password: secrets may not be written in the config file" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_missing_secret_names_the_variable_when_a_command_needs_it():
    settings = parse_settings(_base(), env={})  # reading the config needs no secret ...
    with pytest.raises(ConfigError) as caught:
        settings.require_secrets(["acme"])  # ... signing in to the site does
    assert "WEBEX_SIM_PASSWORD" in str(caught.value) and "sites[0].password_env" in str(caught.value)
    settings.require_secrets([])  # a command that signs in nowhere needs none


def test_secrets_file_supplies_the_password(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[sites.acme]\npassword = "from-file"\n', encoding="utf-8")
    data = _base()
    data["secrets_file"] = str(secrets)
    settings = parse_settings(data, env={})
    assert settings.sites[0].password.reveal() == "from-file"
    assert "from-file" not in repr(settings)


def test_plain_http_only_on_loopback():
    data = _base()
    data["sites"][0]["url"] = "http://acme.webex.com/WBXService/XMLService"
    with pytest.raises(ConfigError, match=r"sites\[0\]\.url: plain http is allowed only for loopback"):
        parse_settings(data, env=ENV)


def test_bad_cron_and_timezone_override_are_named():
    data = _base()
    data["schedule"] = {"cron": "99 * * * *"}
    data["timezones"] = {"overrides": {"20": "Mars/Olympus", "77": "UTC"}}
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, env=ENV)
    text = str(caught.value)
    assert "schedule.cron: not a valid crontab expression" in text
    assert "timezones.overrides.20: unknown IANA time zone 'Mars/Olympus'" in text
    assert "timezones.overrides.77: not a Webex timeZoneID" in text


def test_not_toml_and_missing_file(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[sites\nname=", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "absent.toml")


def test_site_throttle_inherits_and_overrides():
    data = _base()
    data["sites"][0]["throttle"] = {"requests_per_minute": 30}
    site = parse_settings(data, env=ENV).sites[0]
    assert site.throttle.requests_per_minute == 30
    assert site.throttle.page_size == 500


@pytest.mark.parametrize(("value", "expected"), [("auto", None), (0, 0), (3, 3)])
def test_parse_workers_auto_or_a_count(value, expected):
    data = _base()
    data["export"]["parse_workers"] = value
    assert parse_settings(data, env=ENV).export.parse_workers == expected


@pytest.mark.parametrize("value", ["many", -1, 65, True, 2.5])
def test_parse_workers_rejects_anything_else(value):
    data = _base()
    data["export"]["parse_workers"] = value
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, env=ENV)
    assert any(p.startswith("export.parse_workers: must be \"auto\" or an integer") for p in caught.value.problems)


def test_real_data_keys_default_to_asking_the_site_and_per_dataset_lookbacks():
    settings = parse_settings(_base(), env=ENV)
    site = settings.sites[0]
    assert site.unlabeled_time_zone_id is None and site.allow_non_admin is False and site.retired_exception_ids == ()
    assert [settings.export.lookback_for(d) for d in ("meeting_usage", "recording_access", "scheduled_sessions")] == [7, 30, 3]
    data = _base()
    data["sites"][0].update(unlabeled_time_zone_id=45, allow_non_admin=True, retired_exception_ids=["000081"])
    data["export"].update(lookback_days=5, dataset_lookback_days={"recording_access": 40})
    settings = parse_settings(data, env=ENV)
    site = settings.sites[0]
    assert (site.unlabeled_time_zone_id, site.allow_non_admin, site.retired_exception_ids) == (45, True, ("000081",))
    # An explicit lookback_days applies to every dataset; a per-dataset entry still wins.
    assert [settings.export.lookback_for(d) for d in ("meeting_usage", "recording_access")] == [5, 40]


def test_bad_real_data_keys_are_named():
    data = _base()
    data["sites"][0].update(retired_exception_ids="000080", allow_non_admin="yes")
    data["export"]["dataset_lookback_days"] = {"recordings": 3, "meeting_usage": 400}
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, env=ENV)
    text = str(caught.value)
    for key in ("sites[0].retired_exception_ids", "sites[0].allow_non_admin",
                "export.dataset_lookback_days.recordings", "export.dataset_lookback_days.meeting_usage"):
        assert key in text, (key, text)


def test_three_mistakes_in_three_sections_are_all_reported_in_one_error():
    data = _base()
    data["sites"][0]["time_zone_id"] = 99  # out of range
    data["schedule"] = {"jitter_seconds": "soon"}  # wrong type
    data["observability"] = {"metrics_prot": 9100}  # misspelt key
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, env=ENV)
    problems = caught.value.problems
    assert len(problems) == 3, problems
    assert any(p.startswith("sites[0].time_zone_id: must be between 0 and 61, got 99") for p in problems)
    assert any(p.startswith("schedule.jitter_seconds: must be an integer, got 'soon'") for p in problems)
    assert any(p.startswith("observability.metrics_prot: unknown key (did you mean 'metrics_port'?)") for p in problems)


def test_keys_defaults_and_bounds_come_from_the_settings_dataclasses():
    from dataclasses import fields

    from exporter.config import ThrottleSettings
    from exporter.config.settings import toml_keys

    assert toml_keys(ThrottleSettings) == {f.name for f in fields(ThrottleSettings)}
    defaults = parse_settings(_base() | {"throttle": {}}, env=ENV).sites[0].throttle
    assert defaults == ThrottleSettings()
    room = {"max_retry_after_seconds": 86_400}  # cool-downs may not exceed it (a rule across two keys)
    for f in fields(ThrottleSettings):  # each declared bound is the edge of what is accepted
        data = _base() | {"throttle": room | {f.name: f.metadata["max"]}}
        assert getattr(parse_settings(data, env=ENV).sites[0].throttle, f.name) == f.metadata["max"]
        data = _base() | {"throttle": {f.name: f.metadata["max"] * 2 + 1}}
        with pytest.raises(ConfigError, match=f"throttle.{f.name}: must be between"):
            parse_settings(data, env=ENV)
