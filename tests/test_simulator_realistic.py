"""The realistic profile's messier shapes, over real HTTP: twins, unstable ties, a Beijing-time site,
a localized 000053, a non-admin host, GetUser, a retired operation and revisions after 3 days."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from lxml import etree

from exporter.errors import ConfigError
from exporter.model import webex_codes as codes
from exporter.model.datasets import by_name
from exporter.simulator import SimulatorConfig, config_from_options, load_profile, probe
from exporter.simulator.data.records import order_column
from exporter.simulator.data.selection import Selection

NOW = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
SITE = "acme-cn"
BEIJING = 45  # "GMT+08:00, China (Beijing)": the Webex timeZoneID whose IANA zone is Asia/Shanghai
ADMIN = probe.security(SITE, webex_id="admin", password="sim-password")
HOST1 = probe.security(SITE, webex_id="host1", password="sim-password")
ATTENDEES = by_name("meeting_attendees")
USAGE = by_name("meeting_usage")
USE = "http://www.webex.com/schemas/2002/06/service/user"


def realistic(**changes: Any) -> SimulatorConfig:
    """The realistic profile with the clock frozen at NOW."""
    return dataclasses.replace(load_profile("realistic"), now=NOW, **changes)


def exchange(url: str, *documents: bytes, record_element: str | None = None) -> list[list[probe.Reply]]:
    """POST each document in turn over one client session; the replies of each."""

    async def main() -> list[list[probe.Reply]]:
        async with aiohttp.ClientSession() as http:
            out = []
            for doc in documents:
                status, _, data = await probe.post(http, url, doc)
                assert status == 200
                out.append(probe.read_reply(data, record_element))
            return out

    return asyncio.run(main())


def listed(url: str, body: str, context: str = ADMIN, zone_id: int = BEIJING) -> list[dict]:
    """One list page's records as typed dicts (times read in ``zone_id``)."""
    ds = next(d for d in (ATTENDEES, USAGE, by_name("recording_access"), by_name("access_anywhere"))
              if d.operation in body)
    ((reply,),) = exchange(url, probe.envelope([body], context), record_element=ds.record_element)
    assert reply.result == "SUCCESS", (reply.exception_id, reply.reason)
    return [probe.record_values(ds, r, zone_id) for r in reply.records]


def bare(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "site"} for r in rows]


def key(ds: Any, row: dict) -> tuple:
    return tuple(row[k] for k in ds.natural_key)


#: The columns a listing in the registry's order sorts attendee rows by: rows equal in all are tied.
TIE_COLUMNS = tuple(order_column(ATTENDEES, by) for by, _ in ATTENDEES.order)


def tied(row: dict) -> tuple:
    return tuple(row[c] for c in TIE_COLUMNS)


# --------------------------------------------------------------------------- profile and config


def test_realistic_profile_loads_with_every_knob_and_round_trips() -> None:
    config = load_profile("realistic")
    main, legacy = config.sites
    assert (main.name, main.default_time_zone_id, main.return_scheduled_pmr_switch) == (SITE, BEIJING, True)
    assert main.users_dict == {"admin": "sim-password", "host1": "sim-password"} and main.non_admin_users == ("host1",)
    assert legacy.retired_operations == ("LstAccessAnywhereHistory",)
    assert config.unstable_tie_order is True and 0.08 <= config.twin_fraction + config.near_twin_fraction <= 0.12
    assert config.body_content_limit_reason == "請求中的 BodyContent 計數必須小於 {number}"
    assert config.recording_growth_days and config.revision_fraction and config.late_extra_jitter_seconds
    assert (config.days, config.meetings_per_day, config.attendees_per_meeting) == (14, 40, 6)
    assert SimulatorConfig.from_dict(config.to_dict()) == config
    assert config_from_options(profile="realistic", env={}) == config  # webex-exporter simulate --profile realistic
    default = load_profile("default")
    assert (default.twin_fraction, default.near_twin_fraction, default.unstable_tie_order, default.revision_fraction,
            default.recording_growth_days, default.late_extra_jitter_seconds) == (0, 0, False, 0, 0, 0)
    assert all(not s.non_admin_users and not s.retired_operations for s in default.sites)


def test_banner_names_the_non_admin_user_and_the_retired_operation(sim_factory: Any) -> None:
    from exporter.simulator.cli import banner

    text = banner(sim_factory(realistic()))
    assert "site acme-cn: webex_id admin, password sim-password\n" in text
    assert "site acme-cn: webex_id host1, password sim-password (an ordinary host" in text
    assert "site legacy: retired (FAILURE 000080): LstAccessAnywhereHistory" in text


def test_new_knobs_are_validated_all_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        SimulatorConfig.from_dict({
            "twin_fraction": 0.8, "near_twin_fraction": 0.4, "call_in_twin_share": 2, "unstable_tie_order": "yes",
            "body_content_limit_reason": " ", "revision_delay_seconds": [9, 3], "recording_growth_days": -1,
            "sites": [{"name": "a", "non_admin_users": ["ghost"], "retired_operations": ["LstNothing"]}],
        })
    text = str(caught.value)
    for expected in ("twin_fraction + near_twin_fraction: must be at most 1", "call_in_twin_share: must be 0..1",
                     "unstable_tie_order: must be true or false", "body_content_limit_reason: must be",
                     "revision_delay_seconds: must be", "recording_growth_days: must be an integer",
                     "sites[0].non_admin_users: unknown user 'ghost'",
                     "sites[0].retired_operations: unknown operation 'LstNothing'"):
        assert expected in text


# --------------------------------------------------------------------------- twins


def test_exact_twins_are_listed_and_in_ground_truth(sim_factory: Any) -> None:
    sim = sim_factory(realistic(unstable_tie_order=False))
    truth = sim.ground_truth(SITE, ATTENDEES.name)
    counts = Counter(repr(r) for r in truth)
    twins = [r for r in truth if counts[repr(r)] > 1]
    call_in = [r for r in twins if r["name"].startswith("Call-in User_")]
    ordinary = [r for r in twins if not r["name"].startswith("Call-in")]
    assert call_in and ordinary  # both kinds of exact twin exist
    assert all(r["email"] in ("", None) for r in call_in) and {r["email"] for r in call_in} == {"", None}
    labels = Counter(r["name"] for r in call_in)
    assert "Call-in User_1" in labels  # the label restarts per meeting: many meetings have a _1
    assert len({r["conf_id"] for r in call_in if r["name"] == "Call-in User_1"}) > 1
    # A full listing over HTTP holds the twins exactly as ground truth does (repeated, equal).
    pair = call_in[0]
    when = pair["join_time"]
    body = probe.list_body(ATTENDEES, start=when, end=when, zone_id=BEIJING, maximum=500)
    records = listed(sim.url, body)
    assert records == bare([r for r in truth if r["join_time"] == when])
    assert sum(1 for r in records if r == bare([pair])[0]) >= 2
    # The same rendering for both (unpadded dates, drift, UUID spelling follow content, not position).
    ((reply,),) = exchange(sim.url, probe.envelope([body], ADMIN), record_element=ATTENDEES.record_element)
    texts = Counter(etree.tostring(r) for r in reply.records)
    assert max(texts.values()) >= 2
    # The HTTP ground truth repeats them too.
    served = http_ground_truth(sim, SITE, ATTENDEES.name)
    assert len(served) == len(truth)
    assert max(Counter(repr(sorted(r.items())) for r in served).values()) >= 2


def http_ground_truth(sim: Any, site: str, dataset: str) -> list:
    async def main() -> list:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{sim.base_url}/_sim/ground-truth", params={"site": site, "dataset": dataset}) as r:
                return await r.json()

    return asyncio.run(main())


def test_mutate_remove_deletes_exactly_the_row_served(sim_factory: Any) -> None:
    sim = sim_factory(realistic(unstable_tie_order=False))
    truth = sim.ground_truth(SITE, ATTENDEES.name)
    runs: dict[tuple, list[dict]] = {}
    for row in truth:
        runs.setdefault(key(ATTENDEES, row), []).append(row)
    # A near-twin pair alone in its second: page 2 of size 1 serves the second of the two.
    by_time = Counter(r["join_time"] for r in truth)
    first, second = next(rows for rows in runs.values()
                         if len(rows) == 2 and rows[0] != rows[1] and by_time[rows[0]["join_time"]] == 2)
    when = first["join_time"]
    sim.queue_fault("mutate_remove", 1, ATTENDEES.operation)
    (served,) = listed(sim.url, probe.list_body(ATTENDEES, start=when, end=when, zone_id=BEIJING, start_from=2,
                                                maximum=1))
    assert served == bare([second])[0]
    after = sim.ground_truth(SITE, ATTENDEES.name)
    assert len(after) == len(truth) - 1
    assert first in after and second not in after  # the row served went, not its key's first row


def test_near_twins_share_the_natural_key_but_not_the_device(sim_factory: Any) -> None:
    sim = sim_factory(realistic(unstable_tie_order=False))
    truth = sim.ground_truth(SITE, ATTENDEES.name)
    groups: dict[tuple, list[dict]] = {}
    for row in truth:
        groups.setdefault(key(ATTENDEES, row), []).append(row)
    near = [g for g in groups.values() if len({repr(r) for r in g}) > 1]
    assert near, "near twins: one natural key, different rows"
    a, b = sorted(near[0][:2], key=lambda r: r["leave_time"])
    assert a["leave_time"] < b["leave_time"] and a["duration"] <= b["duration"]  # the second device stays on
    assert a["join_time"] == b["join_time"]
    # Both are served by HTTP, and Access Anywhere has them too.
    when = a["join_time"]
    records = listed(sim.url, probe.list_body(ATTENDEES, start=when, end=when, zone_id=BEIJING, maximum=500))
    assert bare([a])[0] in records and bare([b])[0] in records
    aa = by_name("access_anywhere")
    aa_keys = Counter(key(aa, r) for r in sim.ground_truth(SITE, aa.name))
    assert aa_keys.most_common(1)[0][1] > 1


def _content(row: dict) -> tuple:
    """A row's column values as a total order (None first; JSON by its text), as the store breaks ties."""
    return tuple((0, 0) if v is None else (2, repr(v)) if isinstance(v, (list, dict)) else (1, v)
                 for v in (row[c.name] for c in ATTENDEES.columns))


def _runs_sorted_by_content(sim: Any) -> list[bool]:
    """For each natural key held by several rows: are they in the order of their content?"""
    stored = sim.store.select(SITE, Selection(ATTENDEES.name))  # no order requested: the stored order
    now = sim.clock.now_ts()
    runs: dict[tuple, list[dict]] = {}
    for rec in stored:
        row = sim.store.as_dict(sim.store.site(SITE), ATTENDEES.name, rec, now)
        runs.setdefault(key(ATTENDEES, row), []).append(row)
    return [[_content(r) for r in rows] == sorted(_content(r) for r in rows) for rows in runs.values()
            if len(rows) > 1]


def test_equal_keys_are_stored_in_the_order_of_their_content(sim_factory: Any) -> None:
    sim = sim_factory(realistic(unstable_tie_order=False))
    truth = sim.ground_truth(SITE, ATTENDEES.name)
    checked = _runs_sorted_by_content(sim)
    assert len(checked) > 100 and all(checked)
    # A revised near twin goes back to its place by content, not after its key's other rows.
    runs: dict[tuple, list[dict]] = {}
    for row in truth:
        runs.setdefault(key(ATTENDEES, row), []).append(row)
    pairs = [rows for rows in runs.values() if len(rows) == 2 and rows[0] != rows[1]]
    for first, second in pairs[:10]:
        revised = sim.revise_record(SITE, ATTENDEES.name, first, {"company": "\u0000 first"})
        # Of rows sharing a key, revise acts on the first in stored order: the one first by content.
        earlier = min((first, second), key=_content)
        assert {**revised, "company": earlier["company"]} == earlier
    assert all(_runs_sorted_by_content(sim))


def test_store_keeps_one_order_for_equal_keys_and_removes_exactly_one_twin(sim_factory: Any) -> None:
    sim = sim_factory(realistic(unstable_tie_order=False))
    first = sim.ground_truth(SITE, ATTENDEES.name)
    again = type(sim)(sim.config).ground_truth(SITE, ATTENDEES.name)
    assert first == again  # a fresh simulator stores twins in the same order
    counts = Counter(repr(r) for r in first)
    twin = next(r for r in first if counts[repr(r)] > 1)
    sim.remove_record(SITE, ATTENDEES.name, twin)
    after = Counter(repr(r) for r in sim.ground_truth(SITE, ATTENDEES.name))
    assert after[repr(twin)] == counts[repr(twin)] - 1


# --------------------------------------------------------------------------- order and unstable ties


def test_three_order_pairs_sort_by_all_then_by_the_stored_order(sim_factory: Any) -> None:
    sim = sim_factory(realistic(unstable_tie_order=False))
    order = [("CONFNAME", "DESC"), ("HOSTWEBEXID", "ASC"), ("STARTTIME", "DESC")]
    truth = sim.ground_truth(SITE, USAGE.name)
    start, end = truth[0]["meeting_start_time"], truth[0]["meeting_start_time"] + timedelta(days=3)
    records = listed(sim.url, probe.list_body(USAGE, start=start, end=end, maximum=500, order=order), zone_id=20)
    window = [r for r in bare(truth) if start <= r["meeting_start_time"] <= end]
    expected = sorted(window, key=lambda r: r["meeting_start_time"], reverse=True)
    expected.sort(key=lambda r: r["host_webex_id"])
    expected.sort(key=lambda r: r["conf_name"], reverse=True)
    assert len(records) > 20 and records == expected
    four = probe.list_body(USAGE, order=[*order, ("CONFID", "ASC")])
    ((reply,),) = exchange(sim.url, probe.envelope([four], ADMIN))
    assert (reply.result, reply.exception_id) == ("FAILURE", codes.INVALID_ARGUMENT)


def _tie_group(truth: list[dict]) -> list[dict]:
    """A run of rows tied in the registry's order, all different from each other (no exact twins)."""
    runs: dict[tuple, list[dict]] = {}
    for row in truth:
        runs.setdefault(tied(row), []).append(row)
    for rows in runs.values():
        if len(rows) >= 2 and len({repr(r) for r in rows}) == len(rows) \
                and sum(1 for r in truth if r["join_time"] == rows[0]["join_time"]) == len(rows):
            return rows  # alone in its second, so a scope on that second lists exactly the group
    raise AssertionError("no tie group of distinct rows")


def test_pages_cutting_a_tie_group_can_repeat_and_skip_rows(sim_factory: Any) -> None:
    sim = sim_factory(realistic())
    truth = sim.ground_truth(SITE, ATTENDEES.name)
    group = _tie_group(truth)
    when = group[0]["join_time"]
    members = bare(group)
    first_pages, overlaps = [], 0
    for _ in range(20):  # 40 requests at most
        page1 = probe.list_body(ATTENDEES, start=when, end=when, zone_id=BEIJING, start_from=1, maximum=1)
        page2 = probe.list_body(ATTENDEES, start=when, end=when, zone_id=BEIJING, start_from=2, maximum=1)
        (a,), (b,) = (listed(sim.url, p) for p in (page1, page2))
        assert a in members and b in members
        first_pages.append(repr(a))
        overlaps += a == b  # one tied row twice, so another was skipped
    assert overlaps >= 1 and len(set(first_pages)) > 1
    assert sim.ground_truth(SITE, ATTENDEES.name) == truth  # ground truth is unaffected


def test_unstable_pages_only_swap_tied_rows_and_never_repeat_a_row_within_a_page(sim_factory: Any) -> None:
    sim = sim_factory(realistic())
    truth = bare(sim.ground_truth(SITE, ATTENDEES.name))
    groups = Counter(tied(r) for r in truth)
    group, size = groups.most_common(1)[0]
    assert size >= 3  # e.g. a row and a call-in pair, or a row with a near twin and an exact twin
    when = group[TIE_COLUMNS.index(ATTENDEES.start_column)]
    start, end = when - timedelta(hours=2), when + timedelta(hours=2)
    window = [r for r in truth if start <= r["join_time"] <= end]
    cut = next(i for i, r in enumerate(window) if tied(r) == group) + 1  # after the group's first row
    in_truth = Counter(repr(r) for r in truth)
    for start_from, maximum in ((1, cut), (cut + 1, size - 1), (cut + 1, 7), (2, 3), (1, len(window))):
        for _ in range(5):
            page = listed(sim.url, probe.list_body(ATTENDEES, start=start, end=end, zone_id=BEIJING,
                                                   start_from=start_from, maximum=maximum))
            expected = window[start_from - 1 : start_from - 1 + maximum]
            # The order columns exactly as in the stored order: only tied rows trade places.
            assert [tied(r) for r in page] == [tied(r) for r in expected]
            # Never one stored row twice in a page: a row repeats only as often as it has twins.
            assert all(n <= in_truth[text] for text, n in Counter(repr(r) for r in page).items())


# --------------------------------------------------------------------------- 000053


@pytest.mark.parametrize(("template", "expected"), [
    ("請求中的 BodyContent 計數必須小於 {number}", "請求中的 BodyContent 計數必須小於 4"),
    ("請求中的 BodyContent 計數過多", "請求中的 BodyContent 計數過多"),
])
def test_body_content_limit_reason_is_localized(sim_factory: Any, template: str, expected: str) -> None:
    sim = sim_factory(realistic(body_content_limit=3, body_content_limit_reason=template))
    three, four = (probe.envelope([probe.body("site.GetSite")] * n, ADMIN) for n in (3, 4))
    ok, (refused,) = exchange(sim.url, three, four)
    assert [r.result for r in ok] == ["SUCCESS"] * 3
    assert (refused.exception_id, refused.reason) == (codes.BODY_CONTENT_LIMIT, expected)


# --------------------------------------------------------------------------- Beijing time


def test_beijing_site_reports_its_zone_and_lists_unlabeled_times_in_it(sim_factory: Any) -> None:
    sim = sim_factory(realistic(unstable_tie_order=False))
    site, zones = exchange(sim.url, probe.envelope([probe.body("java:com.webex.service.binding.site.GetSite")], ADMIN),
                           probe.envelope([probe.body("site.LstTimeZone", f"<timeZoneID>{BEIJING}</timeZoneID>")],
                                          ADMIN))
    meta = site[0].content.find("{*}siteInstance/{*}metaData")
    assert (meta.findtext("{*}timeZoneID"), meta.findtext("{*}timeZone")) == ("45", "GMT+08:00, China (Beijing)")
    (zone,) = zones[0].content.findall("{*}timeZone")
    assert (zone.findtext("{*}timeZoneID"), zone.findtext("{*}gmtOffset"), zone.findtext("{*}fallInDST")) == (
        "45", "480", "false")
    # Attendee history carries no timeZoneID: its times are Beijing wall-clock times.
    truth = sim.ground_truth(SITE, ATTENDEES.name)
    row = truth[len(truth) // 2]
    when = row["join_time"]
    body = probe.list_body(ATTENDEES, start=when, end=when, zone_id=BEIJING)
    ((reply,),) = exchange(sim.url, probe.envelope([body], ADMIN), record_element=ATTENDEES.record_element)
    wire = reply.records[0].findtext("{*}joinTime")
    assert datetime.strptime(wire, "%m/%d/%Y %H:%M:%S") == (when + timedelta(hours=8)).replace(tzinfo=None)
    assert probe.record_values(ATTENDEES, reply.records[0], BEIJING)["join_time"] == when


# --------------------------------------------------------------------------- users


def _user(reply: probe.Reply) -> dict[str, str]:
    content = reply.content
    assert reply.xsi_type == "use:getUserResponse" and etree.QName(content[0]).namespace == USE
    values = {etree.QName(k).localname: k.text for k in content if len(k) == 0}
    values.update({etree.QName(k).localname: k.text for k in content.find("{*}privilege")})
    return values


def test_get_user_for_admin_non_admin_and_unknown(sim_factory: Any) -> None:
    sim = sim_factory(realistic())
    by_admin = probe.envelope([probe.body("java:com.webex.service.binding.user.GetUser"),
                               probe.body("user.GetUser", "<webExId>HOST1</webExId>"),
                               probe.body("user.GetUser", "<webExId>nobody</webExId>")], ADMIN)
    by_host = probe.envelope([probe.body("user.GetUser")], HOST1)
    (admin, host1, unknown), (me,) = exchange(sim.url, by_admin, by_host)
    a, h, m = _user(admin), _user(host1), _user(me)
    assert (a["webExId"], a["siteAdmin"], a["roSiteAdmin"], a["host"], a["active"]) == (
        "admin", "true", "false", "true", "ACTIVATED")
    assert (h["webExId"], h["siteAdmin"], h["email"]) == ("host1", "false", "host1@acme-cn.example.com")
    assert m == h and h["firstName"] and h["lastName"]
    assert (unknown.result, unknown.exception_id) == ("FAILURE", codes.USER_NOT_FOUND)
    root = etree.fromstring(exchange_raw(sim.url, by_host))
    assert root.nsmap.get("use") == USE  # declared on the root, as GetSite declares site


def exchange_raw(url: str, document: bytes) -> bytes:
    async def main() -> bytes:
        async with aiohttp.ClientSession() as http:
            return (await probe.post(http, url, document))[2]

    return asyncio.run(main())


def test_non_admin_lists_only_their_own_sessions(sim_factory: Any) -> None:
    sim = sim_factory(realistic())
    usage = sim.ground_truth(SITE, USAGE.name)
    own = [r for r in usage if r["host_webex_id"].lower() == "host1"]
    assert 0 < len(own) < len(usage) // 4
    start = NOW - timedelta(days=3)
    mine = listed(sim.url, probe.list_body(USAGE, start=start, maximum=500), HOST1, zone_id=20)
    assert mine == bare([r for r in own if r["meeting_start_time"] >= start]) and mine
    everyone = listed(sim.url, probe.list_body(USAGE, start=start, maximum=500), ADMIN, zone_id=20)
    assert len(everyone) > len(mine)
    # Attendees: only the rows of host1's meetings.
    conf_ids = {r["conf_id"] for r in own}
    attendees = [r for r in sim.ground_truth(SITE, ATTENDEES.name) if r["conf_id"] in conf_ids]
    start = NOW - timedelta(days=2)
    got = listed(sim.url, probe.list_body(ATTENDEES, start=start, maximum=500, zone_id=BEIJING), HOST1)
    assert got and got == bare([r for r in attendees if r["join_time"] >= start])
    # Recordings: host1's meetings' recordings only.
    recordings = by_name("recording_access")
    all_recordings = sim.ground_truth(SITE, recordings.name)
    owned = {5_000_000_000 + c % 10**14 for c in conf_ids}
    got = listed(sim.url, probe.list_body(recordings, maximum=500, zone_id=20), HOST1, zone_id=20)
    assert got == bare([r for r in all_recordings if r["record_id"] in owned]) and len(got) < len(all_recordings)


# --------------------------------------------------------------------------- retired operations


def test_retired_operation_fails_and_other_bodies_are_answered(sim_factory: Any) -> None:
    sim = sim_factory(realistic())
    legacy = probe.security("legacy", webex_id="admin", password="sim-password")
    aa = by_name("access_anywhere")
    bodies = [probe.list_body(USAGE, maximum=2), probe.list_body(aa).replace("LstAccessAnywhereHistory",
                                                                              "lstaccessanywherehistory"),
              probe.body("site.GetSite")]
    ((usage, retired, site),) = exchange(sim.url, probe.envelope(bodies, legacy))
    assert (usage.result, usage.returned, site.result) == ("SUCCESS", 2, "SUCCESS")
    assert (retired.result, retired.exception_id, retired.reason) == (
        "FAILURE", codes.OPERATION_RETIRED, "This API has been retired. Please use the Webex REST APIs instead.")
    assert len(retired.content) == 0
    assert sim.ground_truth("legacy", aa.name) == []
    assert sim.ground_truth(SITE, aa.name)  # retired on one site only
    ((still,),) = exchange(sim.url, probe.envelope([probe.list_body(aa)], ADMIN))
    assert still.result == "SUCCESS"


def test_http_ground_truth_of_a_retired_operation_is_empty(sim_factory: Any) -> None:
    sim = sim_factory(realistic())
    assert http_ground_truth(sim, "legacy", "access_anywhere") == []
    assert http_ground_truth(sim, SITE, "access_anywhere")


# --------------------------------------------------------------------------- changes after 3 days


def test_revisions_late_rows_and_growing_counters_appear_after_three_days(sim_factory: Any) -> None:
    sim = sim_factory(realistic())
    before_usage = {r["conf_id"]: r for r in sim.ground_truth(SITE, USAGE.name)}
    before_recordings = {r["record_id"]: r for r in sim.ground_truth(SITE, "recording_access")}
    before_keys = Counter(key(ATTENDEES, r) for r in sim.ground_truth(SITE, ATTENDEES.name))
    old_now = NOW
    sim.clock.advance(5 * 86_400)
    new_now = old_now + timedelta(days=5)
    after_usage = {r["conf_id"]: r for r in sim.ground_truth(SITE, USAGE.name)}

    changed = [c for c, r in before_usage.items() if c in after_usage and after_usage[c] != r]
    assert changed
    for conf_id in changed:
        old, new = before_usage[conf_id], after_usage[conf_id]
        assert new["duration"] > old["duration"] and new["total_people_minutes"] > old["total_people_minutes"]
        assert new["total_participants"] > old["total_participants"]
        assert new["meeting_end_time"] == old["meeting_end_time"]
        # Revised 4-6 days after the session: not yet at the old now, due by the new one.
        assert old_now < old["meeting_end_time"] + timedelta(days=6)
        assert old["meeting_end_time"] + timedelta(days=4) <= new_now
    # Some revisions come to sessions an exporter looking back 3 days would no longer list.
    assert any(before_usage[c]["meeting_end_time"] < old_now - timedelta(days=3) for c in changed)

    # Over HTTP: the old value before, the new one after.
    conf_id = changed[0]
    body = probe.list_body(USAGE, more=f"<confID>{conf_id}</confID>")
    (now_row,) = listed(sim.url, body, zone_id=20)
    assert now_row["duration"] == after_usage[conf_id]["duration"]
    sim.clock.advance(-5 * 86_400)
    (then_row,) = listed(sim.url, body, zone_id=20)
    assert then_row["duration"] == before_usage[conf_id]["duration"]
    sim.clock.advance(5 * 86_400)

    # Recording counters still grow for recordings older than 3 days.
    after_recordings = {r["record_id"]: r for r in sim.ground_truth(SITE, "recording_access")}
    old_ones = [i for i, r in before_recordings.items() if r["creation_time"] < old_now - timedelta(days=3)]
    assert old_ones and all(after_recordings[i]["viewed"] > before_recordings[i]["viewed"] for i in old_ones)
    assert all(after_recordings[i]["downloaded"] >= before_recordings[i]["downloaded"] for i in old_ones)
    assert any(after_recordings[i]["downloaded"] > before_recordings[i]["downloaded"] for i in old_ones)

    # Attendee rows that first appear days after their meeting, in windows over 3 days old.
    after_keys = Counter(key(ATTENDEES, r) for r in sim.ground_truth(SITE, ATTENDEES.name))
    late = [k for k, n in (after_keys - before_keys).items() if k[3] < old_now - timedelta(days=3)]
    assert late
