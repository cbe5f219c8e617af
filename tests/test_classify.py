"""classify(): every outcome from a table; backoff and Retry-After."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.errors import CertificateError, DamagedResponseError, ParseError, TransportError
from exporter.model import webex_codes as codes
from exporter.webex.backoff import backoff_ceiling, backoff_delay, parse_retry_after
from exporter.webex.classify import CodeTable, Outcome, classify
from exporter.webex.protocol import BodyResponse

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)


def ok(gsb: str = "PRIMARY") -> BodyResponse:
    return BodyResponse(result="SUCCESS", gsb_status=gsb, total=3, returned=3, start_from=1)


def fail(code: str, reason: str = "text that must not matter", gsb: str = "PRIMARY") -> BodyResponse:
    return BodyResponse(result="FAILURE", reason=reason, exception_id=code, gsb_status=gsb)


# (status, headers, body) -> (outcome, code, delay, limit); cooldown 60 s, GSB pause 300 s.
CASES = [
    ("success", 200, {}, ok(), Outcome.OK, "", None, None),
    ("empty list", 200, {}, fail(codes.NO_RECORDS, "Sorry, no record found"), Outcome.EMPTY, "000015", None, None),
    ("000045", 200, {}, fail(codes.RATE_LIMITED), Outcome.THROTTLED, "000045", 60.0, None),
    ("000045 + Retry-After", 200, {"Retry-After": "7"}, fail(codes.RATE_LIMITED), Outcome.THROTTLED, "000045", 7.0,
     None),
    ("http 429 Retry-After", 429, {"Retry-After": "3"}, None, Outcome.THROTTLED, "http429", 3.0, None),
    ("http 429 bare", 429, {}, None, Outcome.THROTTLED, "http429", 60.0, None),
    ("http 403", 403, {}, None, Outcome.THROTTLED, "http403", 60.0, None),
    ("http 503", 503, {}, None, Outcome.RETRY, "http503", None, None),
    ("http 500 Retry-After", 500, {"Retry-After": "2"}, None, Outcome.RETRY, "http500", 2.0, None),
    ("http 408", 408, {}, None, Outcome.RETRY, "http408", None, None),
    ("reset", None, {}, TransportError("ServerDisconnectedError"), Outcome.RETRY, "transport", None, None),
    ("truncated", 200, {}, DamagedResponseError("cut short"), Outcome.RETRY, "parse", None, None),
    # Not XML, a DTD, a bomb: the same bytes would come back, so the window fails at once.
    ("unreadable", 200, {}, ParseError("not XML from its first bytes"), Outcome.UNREADABLE, "parse", None, None),
    ("tls verify", None, {}, CertificateError("TLS: certificate verify failed"), Outcome.ENDPOINT_FATAL, "tls", None,
     None),
    ("redirect", 307, {"Location": "https://u:p@evil.example:8443/x?ticket=t"}, None, Outcome.ENDPOINT_FATAL,
     "http307", None, None),
    ("http 302 Retry-After", 302, {"Retry-After": "5"}, None, Outcome.ENDPOINT_FATAL, "http302", None, None),
    ("no result", 200, {}, BodyResponse(result=""), Outcome.RETRY, "parse", None, None),
    ("nothing parsed", 200, {}, None, Outcome.RETRY, "parse", None, None),
    ("gsb backup success", 200, {}, ok("BACKUP"), Outcome.PAUSE, "gsb_backup", 300.0, None),
    ("gsb backup empty", 200, {}, fail(codes.NO_RECORDS, gsb="BACKUP"), Outcome.PAUSE, "000015", 300.0, None),
    ("bad password", 200, {}, fail(codes.BAD_PASSWORD), Outcome.AUTH_FATAL, "030002", None, None),
    ("user not found", 200, {}, fail(codes.USER_NOT_FOUND), Outcome.AUTH_FATAL, "030001", None, None),
    ("token invalid", 200, {}, fail(codes.TOKEN_INVALID), Outcome.AUTH_FATAL, "030004", None, None),
    ("locked", 200, {}, fail(codes.ACCOUNT_LOCKED), Outcome.AUTH_FATAL, "030005", None, None),
    ("auth beats backup", 200, {}, fail(codes.BAD_PASSWORD, gsb="BACKUP"), Outcome.AUTH_FATAL, "030002", None, None),
    ("http 401", 401, {}, None, Outcome.AUTH_FATAL, "http401", None, None),
    ("ticket expired", 200, {}, fail(codes.TICKET_EXPIRED), Outcome.REAUTH, "030003", None, None),
    ("000053", 200, {}, fail(codes.BODY_CONTENT_LIMIT, "BodyContent count in request must be less than 6"),
     Outcome.BODYCONTENT_LIMIT, "000053", None, 5),
    ("000053 unreadable", 200, {}, fail(codes.BODY_CONTENT_LIMIT, "too many"), Outcome.BODYCONTENT_LIMIT, "000053",
     None, None),
    # The seed documents' zh-TW reason: the number is read whatever the language.
    ("000053 zh-TW", 200, {}, fail(codes.BODY_CONTENT_LIMIT, "請求中的 BodyContent 計數必須小於 11"),
     Outcome.BODYCONTENT_LIMIT, "000053", None, 10),
    ("000053 two numbers", 200, {}, fail(codes.BODY_CONTENT_LIMIT, "BodyContent 12 ist mehr als 11"),
     Outcome.BODYCONTENT_LIMIT, "000053", None, None),
    ("retired operation", 200, {}, fail(codes.OPERATION_RETIRED, "This API has been retired."), Outcome.RETIRED,
     "000080", None, None),
    ("other code", 200, {}, fail(codes.INVALID_ARGUMENT), Outcome.WINDOW_FATAL, "000002", None, None),
    ("preliminary filter", 200, {}, fail(codes.PRELIMINARY_FILTER_REQUIRED), Outcome.WINDOW_FATAL, "000047", None,
     None),
    ("http 404", 404, {}, None, Outcome.WINDOW_FATAL, "http404", None, None),
]


@pytest.mark.parametrize("name, status, headers, body, outcome, code, delay, limit", CASES, ids=[c[0] for c in CASES])
def test_classify(name, status, headers, body, outcome, code, delay, limit) -> None:  # type: ignore[no-untyped-def]
    verdict = classify(status, headers, body, cooldown_seconds=60.0, gsb_pause_seconds=300.0, now=NOW)
    assert (verdict.outcome, verdict.code, verdict.delay, verdict.limit) == (outcome, code, delay, limit)


def test_a_redirect_names_its_target_without_userinfo_or_query() -> None:
    verdict = classify(308, {"Location": "https://u:secret@evil.example:8443/x/y?ticket=t#f"}, None)
    assert verdict.reason == "HTTP 308 redirect to https://evil.example:8443/x/y"
    assert classify(301, {}, None).reason == "HTTP 301 redirect to (no Location header)"


def test_the_servers_own_wait_is_kept_apart_from_our_cooldown() -> None:
    assert classify(429, {"Retry-After": "100000"}, None).retry_after == 100000.0
    assert classify(429, {}, None, cooldown_seconds=60.0).retry_after is None
    assert classify(503, {"Retry-After": "30"}, None).retry_after == 30.0


def test_every_outcome_is_covered_by_the_table() -> None:
    assert {case[4] for case in CASES} == set(Outcome)


def test_reason_text_never_decides() -> None:
    """The same code with misleading English gives the same verdict."""
    for reason in ("Sorry, no record found", "API Rate Limit Reached", "Incorrect user or password", ""):
        assert classify(200, {}, fail(codes.INVALID_ARGUMENT, reason)).outcome is Outcome.WINDOW_FATAL
        assert classify(200, {}, fail(codes.NO_RECORDS, reason)).outcome is Outcome.EMPTY


def test_a_site_can_extend_the_code_table() -> None:
    table = CodeTable(throttled=frozenset({"000045", "999045"}))
    assert classify(200, {}, fail("999045"), codes=table, cooldown_seconds=5).delay == 5
    assert classify(200, {}, fail("999045")).outcome is Outcome.WINDOW_FATAL


def test_retry_after_http_date() -> None:
    header = {"Retry-After": "Fri, 20 Nov 2026 12:00:30 GMT"}
    verdict = classify(429, header, None, now=NOW)
    assert verdict.outcome is Outcome.THROTTLED and verdict.delay == 30.0


@pytest.mark.parametrize(
    "value, expected",
    [(None, None), ("", None), ("  12 ", 12.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None), ("inf", None),
     ("nan", None), ("Fri, 20 Nov 2026 11:00:00 GMT", 0.0), ("Fri, 20 Nov 2026 12:01:00 GMT", 60.0)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_backoff_is_exponential_capped_and_fully_jittered() -> None:
    assert [backoff_ceiling(a, base=0.5, cap=60) for a in (1, 2, 3, 4, 8, 9, 500)] == [0.5, 1, 2, 4, 60, 60, 60]
    rng = random.Random(7)
    draws = [backoff_delay(3, base=0.5, cap=60, rng=rng) for _ in range(2000)]
    assert 0 <= min(draws) < 0.1 and 1.9 < max(draws) <= 2.0  # full jitter: the whole [0, 2] range
    with pytest.raises(ValueError):
        backoff_ceiling(0, base=1, cap=1)


@given(attempt=st.integers(1, 10_000), base=st.floats(0, 100), cap=st.floats(0, 3600))
def test_backoff_never_exceeds_its_cap(attempt: int, base: float, cap: float) -> None:
    assert 0 <= backoff_delay(attempt, base=base, cap=cap, rng=random.Random(attempt)) <= cap


def test_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after((NOW - timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT"), now=NOW) == 0.0
