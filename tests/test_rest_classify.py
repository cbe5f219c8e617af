"""exporter.webex.rest.classify: every kind of REST answer -> what the client does next."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from exporter.errors import CertificateError, DamagedResponseError, ParseError, TransportError
from exporter.webex.rest.classify import RestOutcome, classify_rest, decode_json, error_details

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
ITEMS = json.dumps({"items": [{"id": "a"}]}).encode()


def webex_error(message: str, tracking: str = "ROUTER_abc-123") -> bytes:
    return json.dumps({"message": message, "errors": [{"description": message + " (detail)"}],
                       "trackingId": tracking}).encode()


def test_a_page_with_items_is_ok_and_carries_its_document() -> None:
    verdict = classify_rest(200, {}, ITEMS)
    assert verdict.outcome is RestOutcome.OK and verdict.document == {"items": [{"id": "a"}]}


@pytest.mark.parametrize("body", [b'{"message": "hi"}', b"[1, 2]", b'{"items": {"a": 1}}'])
def test_a_2xx_without_an_items_list_is_unreadable(body: bytes) -> None:
    assert classify_rest(200, {}, body).outcome is RestOutcome.UNREADABLE
    assert classify_rest(200, {}, body, expect_items=False).outcome is RestOutcome.OK


@pytest.mark.parametrize("status, outcome", [(429, RestOutcome.THROTTLED), (423, RestOutcome.THROTTLED)])
def test_throttling_honours_retry_after_seconds_and_http_dates(status: int, outcome: RestOutcome) -> None:
    verdict = classify_rest(status, {"Retry-After": "42"}, b"")
    assert verdict.outcome is outcome and verdict.delay == 42 and verdict.retry_after == 42
    date = (NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    verdict = classify_rest(status, {"retry-after": date}, b"", now=NOW)
    assert verdict.delay == pytest.approx(90)


def test_throttling_without_retry_after_uses_the_cool_down_and_says_the_server_named_none() -> None:
    verdict = classify_rest(429, {}, b"", cooldown_seconds=15)
    assert verdict.outcome is RestOutcome.THROTTLED and verdict.delay == 15 and verdict.retry_after is None


def test_a_retry_after_above_the_cap_stops_the_site_instead_of_sleeping() -> None:
    verdict = classify_rest(429, {"Retry-After": "3600"}, b"", max_retry_after_seconds=900)
    assert verdict.outcome is RestOutcome.HOLD and verdict.delay == 3600
    assert classify_rest(503, {"Retry-After": "3600"}, b"", max_retry_after_seconds=900).outcome is RestOutcome.HOLD
    assert classify_rest(429, {"Retry-After": "900"}, b"", max_retry_after_seconds=900).outcome is RestOutcome.THROTTLED


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_retried_and_504_halves_the_page(status: int) -> None:
    verdict = classify_rest(status, {"Retry-After": "2"}, webex_error("busy"))
    assert verdict.outcome is RestOutcome.RETRY and verdict.delay == 2
    assert verdict.halve_page is (status == 504)


def test_transport_failures_are_retried_and_certificate_failures_are_not() -> None:
    assert classify_rest(None, None, TransportError("reset")).outcome is RestOutcome.RETRY
    verdict = classify_rest(None, None, CertificateError("TLS: certificate verify failed"))
    assert verdict.outcome is RestOutcome.ENDPOINT and verdict.code == "tls"


@pytest.mark.parametrize(
    "body",
    [b'{"items": [{"id": "a"}, {"id": "b"', b'{"items": [', b"", b'{"items": [1, 2,, 3]}', b'{"items": ["\xff"]}'],
)
def test_json_cut_short_or_garbled_after_a_good_start_is_resent(body: bytes) -> None:
    assert classify_rest(200, {}, body).outcome is RestOutcome.RETRY
    assert classify_rest(200, {}, DamagedResponseError("corrupt gzip")).outcome is RestOutcome.RETRY


@pytest.mark.parametrize("body", [b"<html><body>Gateway</body></html>", b"OK", b"\x1f\x8b\x08garbage"])
def test_an_answer_that_is_not_json_from_its_first_byte_is_unreadable(body: bytes) -> None:
    assert classify_rest(200, {}, body).outcome is RestOutcome.UNREADABLE


def test_an_oversized_answer_is_unreadable_not_retried() -> None:
    assert classify_rest(200, {}, ParseError("answer larger than 65536 bytes")).outcome is RestOutcome.UNREADABLE


def test_deep_nesting_is_unreadable() -> None:
    assert decode_json(b"[" * 100_000 + b"]" * 100_000)[0] == "unreadable"


def test_401_means_refresh_once() -> None:
    verdict = classify_rest(401, {}, webex_error("The request requires a valid access token"))
    assert verdict.outcome is RestOutcome.EXPIRED


def test_403_stops_the_site_with_webex_message_and_tracking_id() -> None:
    verdict = classify_rest(403, {}, webex_error("Missing scope meeting:admin_config_read", "TRK-9"))
    assert verdict.outcome is RestOutcome.FORBIDDEN
    text = verdict.describe()
    assert "Missing scope meeting:admin_config_read" in text and "trackingId TRK-9" in text and "http403" in text


def test_400_fails_the_window_with_the_message() -> None:
    verdict = classify_rest(400, {}, webex_error("from cannot be earlier than 90 days ago"))
    assert verdict.outcome is RestOutcome.BAD_REQUEST
    assert "from cannot be earlier than 90 days ago" in verdict.message
    assert classify_rest(422, {}, b"").outcome is RestOutcome.BAD_REQUEST


@pytest.mark.parametrize("status, outcome", [(404, RestOutcome.NOT_FOUND), (410, RestOutcome.GONE),
                                             (501, RestOutcome.GONE)])
def test_not_found_and_gone(status: int, outcome: RestOutcome) -> None:
    assert classify_rest(status, {}, webex_error("The requested resource could not be found.")).outcome is outcome


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_endpoint_fatal_and_name_the_target_without_secrets(status: int) -> None:
    verdict = classify_rest(status, {"Location": "https://user:pw@elsewhere.example/v1/x?access_token=leak"}, b"")
    assert verdict.outcome is RestOutcome.ENDPOINT
    assert "elsewhere.example/v1/x" in verdict.message and "leak" not in verdict.message and "pw" not in verdict.message


def test_451_another_region_is_endpoint_fatal() -> None:
    verdict = classify_rest(451, {}, webex_error("use analytics-eu.webexapis.com"))
    assert verdict.outcome is RestOutcome.ENDPOINT and "analytics-eu" in verdict.message


def test_tracking_id_from_the_header_when_the_body_has_none() -> None:
    message, tracking = error_details(b"<html>oops</html>", {"TrackingID": "ROUTER_hdr"})
    assert message == "" and tracking == "ROUTER_hdr"
    message, tracking = error_details(b'{"error": "invalid_grant", "error_description": "bad token"}', {})
    assert message == "bad token; invalid_grant" and tracking == ""


def test_server_text_is_clipped() -> None:
    verdict = classify_rest(400, {}, webex_error("x" * 5000))
    assert len(verdict.message) <= 300
