"""exporter.webex.rest.links: Link headers, the next URL, its repairs, and the origin check."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from exporter.errors import EndpointError, ForeignLinkError
from exporter.webex.rest.links import check_same_origin, next_link, parse_link_header, repair_next_url, same_origin

BASE = "https://webexapis.com/v1"
FIRST = [("siteUrl", "acme.webex.com"), ("from", "2026-03-01T00:00:00Z"), ("to", "2026-03-02T00:00:00Z"),
         ("max", "100"), ("serviceType", "MeetingCenter")]


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# ------------------------------------------------------------------------------------ parsing


def test_the_basics_page_example() -> None:
    header = ('<https://webexapis.com/v1/people?displayName=Harold&max=10&before&after=Y2lzY29zcGFyazovL3VzL1BFT1BMRS83'
              'MTZlOWQxYy1jYTQ0LTRmZWQtOGZjYS05ZGY0YjRmNDE3ZjU>; rel="next"')
    assert next_link(header) == header[1 : header.index(">")]


def test_several_links_in_one_header_and_rel_in_any_form() -> None:
    header = ('<https://x/v1/a?p=1>; rel="first", <https://x/v1/a?p=3>; rel=prev,'
              ' <https://x/v1/a?p=5>;rel="NEXT"')
    links = parse_link_header(header)
    assert [link.url for link in links] == ["https://x/v1/a?p=1", "https://x/v1/a?p=3", "https://x/v1/a?p=5"]
    assert [link.rels for link in links] == [{"first"}, {"prev"}, {"next"}]
    assert next_link(header) == "https://x/v1/a?p=5"


def test_commas_and_semicolons_inside_urls_and_quoted_values_do_not_split_links() -> None:
    header = ('<https://x/v1/a?names=a,b;c&max=10>; title="one, two; three"; rel="next", '
              '<https://x/v1/a?names=d,e>; rel="last"')
    links = parse_link_header(header)
    assert len(links) == 2
    assert links[0].url == "https://x/v1/a?names=a,b;c&max=10"
    assert dict(links[0].params)["title"] == "one, two; three"
    assert next_link(header) == "https://x/v1/a?names=a,b;c&max=10"


def test_several_header_values_and_a_rel_with_several_types() -> None:
    assert next_link(['<https://x/v1/a?p=1>; rel="first"', '<https://x/v1/a?p=2>; rel="next last"']) == (
        "https://x/v1/a?p=2"
    )


@pytest.mark.parametrize(
    "header",
    [None, "", '<https://x/v1/a?p=1>; rel="prev"', "garbage, more garbage", '<https://x/v1/a?p=2', "rel=next"],
)
def test_no_next_link(header: str | None) -> None:
    assert next_link(header) is None


def test_garbage_before_a_good_link_is_skipped() -> None:
    assert next_link('nonsense; rel="next", <https://x/v1/a?p=2>; rel="next"') == "https://x/v1/a?p=2"


def test_escaped_quotes_in_a_quoted_value() -> None:
    links = parse_link_header(r'<https://x/v1/a>; title="say \"hi\", then go"; rel="next"')
    assert dict(links[0].params)["title"] == 'say "hi", then go'
    assert links[0].rels == {"next"}


# ------------------------------------------------------------------------------------ repairs


def test_a_complete_next_url_is_followed_verbatim() -> None:
    nxt = ("https://webexapis.com/v1/meetingReports/usage?siteUrl=acme.webex.com&from=2026-03-01T00%3A00%3A00Z&"
           "to=2026-03-02T00%3A00%3A00Z&max=100&serviceType=MeetingCenter&cursor=ab+c%2Fd==")
    assert repair_next_url(nxt, request_url=BASE + "/meetingReports/usage", base_url=BASE, first_params=FIRST) == nxt


def test_max_null_is_stripped_and_max_put_back() -> None:
    nxt = ("https://webexapis.com/v1/meetingReports/usage?max=null&cursor=abc&siteUrl=acme.webex.com&from=x&to=y"
           "&serviceType=MeetingCenter")
    fixed = repair_next_url(nxt, request_url=nxt, base_url=BASE, first_params=FIRST)
    pairs = query(fixed)
    assert ("max", "null") not in pairs and ("max", "100") in pairs
    assert ("from", "x") in pairs and ("to", "y") in pairs  # the server's own values are kept


def test_dropped_parameters_are_added_back_and_the_server_cursor_is_kept_byte_for_byte() -> None:
    nxt = "https://webexapis.com/v1/meetingReports/usage?cursor=ab+c%2Fd%3D%3D&max=100"
    fixed = repair_next_url(nxt, request_url=nxt, base_url=BASE, first_params=FIRST)
    assert fixed.startswith(nxt + "&")
    assert dict(query(fixed)) == {"cursor": "ab c/d==", "max": "100", "siteUrl": "acme.webex.com",
                                  "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z",
                                  "serviceType": "MeetingCenter"}


@pytest.mark.parametrize("name", ["meetingId", "recordingId", "meetingType", "state", "hostEmail"])
def test_each_known_parameter_is_restored(name: str) -> None:
    first = [(name, "value-1"), ("max", "10")]
    fixed = repair_next_url("https://webexapis.com/v1/x?offset=10&max=10", request_url=BASE + "/x", base_url=BASE,
                            first_params=first)
    assert (name, "value-1") in query(fixed)


def test_a_relative_next_link_is_resolved_against_the_page_that_carried_it() -> None:
    fixed = repair_next_url("/v1/meetings?offset=100", request_url=BASE + "/meetings?siteUrl=a", base_url=BASE,
                            first_params=[("siteUrl", "a")])
    assert fixed == "https://webexapis.com/v1/meetings?offset=100&siteUrl=a"


# ------------------------------------------------------------------------------------ origin


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/v1/meetings?offset=100",
        "http://webexapis.com/v1/meetings?offset=100",  # another scheme
        "https://webexapis.com:8443/v1/meetings?offset=100",  # another port
        "https://webexapis.com.evil.example/v1/meetings",
        "https://user:pw@evil.example/v1/meetings?token=secret-in-query",
        "//evil.example/v1/meetings",  # scheme-relative
        "https://webexapis.com:notaport/v1/meetings",
    ],
)
def test_a_next_link_to_another_origin_is_refused(target: str) -> None:
    with pytest.raises(ForeignLinkError) as caught:
        repair_next_url(target, request_url=BASE + "/meetings", base_url=BASE, first_params=FIRST)
    assert isinstance(caught.value, EndpointError)
    message = str(caught.value)
    assert "secret-in-query" not in message and "pw@" not in message
    assert "not followed" in message


def test_default_ports_and_case_count_as_the_same_origin() -> None:
    assert same_origin("https://WEBEXAPIS.com:443/v1/x", BASE)
    assert same_origin("http://127.0.0.1:8080/v1/x", "http://127.0.0.1:8080/v1")
    assert not same_origin("http://127.0.0.1:8081/v1/x", "http://127.0.0.1:8080/v1")
    check_same_origin("https://webexapis.com/v1/x", BASE)  # no raise
