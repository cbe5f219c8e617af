"""Property-based fuzzing of what comes from outside: response envelopes and config files.

Whatever the bytes or the TOML, the answer is a result or *our* specific error (ParseError,
ConfigError) with a message; never another exception, never a hang.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import parse_settings
from exporter.errors import ConfigError, ParseError
from exporter.model.datasets import by_name
from exporter.model.timezones import zoneinfo_for
from exporter.records.parse import parse_records
from exporter.webex.protocol import parse_response

ROOT = Path(__file__).resolve().parents[1]
SEED = (ROOT / "tests/fixtures/seeds/lstaccessanywherehistory_response.xml").read_bytes()
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse(data: bytes):
    try:
        answers = parse_response(data, record_elements=["accessAnyWhereInfo"])
    except ParseError as exc:
        assert str(exc)
        return None
    for answer in answers:
        parse_records(by_name("access_anywhere"), answer.records, site="s", zone=zoneinfo_for(20))
    return answers


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(SEED)))
def test_truncated_responses(cut):
    _parse(SEED[:cut])


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_bytes(flips):
    data = bytearray(SEED)
    for position, value in flips:
        data[position] = value
    _parse(bytes(data))


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@FUZZ
@given(total=_TEXT, returned=_TEXT, duration=_TEXT, start=_TEXT, junk=st.lists(
    st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True), _TEXT), max_size=5))
def test_wrong_types_unknown_elements_and_bad_dates(total, returned, duration, start, junk):
    from xml.sax.saxutils import escape

    extra = "".join(f"<history:{name}>{escape(text)}</history:{name}>" for name, text in junk)
    data = SEED.decode("utf-8")
    data = data.replace("<serv:total>775</serv:total>", f"<serv:total>{escape(total)}</serv:total>")
    data = data.replace("<serv:returned>10</serv:returned>", f"<serv:returned>{escape(returned)}</serv:returned>")
    data = data.replace("<history:duration>5</history:duration>", f"<history:duration>{escape(duration)}</history:duration>{extra}")
    data = data.replace("11/29/2019 03:05:44", escape(start))
    answers = _parse(data.encode("utf-8"))
    if answers:
        parsed = parse_records(by_name("access_anywhere"), answers[0].records, site="s", zone=zoneinfo_for(20))
        assert parsed.table.num_rows == 1  # the row is kept whatever its values


def test_huge_field_is_kept_not_fatal():
    data = SEED.replace(b"<history:userName>dean</history:userName>", b"<history:userName>" + b"x" * 5_000_000 + b"</history:userName>")
    (answer,) = parse_response(data, record_elements=["accessAnyWhereInfo"])
    parsed = parse_records(by_name("access_anywhere"), answer.records, site="s", zone=zoneinfo_for(20))
    assert len(parsed.table.column("user_name")[0].as_py()) == 5_000_000


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
SHIPPED = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))


@FUZZ
@given(section=st.sampled_from(sorted(SHIPPED)), key=_TEXT, value=_VALUES)
def test_bad_config_values_give_config_errors(section, key, value):
    import copy

    data = copy.deepcopy(SHIPPED)
    target = data[section][0] if isinstance(data[section], list) else data[section]
    target[key or "x"] = value
    try:
        parse_settings(data, env={"WEBEX_SIM_PASSWORD": "p"})
    except ConfigError as exc:
        assert exc.problems and all(":" in p for p in exc.problems)


@FUZZ
@given(document=st.dictionaries(_TEXT, _VALUES, max_size=6))
def test_arbitrary_documents_give_config_errors(document):
    try:
        parse_settings(document, env={})
    except ConfigError as exc:
        assert exc.problems
