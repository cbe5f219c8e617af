"""Bad requests get FAILURE answers with the exceptionIDs of exporter.model.webex_codes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest

from exporter.model import webex_codes as codes
from exporter.model.datasets import by_name
from exporter.simulator import probe

USAGE = by_name("meeting_usage")
CTX = probe.security("demo", webex_id="admin", password="sim-password")


def send(url: str, document: bytes) -> list[probe.Reply]:
    async def main() -> bytes:
        async with aiohttp.ClientSession() as http:
            status, _, data = await probe.post(http, url, document)
            assert status == 200
            return data

    return probe.read_reply(asyncio.run(main()))


def failure(url: str, document: bytes) -> tuple[str, str]:
    (reply,) = send(url, document)
    assert reply.result == "FAILURE" and len(reply.content) == 0
    return reply.exception_id, reply.reason


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (b"<serv:message><body>", codes.MALFORMED_REQUEST),
        (b"not xml at all", codes.MALFORMED_REQUEST),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', codes.MALFORMED_REQUEST),
        (probe.envelope([probe.body("java:com.webex.service.binding.history.LstNothingHistory")], CTX),
         codes.UNKNOWN_OPERATION),
        (probe.envelope([], CTX), codes.INVALID_ARGUMENT),
    ],
)
def test_unreadable_or_unknown_requests(simulator: Any, document: bytes, code: str) -> None:
    assert failure(simulator.url, document)[0] == code


@pytest.mark.parametrize(
    ("context", "code"),
    [
        (probe.security("demo"), codes.USER_NOT_FOUND),  # no credentials at all
        (probe.security("demo", webex_id="nobody", password="x"), codes.USER_NOT_FOUND),
        (probe.security("demo", webex_id="admin", password="wrong"), codes.BAD_PASSWORD),
        (probe.security("elsewhere", webex_id="admin", password="sim-password"), codes.USER_NOT_FOUND),
        (probe.security("demo", webex_id="admin", ticket="forged"), codes.TICKET_EXPIRED),
        (probe.security("demo", token="stolen"), codes.TOKEN_INVALID),
    ],
)
def test_bad_credentials(simulator: Any, context: str, code: str) -> None:
    document = probe.envelope([probe.list_body(USAGE), probe.body("user.AuthenticateUser")], context)
    replies = send(simulator.url, document)
    assert [(r.result, r.exception_id) for r in replies] == [("FAILURE", code)] * 2


def test_expired_ticket(simulator: Any) -> None:
    (auth,) = send(simulator.url, probe.envelope([probe.body("user.AuthenticateUser")], CTX))
    ticket = auth.content.findtext("{*}sessionTicket")
    with_ticket = probe.envelope([probe.list_body(USAGE)], probe.security("demo", webex_id="admin", ticket=ticket))
    assert send(simulator.url, with_ticket)[0].result == "SUCCESS"
    simulator.clock.advance(5399)
    assert send(simulator.url, with_ticket)[0].result == "SUCCESS"
    simulator.clock.advance(1)
    assert failure(simulator.url, with_ticket)[0] == codes.TICKET_EXPIRED
    assert failure(simulator.url, probe.envelope([probe.body("user.AuthenticateUser", "<accessToken>bad</accessToken>")],
                                                 probe.security("demo")))[0] == codes.TOKEN_INVALID


def test_account_locks_after_repeated_bad_passwords(sim_factory: Any) -> None:
    sim = sim_factory(lockout_after_failures=2)
    bad = probe.envelope([probe.list_body(USAGE)], probe.security("demo", webex_id="admin", password="nope"))
    assert [failure(sim.url, bad)[0] for _ in range(3)] == [codes.BAD_PASSWORD, codes.BAD_PASSWORD,
                                                            codes.ACCOUNT_LOCKED]
    assert failure(sim.url, probe.envelope([probe.list_body(USAGE)], CTX))[0] == codes.ACCOUNT_LOCKED


def test_body_content_limit(sim_factory: Any) -> None:
    sim = sim_factory(body_content_limit=3)
    three = probe.envelope([probe.list_body(USAGE, maximum=1)] * 3, CTX)
    four = probe.envelope([probe.list_body(USAGE, maximum=1)] * 4, CTX)
    assert [r.result for r in send(sim.url, three)] == ["SUCCESS"] * 3
    code, reason = failure(sim.url, four)
    assert code == codes.BODY_CONTENT_LIMIT
    assert reason == "BodyContent count in request must be less than 4"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<timeZoneID>20</timeZoneID>", "<startTimeScope><sessionStartTimeStart>13/45/2026 00:00:00"
                                        "</sessionStartTimeStart></startTimeScope>"),
        ("<timeZoneID>20</timeZoneID>", "<startTimeScope><sessionStartTimeStart>yesterday</sessionStartTimeStart>"
                                        "</startTimeScope>"),
        ("<timeZoneID>20</timeZoneID>", "<timeZoneID>99</timeZoneID>"),
        ("<orderBy>STARTTIME</orderBy>", "<orderBy>FAVOURITE</orderBy>"),
        ("<timeZoneID>20</timeZoneID>", "<confID>abc</confID>"),
        ("<serv:maximumNum>50</serv:maximumNum>", "<serv:maximumNum>0</serv:maximumNum>"),
    ],
)
def test_bad_arguments(simulator: Any, old: str, new: str) -> None:
    body = probe.list_body(USAGE, extras=False)
    assert old in body
    document = probe.envelope([body.replace(old, new)], CTX)
    assert failure(simulator.url, document)[0] == codes.INVALID_ARGUMENT


def test_empty_results_and_pages_past_the_end_are_no_record_found(simulator: Any) -> None:
    far = datetime(2030, 1, 1, tzinfo=timezone.utc)
    empty = probe.envelope([probe.list_body(USAGE, start=far, end=far)], CTX)
    assert failure(simulator.url, empty) == (codes.NO_RECORDS, "Sorry, no record found")
    total = len(simulator.ground_truth("demo", "meeting_usage"))
    last = probe.envelope([probe.list_body(USAGE, start_from=total)], CTX)
    assert send(simulator.url, last)[0].returned == 1
    past = probe.envelope([probe.list_body(USAGE, start_from=total + 1)], CTX)
    assert failure(simulator.url, past)[0] == codes.NO_RECORDS


def test_preliminary_event_history_needs_a_filter(simulator: Any) -> None:
    event = by_name("event_sessions")
    unfiltered = probe.envelope([probe.list_body(event, preliminary=True)], CTX)
    assert failure(simulator.url, unfiltered)[0] == codes.PRELIMINARY_FILTER_REQUIRED
    scoped = probe.envelope([probe.list_body(event, preliminary=True, start=datetime(2026, 3, 1, tzinfo=timezone.utc))],
                            CTX)
    assert send(simulator.url, scoped)[0].result == "SUCCESS"
    # Meeting Center preliminary history has no such rule.
    usage = probe.envelope([probe.list_body(USAGE, preliminary=True)], CTX)
    assert send(simulator.url, usage)[0].result == "SUCCESS"
