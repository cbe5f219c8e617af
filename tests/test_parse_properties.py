"""Properties of exporter.records.parse: it never raises, and every value sent is recoverable.

Hypothesis builds pages for any dataset: declared columns (nested in their containers) with valid
values, garbage, out-of-range numbers, valid and impossible dates, empty elements and arbitrary
XML-safe text (non-BMP included), plus unknown elements.  Each value must come back either typed in
its column (by the rules an independent oracle below spells out) or raw in ``extra``, and the
counters must say exactly what went where.  The vectorised path must agree with the exact per-value
path, which runs when the zone has no key pyarrow can look up.
"""

from __future__ import annotations

import json
import math
import os
import re
import zoneinfo
from collections import Counter
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from exporter.model.dataset_spec import Column, Dataset
from exporter.model.datasets import DATASETS
from exporter.model.naming import column_name
from exporter.model.timezones import zoneinfo_for
from exporter.records.arrow_schema import arrow_schema
from exporter.records.parse import parse_records
from exporter.records.webex_time import local_to_utc, parse_webex_time
from exporter.records.xmlsafe import parse_xml

NS = "http://www.webex.com/schemas/2002/06/service/history"
ZONES = [zoneinfo_for(i) for i in (2, 4, 20, 55)]
# PARSE_EXAMPLES=2000 for a deeper search; the default keeps the whole parse suite well under 20 s.
EXAMPLES = int(os.environ.get("PARSE_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# XML 1.0 text that survives a round trip: no surrogates, no control characters except tab and
# newline (CR is normalised to LF by every XML parser), no unassigned code points.
xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn"), whitelist_characters="\t\n"), max_size=12
)
wire_digits = st.text(alphabet="0123456789-+ x._\t", max_size=22)


def _int_texts() -> st.SearchStrategy[str]:
    in_range = st.integers(-(2**63), 2**63 - 1)
    return st.one_of(
        in_range.map(str),
        st.tuples(st.sampled_from(["", " ", "\n", "+", " -"]), st.integers(0, 2**63 - 1)).map(
            lambda t: f"{t[0]}{t[1]}"
        ),
        st.integers(2**63, 2**70).map(str),
        wire_digits,
        xml_text,
    )


def _float_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.floats(allow_nan=False).map(repr),
        st.text(alphabet="0123456789.eE+- ", max_size=10),
        st.sampled_from(["INF", "-inf", "NaN", "Infinity", "1e400"]),
        xml_text,
    )


def _bool_texts() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["true", "false", "TRUE", "False", "1", "0", " true ", "yes", "2"]), xml_text)


def _time_texts() -> st.SearchStrategy[str]:
    def wire(moment: datetime, padded: bool) -> str:
        if padded:
            return moment.strftime("%m/%d/") + f"{moment.year:04d}" + moment.strftime(" %H:%M:%S")
        return f"{moment.month}/{moment.day}/{moment.year} {moment.hour}:{moment.minute}:{moment.second}"

    valid = st.builds(wire, st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)), st.booleans())
    near_dst = st.builds(
        wire,
        st.datetimes(datetime(2019, 3, 9), datetime(2019, 3, 11))
        | st.datetimes(datetime(2019, 11, 2), datetime(2019, 11, 4)),
        st.booleans(),
    )
    fields = st.tuples(*(st.integers(lo, hi) for lo, hi in [(0, 13), (0, 32), (0, 3000), (0, 25), (0, 61), (0, 61)]))
    any_fields = fields.map(lambda f: "{}/{}/{} {}:{}:{}".format(*f))
    return st.one_of(valid, near_dst, any_fields, st.text(alphabet="0123456789/: ", max_size=20), xml_text)


TEXTS = {
    "int": _int_texts(),
    "float": _float_texts(),
    "bool": _bool_texts(),
    "timestamp": _time_texts(),
    "str": xml_text,
}


def keyless_zone(zone: ZoneInfo) -> ZoneInfo:
    """The same rules without a key: pyarrow cannot look it up, so the parser's Python path runs."""
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / str(zone.key)
        if path.is_file():
            with path.open("rb") as file:
                return ZoneInfo.from_file(file)
    with resources.files("tzdata.zoneinfo").joinpath(str(zone.key)).open("rb") as file:
        return ZoneInfo.from_file(file)


def _declared_names(dataset: Dataset) -> set[str]:
    names = {column_name(c.element) for c in dataset.columns}
    return names | {column_name(c.parent) for c in dataset.columns if c.parent}


@st.composite
def pages(draw: st.DrawFn) -> tuple[Dataset, list[list[tuple[Column | str, str | None]]], ZoneInfo]:
    """A dataset, records as (column or unknown element name, text or None for empty), a zone."""
    dataset = draw(st.sampled_from(DATASETS))
    columns = [c for c in dataset.columns if c.type != "json"]
    declared = _declared_names(dataset)
    unknown_names = st.from_regex(r"[a-z][A-Za-z0-9]{0,8}", fullmatch=True).filter(
        lambda n: column_name(n) not in declared
    )
    records = []
    for _ in range(draw(st.integers(1, 5))):
        chosen = draw(st.lists(st.sampled_from(columns), unique=True, max_size=8))
        items: list[tuple[Column | str, str | None]] = []
        for column in chosen:
            text = draw(st.none() | TEXTS[column.type])
            items.append((column, text))
        for name in draw(st.lists(unknown_names, max_size=2, unique=True)):
            items.append((name, draw(st.none() | xml_text)))
        records.append(items)
    return dataset, records, draw(st.sampled_from(ZONES))


def _build(dataset: Dataset, records: list[list[tuple[Column | str, str | None]]]) -> list[etree._Element]:
    body = etree.Element(f"{{{NS}}}bodyContent", nsmap={"h": NS})
    for items in records:
        record = etree.SubElement(body, f"{{{NS}}}{dataset.record_element}")
        containers: dict[str, etree._Element] = {}
        for key, text in items:
            if isinstance(key, Column) and key.parent:
                if key.parent not in containers:
                    containers[key.parent] = etree.SubElement(record, f"{{{NS}}}{key.parent}")
                element = etree.SubElement(containers[key.parent], f"{{{NS}}}{key.element}")
            else:
                name = key.element if isinstance(key, Column) else key
                element = etree.SubElement(record, f"{{{NS}}}{name}")
            element.text = text
    return list(parse_xml(etree.tostring(body, encoding="UTF-8")))


# --------------------------------------------------------------------------------------------------
# The oracle: what each text must become (written independently of the parser's implementation)

BAD = object()


def _expect(column: Column, text: str | None, zone: ZoneInfo) -> tuple[Any, bool]:
    """(typed value or BAD, whether the raw text must also be in extra)."""
    if column.type == "str":
        return ("" if text is None else text), False
    if text is None or text.strip() == "":
        return None, False
    stripped = text.strip()
    if column.type == "int":
        if not re.fullmatch(r"[+-]?[0-9]+", stripped):
            return BAD, True
        value = int(stripped)
        return (value, False) if -(2**63) <= value < 2**63 else (BAD, True)
    if column.type == "float":
        if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity)|nan", stripped, re.I):
            return float(stripped), False
        return BAD, True
    if column.type == "bool":
        found = {"true": True, "false": False, "1": True, "0": False}.get(stripped.lower(), BAD)
        return found, found is BAD
    try:
        naive = parse_webex_time(text)
        moment = local_to_utc(naive, zone)
        local_again = moment.astimezone(zone).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return BAD, True
    return moment, local_again != naive  # a nonexistent local time keeps its value and its raw text


def _in_extra(row_extra: dict[str, Any], column: Column, text: str) -> bool:
    holder = row_extra.get(column.parent, {}) if column.parent else row_extra
    found = holder.get(column.element)
    return found == text or (isinstance(found, list) and text in found)


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with NaN replaced by a marker, so that equal tables compare equal."""
    return [{k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@SETTINGS
@given(pages())
def test_every_value_is_typed_or_kept_raw_and_counted(page_spec) -> None:
    dataset, records, zone = page_spec
    page = parse_records(dataset, _build(dataset, records), site="s", zone=zone)
    assert page.table.schema == arrow_schema(dataset)
    rows = page.table.to_pylist()
    assert len(rows) == len(records)

    bad: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    for items, row in zip(records, rows):
        row_extra = json.loads(row["extra"]) if row["extra"] is not None else {}
        assert row["extra"] is None or row_extra, "extra is null, not {}, when there is nothing extra"
        present = set()
        for key, text in items:
            if not isinstance(key, Column):
                unknown[key] += 1
                assert row_extra[key] == ("" if text is None else text)
                continue
            present.add(key.name)
            value, raw_kept = _expect(key, text, zone)
            if value is BAD:
                assert row[key.name] is None, (key.name, text, row[key.name])
            else:
                assert _same(row[key.name], value), (key.name, text, row[key.name], value)
            if raw_kept:
                bad[key.name] += 1
                assert _in_extra(row_extra, key, text), (key.name, text, row_extra)
        for column in dataset.columns:
            if column.name not in present:
                assert row[column.name] is None, column.name
    assert page.bad_values == bad
    assert page.unknown_elements == unknown
    assert all(r["site"] == "s" and r["_preliminary"] is False for r in rows)


@SETTINGS
@given(pages())
def test_vectorised_path_equals_exact_python_path(page_spec) -> None:
    dataset, records, zone = page_spec
    elements = _build(dataset, records)
    fast = parse_records(dataset, elements, site="s", zone=zone)
    slow = parse_records(dataset, elements, site="s", zone=keyless_zone(zone))
    assert _comparable(fast.table.to_pylist()) == _comparable(slow.table.to_pylist())
    assert (fast.bad_values, fast.unknown_elements, fast.ambiguous_times) == (
        slow.bad_values,
        slow.unknown_elements,
        slow.ambiguous_times,
    )


@settings(max_examples=max(EXAMPLES // 2, 10), deadline=None)
@given(st.lists(_time_texts(), min_size=1, max_size=40), st.sampled_from(ZONES))
def test_long_time_columns_match_the_oracle(texts: list[str], zone: ZoneInfo) -> None:
    dataset = next(d for d in DATASETS if d.name == "access_anywhere")
    column = dataset.column_by_name["start_time"]
    records = [[(column, text)] for text in texts]
    page = parse_records(dataset, _build(dataset, records), site="s", zone=zone)
    for text, got in zip(texts, page.table.column("start_time").to_pylist()):
        value, _ = _expect(column, text, zone)
        assert got == (None if value is BAD else value), text
