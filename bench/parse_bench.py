"""Parse benchmark: bare lxml parsing versus our parse to a typed Arrow table.

For every dataset in the registry this builds realistic response pages itself (500 records per page,
namespaced like the real server, Chinese names, ``&`` and ``<`` in text, unpadded dates, nested
``trackingCode``/``assistService``/``source`` containers, repeated ``regQandA``), then times:

* **bare**: ``lxml.etree.fromstring(page)`` and nothing else, the floor no parser can beat;
* **ours**: ``exporter.xmlsafe.parse_xml(page)`` + locating the record elements +
  ``exporter.parse.parse_records(...)`` to a table in ``arrow_schema(dataset)``.

It prints a markdown table (medians over repetitions) and, with ``--check``, exits 1 when the
``meeting_attendees`` ratio ours/bare is under ``--min-ratio`` (0.4).  It does not use the simulator.

    .venv/bin/python bench/parse_bench.py [--pages 4] [--records 500] [--repeat 7] [--check]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.datasets import DATASETS, Column, Dataset  # noqa: E402
from exporter.parse import parse_records  # noqa: E402
from exporter.timezones import zoneinfo_for  # noqa: E402
from exporter.xmlsafe import parse_xml  # noqa: E402

SERV = "http://www.webex.com/schemas/2002/06/service"
NAMESPACES = {
    "history": "http://www.webex.com/schemas/2002/06/service/history",
    "ep": "http://www.webex.com/schemas/2002/06/service/ep",
}
CHECKED_DATASET = "meeting_attendees"

_NAMES = ["王小明", "李華", "張偉", "陳美玲", "Dean Smith", "Zoë Müller", "O'Brien & Sons", "Ana <Lopez>", "田中 太郎"]
_COMPANIES = ["AT&T", "Black & Decker", "團隊會議有限公司", "Acme <Intl>", "Müller GmbH", ""]
_CITIES = ["台北", "San José", "Zürich", "東京", "New York"]


def _text(column: Column, rng: random.Random, row: int) -> str:
    """A plausible wire value for one column (dates unpadded about half the time)."""
    if column.type == "int":
        return str(rng.randrange(0, 10**rng.choice((2, 6, 12, 17))))
    if column.type == "float":
        return f"{rng.random() * 100:.2f}"
    if column.type == "bool":
        return rng.choice(("true", "false"))
    if column.type == "timestamp":
        m, d, y = rng.randint(1, 12), rng.randint(1, 28), rng.choice((2019, 2025, 2026))
        hh, mm, ss = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
        if rng.random() < 0.5:
            return f"{m}/{d}/{y} {hh}:{mm}:{ss}"
        return f"{m:02d}/{d:02d}/{y} {hh:02d}:{mm:02d}:{ss:02d}"
    name = column.name
    if "email" in name:
        return f"user{row}@example.com"
    if "name" in name:
        return f"{rng.choice(_NAMES)} {row}"
    if name in ("company", "title"):
        return rng.choice(_COMPANIES)
    if name == "city":
        return rng.choice(_CITIES)
    if name in ("ip_address", "client_ip"):
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if name == "meeting_uuid":
        return f"{rng.getrandbits(128):032x}"
    return f"{name}-{rng.randint(0, 999)} & co"


def _record_xml(dataset: Dataset, prefix: str, rng: random.Random, row: int, indent: str) -> str:
    """One record element, children in declared order, containers nested, json columns repeated."""
    inner = indent + "   "
    parts = [f"{indent}<{prefix}:{dataset.record_element}>"]
    open_parent: str | None = None
    for column in dataset.columns:
        if column.parent != open_parent:
            if open_parent is not None:
                parts.append(f"{inner}</{prefix}:{open_parent}>")
            if column.parent is not None:
                parts.append(f"{inner}<{prefix}:{column.parent}>")
            open_parent = column.parent
        pad = inner + ("   " if column.parent else "")
        if column.type == "json":
            for q in range(rng.randint(0, 2)):
                parts.append(
                    f"{pad}<{prefix}:{column.element}><{prefix}:regQ>問題 {q} &amp; more?</{prefix}:regQ>"
                    f"<{prefix}:regA>{escape(rng.choice(_NAMES))}</{prefix}:regA></{prefix}:{column.element}>"
                )
            continue
        value = escape(_text(column, rng, row))
        parts.append(f"{pad}<{prefix}:{column.element}>{value}</{prefix}:{column.element}>")
    if open_parent is not None:
        parts.append(f"{inner}</{prefix}:{open_parent}>")
    parts.append(f"{indent}</{prefix}:{dataset.record_element}>")
    return "\n".join(parts)


def build_page(dataset: Dataset, records: int, *, seed: int = 0, start_from: int = 1) -> bytes:
    """A SUCCESS response page with ``records`` records, laid out like the real server's."""
    rng = random.Random(f"{dataset.name}:{seed}")
    prefix = dataset.service
    matching = (
        f"      <{prefix}:matchingRecords>\n         <serv:total>{records * 10}</serv:total>\n"
        f"         <serv:returned>{records}</serv:returned>\n"
        f"         <serv:startFrom>{start_from}</serv:startFrom>\n      </{prefix}:matchingRecords>"
    )
    body = [_record_xml(dataset, prefix, rng, start_from + i, "      ") for i in range(records)]
    if dataset.matching_records_first:
        body.insert(0, matching)
    else:
        body.append(matching)
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<serv:message xmlns:serv="{SERV}" xmlns:com="http://www.webex.com/schemas/2002/06/common" '
        f'xmlns:{prefix}="{NAMESPACES[prefix]}">\n'
        "<serv:header><serv:response><serv:result>SUCCESS</serv:result>"
        "<serv:gsbStatus>PRIMARY</serv:gsbStatus></serv:response></serv:header>\n"
        "<serv:body>\n   <serv:bodyContent xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
        f'xsi:type="{dataset.response_type}">\n' + "\n".join(body) + "\n   </serv:bodyContent>\n</serv:body>\n</serv:message>\n"
    )
    return text.encode("utf-8")


def find_records(root: etree._Element, dataset: Dataset) -> list[etree._Element]:
    """The record elements of a parsed page, in any namespace (what protocol.parse_response does)."""
    return root.findall(f"./{{*}}body/{{*}}bodyContent/{{*}}{dataset.record_element}")


def _bare(pages: list[bytes]) -> int:
    for page in pages:
        etree.fromstring(page)
    return 0


def _ours(pages: list[bytes], dataset: Dataset, zone) -> int:
    rows = 0
    for page in pages:
        root = parse_xml(page)
        rows += parse_records(dataset, find_records(root, dataset), site="bench", zone=zone).table.num_rows
    return rows


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def _interleaved_medians(first, second, repeat: int, clock) -> tuple[float, float]:
    """Median times of ``first()`` and ``second()``, alternated so that load from other processes
    hits both alike (one warm-up run each first)."""
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            started = clock()
            fn()
            bucket.append(clock() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def run(pages_per_dataset: int, records: int, repeat: int, clock=time.process_time) -> list[tuple[str, int, int, float, float]]:
    """Benchmark every dataset; rows of (dataset, pages, records, bare rec/s, ours rec/s)."""
    zone = zoneinfo_for(4)  # Los Angeles: DST rules exercised on every timestamp
    results = []
    for dataset in DATASETS:
        pages = [build_page(dataset, records, seed=s, start_from=1 + s * records) for s in range(pages_per_dataset)]
        total = pages_per_dataset * records
        assert _ours(pages, dataset, zone) == total, dataset.name
        bare, ours = _interleaved_medians(lambda: _bare(pages), lambda: _ours(pages, dataset, zone), repeat, clock)
        results.append((dataset.name, pages_per_dataset, total, total / bare, total / ours))
    return results


def render(results: list[tuple[str, int, int, float, float]]) -> str:
    """The markdown table."""
    lines = [
        "| dataset | pages | records | bare lxml parse rec/s | ours parse-to-typed-Arrow rec/s | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, pages, total, bare, ours in results:
        lines.append(f"| {name} | {pages} | {total} | {bare:,.0f} | {ours:,.0f} | {ours / bare:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table; with ``--check`` fail under the minimum ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4, help="pages per dataset")
    parser.add_argument("--records", type=int, default=500, help="records per page")
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions (median reported)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {CHECKED_DATASET} ratio < --min-ratio")
    parser.add_argument("--min-ratio", type=float, default=0.4)
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu",
        help="cpu: process CPU time (default; both sides are single-threaded CPU work, and it is robust "
        "to other processes on a shared machine); wall: perf_counter",
    )
    args = parser.parse_args(argv)
    results = run(args.pages, args.records, args.repeat, CLOCKS[args.clock])
    print(f"clock: {args.clock}; median of {args.repeat} interleaved runs; {args.records} records per page\n")
    print(render(results))
    if args.check:
        ratio = next(ours / bare for name, _, _, bare, ours in results if name == CHECKED_DATASET)
        if ratio < args.min_ratio:
            print(f"FAIL: {CHECKED_DATASET} ratio {ratio:.2f} < {args.min_ratio}", file=sys.stderr)
            return 1
        print(f"OK: {CHECKED_DATASET} ratio {ratio:.2f} >= {args.min_ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
