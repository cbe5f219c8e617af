"""The wire format: requests we build look like the seed samples; responses pair up by position."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from source_fixtures import make_site

from exporter.config import Secret
from exporter.errors import ParseError
from exporter.model.datasets import by_name
from exporter.model.windows import Window
from exporter.records.xmlsafe import local_name, parse_xml
from exporter.webex.protocol import (
    AUTHENTICATE_USER,
    SERV_NS,
    Body,
    authenticate_body,
    build_request,
    list_body,
    operation_xsi_type,
    parse_response,
)

SEEDS = Path(__file__).parent / "fixtures" / "seeds"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
UTC = timezone.utc


def paths(element: etree._Element, *, qualified: bool = True, prefix: str = "") -> set[str]:
    """Every element path below ``element`` (namespace-qualified tags, or local names)."""
    out = set()
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = child.tag if qualified else local_name(child.tag)
        path = f"{prefix}/{name}"
        out.add(path)
        out |= paths(child, qualified=qualified, prefix=path)
    return out


def body_content(root: etree._Element) -> etree._Element:
    return root.find("body").find("bodyContent")  # type: ignore[union-attr]


def window() -> Window:
    return Window(datetime(2019, 11, 1, tzinfo=UTC), datetime(2019, 12, 1, tzinfo=UTC))


def test_access_anywhere_request_has_the_seed_sample_structure() -> None:
    sample = parse_xml((SEEDS / "lstaccessanywherehistory_request.xml").read_bytes())
    site = make_site(name="sqdemo6", webex_id="test", password="P@ss1234")
    dataset = by_name("access_anywhere")
    body = list_body(dataset, window(), start_from=1, maximum_num=10, time_zone_id=None, zone=ZoneInfo("Etc/GMT"))
    ours = parse_xml(build_request(site, [body], ticket=None))

    assert ours.tag == sample.tag == f"{{{SERV_NS}}}message"
    assert paths(ours.find("header")) == paths(sample.find("header"))  # webExID, password, siteName
    ours_body, sample_body = body_content(ours), body_content(sample)
    assert ours_body.get(XSI_TYPE) == sample_body.get(XSI_TYPE)
    # Everything we send stands where the sample has it, namespaces included (serv:startFrom ...).
    assert paths(ours_body) <= paths(sample_body)
    assert {"/listControl", "/order", "/startTimeScope"} <= paths(ours_body)
    assert ours_body.findtext("startTimeScope/sessionStartTimeStart") == "11/01/2019 00:00:00"
    assert ours_body.findtext("startTimeScope/sessionStartTimeEnd") == "11/30/2019 23:59:59"  # end - 1 s
    assert ours_body.findtext(f"listControl/{{{SERV_NS}}}listMethod") == "AND"
    assert ours_body.find("timeZoneID") is None  # this dataset's times are unlabeled


def test_summary_session_request_has_the_seed_sample_structure_with_zone_inside_date_scope() -> None:
    sample = parse_xml((SEEDS / "lstsummarysession_request.xml").read_bytes())
    site = make_site(time_zone_id=4)
    body = list_body(by_name("scheduled_sessions"), window(), start_from=501, maximum_num=500, time_zone_id=4)
    ours = body_content(parse_xml(build_request(site, [body], ticket=None)))
    assert ours.get(XSI_TYPE) == body_content(sample).get(XSI_TYPE)
    assert paths(ours, qualified=False) <= paths(body_content(sample), qualified=False)
    # The window is written on Pacific wall time (PDT then PST): 11/01 00:00 UTC = 10/31 17:00 PDT.
    assert ours.findtext("dateScope/startDateStart") == "10/31/2019 17:00:00"
    assert ours.findtext("dateScope/startDateEnd") == "11/30/2019 15:59:59"
    assert ours.findtext("dateScope/timeZoneID") == "4"
    assert ours.find("timeZoneID") is None
    assert ours.findtext("returnScheduledPMR") == "true"
    assert ours.findtext(f"listControl/{{{SERV_NS}}}startFrom") == "501"


def test_history_request_sends_time_zone_order_and_extras() -> None:
    body = list_body(by_name("meeting_usage"), window(), start_from=1, maximum_num=500, time_zone_id=20)
    content = body_content(parse_xml(build_request(make_site(), [body], ticket=None)))
    assert content.findtext("timeZoneID") == "20"
    assert content.findtext("inclAudioOnly") == "true"
    # Start time first, then tie-breakers, so rows tied on time keep their order between pages.
    assert [e.text for e in content.find("order")] == ["STARTTIME", "ASC", "CONFNAME", "ASC", "HOSTNAME", "ASC"]
    assert body.record_element == "meetingUsageHistory"
    prelim = list_body(by_name("meeting_usage"), window(), start_from=1, maximum_num=5, time_zone_id=20,
                       preliminary=True)
    assert prelim.xsi_type == "java:com.webex.service.binding.history.LstmeetingusagePreliminaryHistory"
    with pytest.raises(ValueError, match="no preliminary"):
        operation_xsi_type(by_name("training_sessions"), preliminary=True)
    with pytest.raises(ValueError, match="scope zone must be given"):
        list_body(by_name("meeting_attendees"), window(), start_from=1, maximum_num=5, time_zone_id=20)
    with pytest.raises(ValueError):
        list_body(by_name("meeting_usage"), window(), start_from=0, maximum_num=5, time_zone_id=20)


def test_several_body_contents_in_one_request_in_order() -> None:
    dataset = by_name("meeting_usage")
    bodies = [list_body(dataset, window(), start_from=s, maximum_num=500, time_zone_id=20) for s in (501, 1001, 1501)]
    root = parse_xml(build_request(make_site(), bodies, ticket=None))
    starts = [c.findtext(f"listControl/{{{SERV_NS}}}startFrom") for c in root.find("body")]
    assert starts == ["501", "1001", "1501"]
    with pytest.raises(ValueError):
        build_request(make_site(), [], ticket=None)


def context(xml: bytes) -> list[tuple[str, str]]:
    return [(e.tag, e.text or "") for e in parse_xml(xml).find("header/securityContext")]


def test_credentials_in_the_security_context() -> None:
    body = Body("java:com.webex.service.binding.ep.GetAPIVersion")
    password_site = make_site(password="pw1")
    assert context(build_request(password_site, [body], ticket=None)) == [
        ("webExID", "admin"), ("password", "pw1"), ("siteName", "demo")]
    ticket_site = make_site(auth="ticket", password="pw1")
    assert context(build_request(ticket_site, [body], ticket=Secret("TICKET-1"))) == [
        ("webExID", "admin"), ("sessionTicket", "TICKET-1"), ("siteName", "demo")]
    # Exchanging the password: AuthenticateUser with an empty body and the password in the context.
    exchange = parse_xml(build_request(ticket_site, [authenticate_body()], ticket=None))
    assert body_content(exchange).get(XSI_TYPE) == AUTHENTICATE_USER and len(body_content(exchange)) == 0
    token_site = make_site(auth="token", password=None, access_token="TOKEN-9")
    exchange = parse_xml(build_request(token_site, [authenticate_body(token_site.access_token)], ticket=None))
    assert [e.tag for e in exchange.find("header/securityContext")] == ["webExID", "siteName"]
    assert body_content(exchange).findtext("accessToken") == "TOKEN-9"
    assert ("webExAccessToken", "TOKEN-9") in context(build_request(token_site, [body], ticket=None))


def test_bodies_never_show_their_secrets() -> None:
    body = authenticate_body(Secret("TOKEN-SECRET"))
    assert "TOKEN-SECRET" not in repr(body) and "TOKEN-SECRET" not in str(body.children)


def test_parse_seed_responses_matching_records_first() -> None:
    (aa,) = parse_response((SEEDS / "lstaccessanywherehistory_response.xml").read_bytes(),
                           record_elements=["accessAnyWhereInfo"])
    assert (aa.result, aa.gsb_status, aa.total, aa.returned, aa.start_from) == ("SUCCESS", "PRIMARY", 775, 10, 1)
    assert len(aa.records) == 1 and aa.response_type == "history:LstAccessAnywhereHistoryResponse"
    assert aa.records[0].findtext("{*}userName") == "dean"
    (ss,) = parse_response((SEEDS / "lstsummarysession_response.xml").read_bytes(), record_elements=["session"])
    assert (ss.total, ss.returned, ss.start_from, len(ss.records)) == (1787, 2, 1, 2)
    (no_records,) = parse_response((SEEDS / "lstsummarysession_response.xml").read_bytes())
    assert no_records.records == [] and no_records.total == 1787


def envelope(headers: list[str], bodies: list[str], encoding: str = "UTF-8") -> bytes:
    head = "".join(f"<serv:response>{h}</serv:response>" for h in headers)
    body = "".join(bodies)
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        f'<serv:message xmlns:serv="{SERV_NS}" xmlns:history="http://www.webex.com/schemas/2002/06/service/history">'
        f"<serv:header>{head}</serv:header><serv:body>{body}</serv:body></serv:message>"
    ).encode(encoding)


OK = "<serv:result>SUCCESS</serv:result><serv:gsbStatus>PRIMARY</serv:gsbStatus>"


def failure(code: str, reason: str = "nope") -> str:
    return (f"<serv:result>FAILURE</serv:result><serv:reason>{reason}</serv:reason>"
            f"<serv:gsbStatus>PRIMARY</serv:gsbStatus><serv:exceptionID>{code}</serv:exceptionID>")


def page(start: int, count: int, total: int) -> str:
    records = "".join(
        f"<history:meetingUsageHistory><history:confID>{start + i}</history:confID></history:meetingUsageHistory>"
        for i in range(count)
    )
    # matchingRecords LAST here (history responses), first in the seed samples: both are read.
    return (f"<serv:bodyContent>{records}<history:matchingRecords><serv:total>{total}</serv:total>"
            f"<serv:returned>{count}</serv:returned><serv:startFrom>{start}</serv:startFrom>"
            f"</history:matchingRecords></serv:bodyContent>")


def test_several_responses_pair_by_position() -> None:
    data = envelope([OK, OK, failure("000015")], [page(1, 3, 7), page(4, 3, 7), "<serv:bodyContent/>"])
    answers = parse_response(data, record_elements=["meetingUsageHistory"] * 3)
    assert [(a.result, a.start_from, len(a.records)) for a in answers] == [
        ("SUCCESS", 1, 3), ("SUCCESS", 4, 3), ("FAILURE", None, 0)]
    assert answers[2].exception_id == "000015" and answers[2].reason == "nope"
    assert answers[1].records[0].findtext("{*}confID") == "4"


def test_failed_bodies_without_body_content_pair_with_the_successes() -> None:
    data = envelope([OK, failure("000045"), OK], [page(1, 2, 4), page(3, 2, 4)])
    answers = parse_response(data, record_elements=["meetingUsageHistory"] * 3)
    assert [a.start_from for a in answers] == [1, None, 3]
    assert answers[1].exception_id == "000045" and answers[1].content is None


def test_iso_8859_1_responses_are_read() -> None:
    data = envelope([failure("999999", "caf\u00e9 ferm\u00e9")], [], encoding="ISO-8859-1")
    (answer,) = parse_response(data)
    assert answer.reason == "caf\u00e9 ferm\u00e9"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"<html><body>502 Bad Gateway</body></html>", "not <serv:message>"),
        (f'<serv:message xmlns:serv="{SERV_NS}"><serv:body/></serv:message>'.encode(), "no serv:header"),
        (envelope([OK], [page(1, 1, 1), page(2, 1, 1)]), "cannot pair"),
        (envelope([OK], [page(1, 1, 1).replace("<serv:total>1<", "<serv:total>x<")]), "not an integer"),
        (envelope([OK], [page(1, 1, 1)])[:-40], "not well-formed"),
        (b"", "empty"),
    ],
)
def test_unreadable_responses_raise_parse_error(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_response(data)
