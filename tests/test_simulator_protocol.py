"""The wire shapes: seed requests answered like the seed responses; envelopes; the simple operations."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from exporter.model.datasets import by_name
from exporter.records.xmlsafe import parse_xml
from exporter.simulator import SiteConfig, probe

SEEDS = Path(__file__).parent / "fixtures" / "seeds"
CTX = probe.security("demo", webex_id="admin", password="sim-password")
SERV = "{http://www.webex.com/schemas/2002/06/service}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def post_all(url: str, *documents: bytes) -> list[tuple[int, dict, bytes]]:
    """POST each document in turn over one client session."""

    async def main() -> list[tuple[int, dict, bytes]]:
        async with aiohttp.ClientSession() as http:
            return [await probe.post(http, url, doc) for doc in documents]

    return asyncio.run(main())


def replies(url: str, document: bytes, record_element: str | None = None) -> list[probe.Reply]:
    status, _, data = post_all(url, document)[0]
    assert status == 200
    return probe.read_reply(data, record_element)


# --------------------------------------------------------------------------- seed samples


@pytest.fixture
def seed_sim(sim_factory: Any) -> Any:
    """Sites and users of the seed samples, with the clock inside their date scopes (Nov 2019)."""
    return sim_factory(
        sites=(SiteConfig("xxx", users={"Test": "xxx"}, return_scheduled_pmr_switch=True),
               SiteConfig("sqdemo6", users={"test": "P@ss1234"})),
        days=30,
        meetings_per_day=3,
        attendees_per_meeting=1,
        now=datetime(2019, 11, 25, 12, tzinfo=timezone.utc),
    )


def _shape(element: etree._Element) -> tuple:
    """Tag, namespace declarations and attributes of the envelope, down to matchingRecords."""
    kids = tuple(_shape(k) for k in element if etree.QName(k).localname not in ("session", "accessAnyWhereInfo"))
    return (element.tag, tuple(sorted(element.nsmap.items())) if element.getparent() is None else (),
            tuple(sorted((k, v) for k, v in element.attrib.items())), kids)


def _record_names(root: etree._Element, record: str) -> list[list[str]]:
    return [[k.tag for k in r] for r in root.iter(f"{{*}}{record}")]


@pytest.mark.parametrize(("name", "record", "count"),
                         [("lstsummarysession", "session", 2), ("lstaccessanywherehistory", "accessAnyWhereInfo", 10)])
def test_seed_requests_get_responses_shaped_like_the_seed_responses(seed_sim: Any, name: str, record: str,
                                                                   count: int) -> None:
    request = (SEEDS / f"{name}_request.xml").read_bytes()  # verbatim, NBSP indentation and all
    status, headers, data = post_all(seed_sim.url, request)[0]
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    ours, seed = parse_xml(data), parse_xml((SEEDS / f"{name}_response.xml").read_bytes())
    assert _shape(ours) == _shape(seed)  # namespaces, header, bodyContent type, matchingRecords
    assert ours.findtext(f"{SERV}body/{SERV}bodyContent/*/{SERV}returned") == str(count)
    mine, theirs = _record_names(ours, record), _record_names(seed, record)
    assert len(mine) == count
    used = {tag for r in mine for tag in r}
    assert {tag for r in theirs for tag in r} <= used  # every element the seed shows, same prefix
    # and in the seed's order
    order = [tag for tag in max(mine, key=len) if tag in {t for r in theirs for t in r}]
    assert order == [tag for tag in max(theirs, key=len) if tag in order]


def test_anonymous_lstsummarysession_gets_no_record_found(seed_sim: Any) -> None:
    document = probe.envelope([probe.body("java:com.webex.service.binding.ep.LstsummarySession",
                                          "<sessionKey>211894651</sessionKey>")], probe.security("xxx"))
    (reply,) = replies(seed_sim.url, document)
    assert (reply.result, reply.exception_id, reply.reason) == ("FAILURE", "000015", "Sorry, no record found")
    assert len(reply.content) == 0  # <serv:bodyContent/>


# --------------------------------------------------------------------------- envelopes


def test_request_spellings_are_all_accepted(simulator: Any) -> None:
    ds = by_name("meeting_usage")
    long_form = probe.list_body(ds, maximum=5)
    short_form = long_form.replace("java:com.webex.service.binding.", "")
    unprefixed = probe.list_body(ds, maximum=5, prefixed_control=False)
    documents = [probe.envelope([long_form], CTX), probe.envelope([short_form], CTX),
                 probe.envelope([unprefixed], CTX, declare_serv=False)]
    answers = [probe.read_reply(d, ds.record_element)[0] for _, _, d in post_all(simulator.url, *documents)]
    assert {(a.result, a.total, a.returned) for a in answers} == {("SUCCESS", answers[0].total, 5)}
    assert answers[0].xsi_type == "history:lstmeetingusageHistoryResponse"


def test_several_bodies_are_answered_in_order(simulator: Any) -> None:
    usage, attendees = by_name("meeting_usage"), by_name("meeting_attendees")
    bodies = [probe.list_body(usage, maximum=2), probe.body("ep.GetAPIVersion"), probe.body("history.LstNothing"),
              probe.list_body(attendees, maximum=3, start_from=2)]
    got = replies(simulator.url, probe.envelope(bodies, CTX))
    assert [(r.result, r.exception_id) for r in got] == [("SUCCESS", ""), ("SUCCESS", ""), ("FAILURE", "000001"),
                                                         ("SUCCESS", "")]
    assert [r.xsi_type for r in got] == ["history:lstmeetingusageHistoryResponse", "ep:getAPIVersionResponse", "",
                                         "history:lstmeetingattendeeHistoryResponse"]
    assert (got[0].returned, got[3].returned, got[3].start_from) == (2, 3, 2)


def test_matching_records_position_follows_the_registry(simulator: Any) -> None:
    for name, first in (("access_anywhere", True), ("scheduled_sessions", True), ("meeting_usage", False)):
        ds = by_name(name)
        (reply,) = replies(simulator.url, probe.envelope([probe.list_body(ds, maximum=2)], CTX))
        names = [etree.QName(k).localname for k in reply.content]
        assert (names[0] == "matchingRecords") is first and (names[-1] == "matchingRecords") is not first


def test_records_carry_the_registry_element_names(simulator: Any) -> None:
    ds = by_name("training_sessions")
    (reply,) = replies(simulator.url, probe.envelope([probe.list_body(ds, maximum=20)], CTX), ds.record_element)
    tags = {etree.QName(k).localname for r in reply.records for k in r}
    assert "totalCallInTolllfreeMinutes" in tags  # the schema's typo, kept
    assert all(etree.QName(r).namespace.endswith("/history") for r in reply.records)
    event = by_name("event_attendees")
    (reply,) = replies(simulator.url, probe.envelope([probe.list_body(event, maximum=100)], CTX), event.record_element)
    qa = [k for r in reply.records for k in r if etree.QName(k).localname == "regQandA"]
    assert qa and {etree.QName(k).localname for q in qa for k in q} == {"regQ", "regA"}


# --------------------------------------------------------------------------- simple operations


def test_authenticate_user_with_password_and_with_access_token(simulator: Any) -> None:
    by_password = probe.envelope([probe.body("java:com.webex.service.binding.user.AuthenticateUser")], CTX)
    by_token = probe.envelope([probe.body("user.AuthenticateUser", "<accessToken>sim-token</accessToken>")],
                              probe.security("demo", webex_id="admin"))
    for document in (by_password, by_token):
        (reply,) = replies(simulator.url, document)
        assert reply.result == "SUCCESS" and reply.xsi_type == "use:authenticateUserResponse"
        values = {etree.QName(k).localname: k.text for k in reply.content}
        assert int(values["createTime"]) == int(datetime(2026, 3, 10, 12, tzinfo=timezone.utc).timestamp() * 1000)
        assert values["timeToLive"] == "5400"
        ticket = values["sessionTicket"]
        ds = by_name("meeting_usage")
        (listed,) = replies(simulator.url, probe.envelope([probe.list_body(ds, maximum=1)],
                                                          probe.security("demo", webex_id="admin", ticket=ticket)))
        assert listed.result == "SUCCESS"
    (listed,) = replies(simulator.url, probe.envelope([probe.list_body(by_name("meeting_usage"), maximum=1)],
                                                      probe.security("demo", token="sim-token")))
    assert listed.result == "SUCCESS"


def test_get_site_reports_the_scheduled_pmr_switch(sim_factory: Any) -> None:
    sim = sim_factory(sites=(SiteConfig("on", return_scheduled_pmr_switch=True), SiteConfig("off")))
    for site, switch in (("on", "true"), ("off", "false")):
        context = probe.security(site, webex_id="admin", password="sim-password")
        (reply,) = replies(sim.url, probe.envelope([probe.body("java:com.webex.service.binding.site.GetSite")], context))
        assert reply.xsi_type == "site:getSiteResponse"
        assert reply.content.findtext(".//{*}siteCommonOptions/{*}SupportXMLAPIReturnScheduledPMR") == switch


def test_scheduled_pmrs_need_the_switch_and_the_request_flag(sim_factory: Any) -> None:
    ds = by_name("scheduled_sessions")
    sim = sim_factory(sites=(SiteConfig("on", return_scheduled_pmr_switch=True), SiteConfig("off")))
    seen = {}
    for site in ("on", "off"):
        context = probe.security(site, webex_id="admin", password="sim-password")
        for flag in (True, False):
            (reply,) = replies(sim.url, probe.envelope([probe.list_body(ds, maximum=500, extras=flag)], context),
                               ds.record_element)
            values = [probe.record_values(ds, r) for r in reply.records]
            seen[(site, flag)] = (sum(1 for v in values if v["is_scheduled_pmr"]),
                                  all(v["is_scheduled_pmr"] is None for v in values))
    assert seen[("on", True)][0] > 0 and not seen[("on", True)][1]
    assert seen[("on", False)] == (0, True) and seen[("off", True)] == (0, True) and seen[("off", False)] == (0, True)


def test_get_api_version_is_anonymous(simulator: Any) -> None:
    (reply,) = replies(simulator.url, probe.envelope([probe.body("ep.GetAPIVersion")], probe.security("demo")))
    assert reply.result == "SUCCESS"
    assert reply.content.findtext("{*}apiVersion").startswith("WebEx XML API")


def test_lst_time_zone_lists_62_zones_with_dst_offsets(simulator: Any) -> None:
    every = probe.envelope([probe.body("site.LstTimeZone")], CTX)
    summer = probe.envelope([probe.body("site.LstTimeZone", "<timeZoneID>4</timeZoneID><timeZoneID>55</timeZoneID>"
                                                          "<date>07/01/2026 12:00:00</date>")], CTX)
    (all_zones,) = replies(simulator.url, every)
    zones = all_zones.content.findall("{*}timeZone")
    assert [int(z.findtext("{*}timeZoneID")) for z in zones] == list(range(62))
    (picked,) = replies(simulator.url, summer)
    rows = {int(z.findtext("{*}timeZoneID")): (int(z.findtext("{*}gmtOffset")), z.findtext("{*}fallInDST"))
            for z in picked.content.findall("{*}timeZone")}
    assert rows == {4: (-420, "true"), 55: (600, "false")}  # San Jose in PDT, Sydney in winter


def test_cisco_sample_without_a_serv_declaration_is_accepted(simulator: Any) -> None:
    # The documentation's GetAPIVersion sample: serv:message with only xmlns:xsi declared.
    document = b"""<serv:message xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <header><securityContext><siteName>demo</siteName></securityContext></header>
  <body><bodyContent xsi:type="java:com.webex.service.binding.ep.GetAPIVersion"/></body>
</serv:message>"""
    (reply,) = replies(simulator.url, document)
    assert reply.result == "SUCCESS" and reply.xsi_type == "ep:getAPIVersionResponse"


def test_some_sites_write_dates_unpadded(sim_factory: Any) -> None:
    sim = sim_factory(sites=(SiteConfig("demo", unpadded_date_fraction=1.0),))
    ds = by_name("meeting_attendees")
    (reply,) = replies(sim.url, probe.envelope([probe.list_body(ds, maximum=500)], CTX), ds.record_element)
    joins = [r.findtext("{*}joinTime") for r in reply.records]
    assert any(t.startswith("3/9/2026 ") for t in joins) and not any(t.startswith("03/") for t in joins)
    values = [probe.record_values(ds, r) for r in reply.records]
    assert values == [{k: v for k, v in t.items() if k != "site"} for t in sim.ground_truth("demo", ds.name)]
