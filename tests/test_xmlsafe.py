"""Hardened XML: bombs, external entities and junk are refused with a clear ParseError."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.errors import ParseError
from exporter.records.xmlsafe import parse_xml

SEEDS = Path(__file__).parent / "fixtures" / "seeds"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<serv:message xmlns:serv="http://www.webex.com/schemas/2002/06/service">&lol3;</serv:message>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<message>&xxe;</message>"""

NETWORK_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/secret">]>
<message>&xxe;</message>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY, NETWORK_ENTITY], ids=["bomb", "file", "network"])
def test_doctype_and_entities_are_refused(payload):
    with pytest.raises(ParseError, match="DOCTYPE"):
        parse_xml(payload)


def test_no_entity_is_ever_expanded_even_past_the_prolog_check():
    # An entity reference without a DOCTYPE is simply not well-formed: never resolved.
    with pytest.raises(ParseError, match="not well-formed"):
        parse_xml(b"<message>&xxe;</message>")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"<message><unclosed></message>", "not well-formed"),
        (b"<?xml version='1.0' encoding='EBCDIC-XYZ'?><m/>", "not well-formed|cannot be decoded"),
        (b"<m>" + b"x" * 2000 + b"</m>", "over the 1000-byte limit"),
    ],
)
def test_junk_gets_a_specific_error(payload, message):
    with pytest.raises(ParseError, match=message):
        parse_xml(payload, max_bytes=1000)


def test_declared_iso_8859_1_is_honoured():
    root = parse_xml('<?xml version="1.0" encoding="ISO-8859-1"?><m>Zoë &#22296;</m>'.encode("iso-8859-1"))
    assert root.text == "Zoë 團"


@pytest.mark.parametrize("name", sorted(p.name for p in SEEDS.glob("*.xml")))
def test_the_seed_samples_parse_as_they_are(name):
    # The seed documents indent with U+00A0 inside tags; repaired there, text content untouched.
    root = parse_xml((SEEDS / name).read_bytes())
    assert root.tag.endswith("}message")


def test_nbsp_in_text_content_is_kept():
    root = parse_xml('<m\u00a0a="1"><n>a\u00a0b</n></m>'.encode())
    assert root[0].text == "a\u00a0b"
