"""Typed parsing: Webex record elements -> one Arrow table in the dataset's declared schema.

``parse_records`` turns the record elements of one response page (``history:meetingAttendeeHistory``,
``ep:session``, ..., in any namespace or none) into a table of exactly ``arrow_schema(dataset)``.
Nothing is lost and nothing raises for bad data:

* Children are matched by local name through :func:`~exporter.model.naming.column_name`, so ``MeetingUUID``
  and ``meetingUUID`` both land in ``meeting_uuid`` and the schema's ``totalCallInTolllfreeMinutes``
  lands in ``total_call_in_tollfree_minutes``.  Children of declared containers (``trackingCode``,
  ``assistService``, ``source``) are flattened into their columns; a ``json`` column (``regQandA``,
  repeated) becomes a JSON list with one object per occurrence (``[{"regQ": "..", "regA": ".."}]``).
* Unknown elements (every API release adds some) are kept in ``extra``, a JSON object keyed by element
  local name (nested elements become nested objects, attributes ``"@name"``, repeated names lists)
  and counted in ``ParsedPage.unknown_elements``.
* A value that does not fit its column's type becomes null there, is kept raw (as sent) in ``extra``
  under its element name and is counted in ``ParsedPage.bad_values``.  So is a declared leaf that
  arrives as a structure (element children), and a repeated single-valued element (first one wins).

Typing rules (decisions, tested in ``tests/test_parse.py``):

* Missing element -> null.  Empty element (``<a/>``, ``<a></a>``): ``""`` in a ``str`` column, null in
  a typed one (not a bad value).  Whitespace-only text counts as empty for typed columns; ``str``
  values are kept exactly as sent.
* ``int``: optional sign and ASCII decimal digits, surrounding white space tolerated, must fit int64.
  Hex, ``1_000``, ``1.0`` and non-ASCII digits are bad values.
* ``float``: decimal with optional exponent, or ``INF``/``-INF``/``NaN`` (any case); white space tolerated.
* ``bool``: ``true``/``false``/``1``/``0`` (XML Schema's boolean lexical space), any case, white space
  tolerated.
* ``timestamp``: ``MM/DD/YYYY HH:MM:SS`` 24-hour, fields may be unpadded (``9/29/2019 2:4:3``), calendar
  checked (no Feb 30, no second 60).  It is wall time in the request's ``zone`` and becomes UTC with
  that zone's rules for that date.  An ambiguous wall time (the repeated hour when clocks fall back)
  takes the occurrence the row's start, end and ``duration`` agree on (``fall_back.py``); when they
  cannot tell (both inside that hour, or no duration) it means its *first* occurrence, i.e. the
  earlier instant (Python's ``fold=0``), a valid value counted in ``ParsedPage.ambiguous_times``.  A nonexistent wall time (inside the spring-forward
  gap) cannot come from a correct clock: it is shifted forward by the gap (read with the offset in
  force before the gap, ``02:30`` -> ``03:30`` daylight time, again ``fold=0``), counted in
  ``bad_values`` and, because the column cannot give the text back, also kept raw in ``extra``.
  Year 1-9999; a value whose UTC instant leaves that range is a bad value.

Attributes of declared elements (``xsi:nil``) are ignored; mixed content in a declared leaf
(``<a>x<b/>y</a>``) keeps only its leading text.

Speed (see ``bench/parse_bench.py``): one Python pass over the records groups them by their tuple
of child tags (a page's records nearly always share one) and collects child texts with C-level
maps, so no Python code runs per child; columns are strided slices of that list.  Each column is
then typed by vectorised ``pyarrow.compute`` kernels for the values a cheap check vouches for, and
by the exact per-value Python rules (the definition) only for the rest.

Where each part lives: :mod:`~exporter.records.tag_plan` (which child feeds which column, cached),
:mod:`~exporter.records.record_page` (the pass over a page and the assembled table),
:mod:`~exporter.records.converters` (column typing, fast and exact paths),
:mod:`~exporter.records.value_rules` (the exact single-value rules),
:mod:`~exporter.records.webex_time` (wall times), :mod:`~exporter.records.element_json` (``extra``),
:mod:`~exporter.records.arrow_schema` (the table's schema).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pyarrow as pa
from lxml import etree

from ..model.dataset_spec import Dataset
from .record_page import RecordPage
from .tag_plan import plan_for

__all__ = ["ParsedPage", "parse_records"]


@dataclass(slots=True)
class ParsedPage:
    """One page of records as a typed table plus what did not fit.

    ``unknown_elements``: element local name (``parent/child`` inside a declared container) ->
    occurrences.  ``bad_values``: column name -> values that did not fit its type (kept raw in
    ``extra``).  ``ambiguous_times``: column name -> fall-back-hour wall times that no duration
    settled, read as their first occurrence (valid values, reported for visibility only).
    """

    table: pa.Table
    unknown_elements: Counter[str] = field(default_factory=Counter)
    bad_values: Counter[str] = field(default_factory=Counter)
    ambiguous_times: Counter[str] = field(default_factory=Counter)


def parse_records(
    dataset: Dataset,
    records: Sequence[etree._Element],
    *,
    site: str,
    zone: ZoneInfo,
    preliminary: bool = False,
) -> ParsedPage:
    """Type one page of record elements into a table of exactly ``arrow_schema(dataset)``.

    ``zone`` is the zone the response's times are in (the request's ``timeZoneID`` or the site's
    default, see docs/contracts.md); ``site`` and ``preliminary`` fill the lineage columns.  Never
    raises for bad data: see the module docstring for what happens to unknown and bad values.
    """
    page = RecordPage(plan_for(dataset), records, zone)
    table = page.build(preliminary, site)
    return ParsedPage(table, page.unknown, page.bad, page.ambiguous)
