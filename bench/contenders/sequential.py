"""Baseline 2: a sequential pager that works the way the Splunk add-on does.

Modelled on ``splunk/ta-cisco-webex-meetings-add-on-for-splunk`` (``bin/input_module_history_service.py``,
``bin/utils/webex_common_functions.py``, ``bin/utils/xml_payload_format.py``); see
../shared/webex-xml-api.md sections 4 and 8:

* one request at a time over ``requests`` (keep-alive off: ``Connection: close``), with urllib3's
  ``Retry(total=10, backoff_factor=1)`` mounted -- it retries connection errors; it does not
  retry a POST whose response was read, and it never looks inside a 200 body;
* the range is sliced into 1-day slices (``get_slice_time``: inclusive ends, ``start + 86399 s``);
* per slice: ``startFrom`` = 1, ``maximumNum`` = 500, next ``startFrom`` += ``returned``, stop when a
  page returns fewer than 500 (``while records == limit``);
* a response is parsed with ElementTree (``iterparse``), namespaces stripped, turned into nested
  dicts (``etree_to_dict``), and each record is written as one JSON line (the add-on hands
  ``json.dumps(event)`` to Splunk; we append it to a file);
* ``result`` FAILURE with reason "no record found" counts as 0 records; any other FAILURE (a
  throttle, 000045, included) is logged and ends the slice -- the rest of that slice is never
  fetched, which is how the add-on loses data; an exception (HTTP error page, broken XML) aborts
  the whole run, as it does in the add-on.

Differences, on purpose: the request carries the registry's time scope and extras (the add-on
filters history on ``endTimeScope`` and sends no ``inclAudioOnly``, so it would list different,
fewer rows; we want the same rows as the other contenders), timeZoneID 20 where the dataset takes
one (the add-on's value), and the per-event checkpoint write to Splunk's KV store is left out.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bench.contenders.common import Outcome, Workload, bench_range, day_slices, list_request

log = logging.getLogger("bench.sequential")

LIMIT = 500
HEADERS = {"Content-Type": "application/xml", "Connection": "close"}
START_FIELDS = {  # the add-on's start_time_map, plus the registry's start column for the rest
    "meeting_usage": "meetingStartTime",
    "meeting_attendees": "joinTime",
}


def etree_to_dict(t: ET.Element) -> dict[str, Any]:
    """The add-on's ``etree_to_dict`` (same shape: repeated children become lists)."""
    d: dict[str, Any] = {t.tag: {} if t.attrib else None}
    children = list(t)
    if children:
        dd: defaultdict[str, list[Any]] = defaultdict(list)
        for dc in map(etree_to_dict, children):
            for k, v in dc.items():
                dd[k].append(v)
        d = {t.tag: {k: v[0] if len(v) == 1 else v for k, v in dd.items()}}
    if t.attrib:
        d[t.tag].update(("@" + k, v) for k, v in t.attrib.items())
    if t.text:
        text = t.text.strip()
        if children or t.attrib:
            if text:
                d[t.tag]["#text"] = text
        else:
            d[t.tag] = text
    return d


def parse_xml_to_dict(data: bytes) -> dict[str, Any]:
    """The add-on's ``parse_xml_to_dict``: iterparse, strip every namespace, then to dicts."""
    it = ET.iterparse(BytesIO(data))
    for _, el in it:
        _, has_namespace, postfix = el.tag.partition("}")
        if has_namespace:
            el.tag = postfix
    return etree_to_dict(it.root)  # type: ignore[attr-defined]


class SequentialPager:
    """One run over every dataset and slice (see the module docstring)."""

    def __init__(self, w: Workload, url: str, out_dir: Path) -> None:
        self.w = w
        self.url = url
        self.out_dir = out_dir
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=Retry(total=10, backoff_factor=1))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.requests = 0
        self.failures: defaultdict[str, int] = defaultdict(int)  # exceptionID -> slices cut short
        self.written = 0

    def fetch(self, ds: Any, start: datetime, end: datetime, offset: int, sink: Any) -> int | None:
        """One page: write its records, return ``returned`` (0 for no records, None on FAILURE)."""
        payload = list_request(self.w, ds, start, end, offset, LIMIT)
        self.requests += 1
        response = self.session.post(self.url, data=payload, headers=HEADERS, timeout=120)
        if response.status_code != 200:
            log.debug("HTTP %s: %s", response.status_code, response.text[:200])
        ev = parse_xml_to_dict(response.content)["message"]  # raises on an error page: run aborts
        header = ev["header"]["response"]
        if "SUCCESS" in header["result"]:
            content = ev["body"]["bodyContent"]
            events = content.get(ds.record_element) or []
            if isinstance(events, dict):
                events = [events]
            start_field = START_FIELDS.get(ds.name)
            for event in events:
                if start_field and isinstance(event, dict) and event.get(start_field):
                    # The add-on turns the start time into the Splunk event time.
                    datetime.strptime(event[start_field], "%m/%d/%Y %H:%M:%S")
                sink.write(json.dumps(event))
                sink.write("\n")
            self.written += len(events)
            matching = content.get("matchingRecords") or {}
            return int(matching["returned"]) if "returned" in matching else 0
        reason = header.get("reason") or ""
        if "no record found" in reason:
            return 0
        # Logged and otherwise ignored: the caller's loop ends, the rest of the slice is lost.
        self.failures[str(header.get("exceptionID"))] += 1
        log.info("FAILURE %s %s at startFrom=%d of %s..%s", header.get("exceptionID"), reason, offset, start, end)
        return None

    def run(self, outcome: Outcome) -> None:
        """Every dataset, every 1-day slice, pages until a short page."""
        since, until = bench_range(self.w)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            for ds in self.w.dataset_objs:
                path = self.out_dir / f"{ds.name}.jsonl"
                outcome.table_paths[ds.name] = str(path)
                with open(path, "w", encoding="utf-8") as sink:
                    for start, end in day_slices(since, until):
                        records: int | None = LIMIT
                        offset = 1
                        while records == LIMIT:
                            records = self.fetch(ds, start, end, offset, sink)
                            if records:
                                offset += records
        except Exception as exc:  # the add-on re-raises: the input run ends here
            outcome.error = f"run aborted: {type(exc).__name__}: {exc}"
        finally:
            outcome.client_requests = self.requests
            outcome.client_throttles = self.failures.get("000045", 0)
            for code, n in sorted(self.failures.items()):
                outcome.notes.append(f"{n} slice(s) cut short by FAILURE {code} (rest of the slice never fetched)")


def run(w: Workload, url: str, out_dir: Path) -> Outcome:
    """Run the sequential pager; data lands as JSON lines in ``out_dir/<dataset>.jsonl``."""
    outcome = Outcome("sequential", "Splunk-add-on-style: 1 request at a time, 1-day slices, JSON lines",
                      output=str(out_dir), output_kind="jsonl")
    SequentialPager(w, url, out_dir).run(outcome)
    return outcome
