"""``check`` against the realistic simulator: what it says about connectivity, credentials,
privilege, the site's zone and every operation, over real HTTP, in a handful of requests."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone

from source_fixtures import simulated

from exporter.model.datasets import DATASETS
from exporter.simulator import load_profile
from exporter.webex.site_check import check_site, worst

NOW = datetime(2026, 11, 20, 6, 30, tzinfo=timezone.utc)


def _check(**site) -> tuple[dict[str, tuple[str, str]], int]:
    config = dataclasses.replace(load_profile("realistic"), now=NOW, freeze_clock=True)

    async def main():
        async with simulated(config, **site) as (sim, client, settings):
            settings = dataclasses.replace(settings, datasets=tuple(d.name for d in DATASETS))
            lines = await check_site(client, settings, NOW)
            return {line.check: (line.status, line.detail) for line in lines}, sim.stats()["requests"], worst(lines)

    found, requests, status = asyncio.run(main())
    return found, requests, status


def test_check_reports_every_operation_and_the_site_zone():
    found, requests, status = _check(name="acme-cn", unlabeled_time_zone_id=20)
    assert found["connectivity"][0] == found["credentials"][0] == found["privilege"][0] == "ok"
    assert found["time zone"][0] == "warn" and "45" in found["time zone"][1]  # config says 20: shifted times
    datasets = [k for k in found if k.startswith("dataset ")]
    assert len(datasets) == 11 and all(found[k][0] == "ok" for k in datasets)
    assert status == "warn" and requests <= 5  # sign-in, facts, 11 one-record bodies in 2 requests


def test_check_names_a_retired_operation_and_a_non_admin_account():
    found, _, status = _check(name="legacy", webex_id="host1")
    assert found["privilege"][0] == "fail" and "allow_non_admin" in found["privilege"][1]
    assert found["dataset access_anywhere"][0] == "fail" and "retired" in found["dataset access_anywhere"][1]
    assert status == "fail"


def test_check_says_when_credentials_are_refused():
    found, requests, status = _check(name="acme-cn", password="wrong")
    assert found["credentials"][0] == "fail" and "wrong" not in found["credentials"][1]
    assert status == "fail" and requests == 1
