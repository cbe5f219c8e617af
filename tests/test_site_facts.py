"""What a site says about itself: GetSite / GetUser / LstTimeZone answers read, over real HTTP."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from lxml import etree
from source_fixtures import sim_config, simulated

from exporter.simulator import SiteConfig
from exporter.webex.site_facts import (
    fixed_offset_zone,
    inspect_site,
    read_gmt_offsets,
    read_site_admin,
    read_site_zone,
    zone_disagreement,
)

WINTER = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)


def test_the_simulated_site_says_its_zone_offsets_and_privilege() -> None:
    config = sim_config(sites=(SiteConfig("demo", default_time_zone_id=45,
                                          users=(("admin", "sim-password"), ("host1", "sim-password")),
                                          non_admin_users=("host1",)),))

    async def main() -> None:
        async with simulated(config) as (sim, client, site):
            facts = await inspect_site(client, webex_id="admin", now=sim.clock.now())
            assert (facts.time_zone_id, facts.site_admin, facts.problems) == (45, True, ())
            assert facts.gmt_offsets[45] == 480 and facts.gmt_offsets[20] == 0 and len(facts.gmt_offsets) == 62
            assert sim.stats()["requests_by_operation"] == {"GetSite": 1, "GetUser": 1, "LstTimeZone": 1}
            host = await inspect_site(client, webex_id="host1", now=sim.clock.now())
            assert host.site_admin is False

    asyncio.run(main())


def test_an_answer_that_says_nothing_is_unknown_not_an_assumption() -> None:
    empty = etree.fromstring("<bodyContent><something>1</something></bodyContent>")
    assert (read_site_zone(empty), read_gmt_offsets(empty), read_site_admin(empty)) == (None, {}, None)
    bad = etree.fromstring("<b><metaData><timeZoneID>99</timeZoneID></metaData></b>")
    assert read_site_zone(bad) is None  # not a Webex zone ID


def test_a_zone_id_whose_offset_the_site_states_differently_is_caught() -> None:
    # Our table reads 20 as GMT; a site whose 20 means Casablanca's +01:00 says 60.
    assert zone_disagreement(20, 0, WINTER) is None
    problem = zone_disagreement(20, 60, WINTER)
    assert problem and "GMT+01:00" in problem and "timeZoneID 20" in problem
    assert zone_disagreement(45, 480, WINTER) is None
    assert fixed_offset_zone(480).key == "Etc/GMT-8" and fixed_offset_zone(0).key == "Etc/GMT"
    assert fixed_offset_zone(330) is None  # +05:30 has no whole-hour Etc zone: keep ours, warn
