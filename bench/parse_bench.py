"""Parse benchmark: bare lxml parsing versus our parse to a typed Arrow table.

For every dataset in the registry this builds realistic response pages itself (500 records per page,
namespaced like the real server, Chinese names, ``&`` and ``<`` in text, unpadded dates, nested
``trackingCode``/``assistService``/``source`` containers, repeated ``regQandA``), then times:

* **bare**: ``lxml.etree.fromstring(page)`` and nothing else, the floor no parser can beat;
* **ours**: ``exporter.records.xmlsafe.parse_xml(page)`` + locating the record elements +
  ``exporter.records.parse.parse_records(...)`` to a table in ``arrow_schema(dataset)``;
* **ours + land**: ours for every page, then what one commit of all of them does to the rows before
  they are durable: conform to the schema, lineage columns, newest-per-key dedupe, split by date,
  zstd Parquet (into memory: no disk, no fsync, no manifest transaction).

Each page is timed bare and ours back to back (CPU time by default), several repetitions; the table
shows throughputs from the median time per page and the ratio bare/ours as the median of the
per-page ratios, which stays put when other processes load a shared machine.  Parse + land is timed
per repetition (all pages, one landing) and its ratio is bare/(ours + land) per repetition, median.  With ``--check`` it
exits 1 when the ``meeting_attendees`` ratio is under ``--min-ratio`` (0.4).  No simulator needed.

    .venv/bin/python bench/parse_bench.py [--pages 3] [--records 500] [--repeat 7] [--check] [--clock cpu|wall] [--write]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pyarrow as pa
import pyarrow.parquet as pq
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.model.dataset_spec import Column, Dataset  # noqa: E402
from exporter.model.datasets import DATASETS  # noqa: E402
from exporter.model.timezones import zoneinfo_for  # noqa: E402
from exporter.records.parse import parse_records  # noqa: E402
from exporter.records.xmlsafe import parse_xml  # noqa: E402
from exporter.store.lake_shaping import conform, dedupe_latest, with_lineage  # noqa: E402

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
        f'xsi:type="{dataset.response_type}">\n'
        + "\n".join(body)
        + "\n   </serv:bodyContent>\n</serv:body>\n</serv:message>\n"
    )
    return text.encode("utf-8")


def find_records(root: etree._Element, dataset: Dataset) -> list[etree._Element]:
    """The record elements of a parsed page, in any namespace (what protocol.parse_response does)."""
    return root.findall(f"./{{*}}body/{{*}}bodyContent/{{*}}{dataset.record_element}")


def _bare(page: bytes) -> int:
    etree.fromstring(page)
    return 0


def _ours(page: bytes, dataset: Dataset, zone) -> int:
    root = parse_xml(page)
    return parse_records(dataset, find_records(root, dataset), site="bench", zone=zone).table.num_rows


_LANDED_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _typed(page: bytes, dataset: Dataset, zone) -> pa.Table:
    root = parse_xml(page)
    return parse_records(dataset, find_records(root, dataset), site="bench", zone=zone).table


def _land(tables: list[pa.Table], dataset: Dataset) -> int:
    """What a (group) commit does to a window's rows before they are durable, into memory."""
    shaped = dedupe_latest(with_lineage(conform(pa.concat_tables(tables), dataset, "bench"), 1, _LANDED_AT),
                           ("site", *dataset.natural_key))
    # These pages spread their dates over years; a real window lands in one or two date partitions,
    # so the rows are sorted as split_partitions sorts them and written as one file.
    rows = shaped.sort_by([(dataset.start_column, "ascending")])
    pq.write_table(rows, pa.BufferOutputStream(), compression="zstd", row_group_size=128 * 1024, write_statistics=True)
    return rows.num_rows


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def _paired_times(
    pages: list[bytes], dataset: Dataset, zone, repeat: int, clock
) -> tuple[list[tuple[float, float]], list[tuple[float, float, float]]]:
    """(bare, ours) seconds for each page in each repetition, measured back to back so that load
    from other processes on a shared machine hits both sides of a pair alike; and per repetition
    (bare, ours, land) seconds summed over its pages, land being one commit of all of them (the
    exporter lands windows, not pages)."""
    for page in pages:  # warm-up: plan caches, tag signatures, pyarrow kernels
        _bare(page)
        _land([_typed(page, dataset, zone)], dataset)
    pairs, reps = [], []
    for _ in range(repeat):
        tables = []
        for page in pages:
            started = clock()
            _bare(page)
            middle = clock()
            tables.append(_typed(page, dataset, zone))
            pairs.append((middle - started, clock() - middle))
        started = clock()
        _land(tables, dataset)
        done = clock() - started
        mine = pairs[-len(pages):]
        reps.append((sum(b for b, _ in mine), sum(o for _, o in mine), done))
    return pairs, reps


#: dataset, pages, records, bare rec/s, ours rec/s, ratio, ours + land rec/s, land ratio
Result = tuple[str, int, int, float, float, float, float, float]


def run(pages_per_dataset: int, records: int, repeat: int, clock=time.process_time) -> list[Result]:
    """Benchmark every dataset.  Throughputs come from the median time per page; the ratio is the
    median of the per-pair ratios, the statistic least moved by other processes' load."""
    zone = zoneinfo_for(4)  # Los Angeles: DST rules exercised on every timestamp
    results = []
    for dataset in DATASETS:
        pages = [build_page(dataset, records, seed=s, start_from=1 + s * records) for s in range(pages_per_dataset)]
        assert all(_ours(page, dataset, zone) == records for page in pages), dataset.name
        pairs, reps = _paired_times(pages, dataset, zone, repeat, clock)
        bare = statistics.median(b for b, _ in pairs)
        ours = statistics.median(o for _, o in pairs)
        ratio = statistics.median(b / o for b, o in pairs)
        total = pages_per_dataset * records
        landed = total / statistics.median(o + land for _, o, land in reps)
        land_ratio = statistics.median(b / (o + land) for b, o, land in reps)
        results.append((dataset.name, pages_per_dataset, total, records / bare, records / ours, ratio,
                        landed, land_ratio))
    return results


def render(results: list[Result]) -> str:
    """The markdown table."""
    lines = [
        "| dataset | pages | records | bare lxml parse rec/s | ours parse-to-typed-Arrow rec/s | ratio | "
        "ours parse + land rec/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, pages, total, bare, ours, ratio, landed, land_ratio in results:
        lines.append(f"| {name} | {pages} | {total} | {bare:,.0f} | {ours:,.0f} | {ratio:.2f} | {landed:,.0f} | "
                     f"{land_ratio:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table; with ``--check`` fail under the minimum ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3, help="pages per dataset")
    parser.add_argument("--records", type=int, default=500, help="records per page")
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions (medians reported)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {CHECKED_DATASET} ratio < --min-ratio")
    parser.add_argument("--min-ratio", type=float, default=0.4)
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu",
        help="cpu: process CPU time (default; both sides are single-threaded CPU work, and it is robust "
        "to other processes on a shared machine); wall: perf_counter",
    )
    parser.add_argument("--write", action="store_true", help="store the table in docs/benchmarks.md")
    args = parser.parse_args(argv)
    results = run(args.pages, args.records, args.repeat, CLOCKS[args.clock])
    header = (
        f"clock: {args.clock}; {args.repeat} repetitions x {args.pages} pages of {args.records} records, "
        "bare and ours timed back to back per page, landing once per repetition; medians (ratio: bare time / our time, the "
        "median of per-page ratios; 1.0 would be as fast as lxml building its tree and nothing else)"
    )
    print(header + "\n")
    print(render(results))
    if args.write:
        from bench.run_bench import write_doc

        started = datetime.now(timezone.utc)
        write_doc("parse", f"### CPU: parsing (and landing) versus bare lxml\n\nRun {started:%Y-%m-%d %H:%M} UTC. "
                           f"Command: `bench/parse_bench.py {' '.join(argv if argv is not None else sys.argv[1:])}`; "
                           f"{header}.\n\n{render(results)}\n")
    if args.check:
        ratio = next(r[5] for r in results if r[0] == CHECKED_DATASET)  # parse alone, as before
        if ratio < args.min_ratio:
            print(f"FAIL: {CHECKED_DATASET} ratio {ratio:.2f} < {args.min_ratio}", file=sys.stderr)
            return 1
        print(f"OK: {CHECKED_DATASET} ratio {ratio:.2f} >= {args.min_ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
