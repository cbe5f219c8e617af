"""Baseline 3: a dlt 1.x pipeline over the same simulator, in its fastest honest configuration.

Follows ../shared/lessons-from-peers.md section 6 ("Could dlt be a baseline on the same workload?"),
variants D2 + D3 combined:

* **D2, concurrent pages.**  dlt's declarative ``rest_api`` source cannot read XML, so the source
  is hand-written: per dataset a resource yields the 1-day windows; a ``parallelized=True``
  transformer fetches each window's first page in dlt's thread pool (that is where ``total``
  comes from); a second transformer yields that page and then one ``@dlt.defer``-ed fetch per
  remaining ``startFrom``, which dlt evaluates in the same pool.  So every page of every window
  is in flight as soon as its offset is known -- concurrency across *and within* windows, bounded
  by ``[extract] workers`` / ``max_parallel_items`` set to the same cap our exporter uses.
  (dlt cannot run pages of one endpoint in parallel by itself, dlt-hub/dlt#2844; ``defer`` is how
  its docs say to parallelise work inside a resource.)
* **D3, Arrow fast path.**  Each page is parsed with lxml and becomes a ``pyarrow.Table`` with an
  explicit schema (the registry's columns and types, timestamps UTC), typed with vectorised
  ``pyarrow.compute`` casts; dlt then skips JSON normalisation and writes Parquet almost directly.
* HTTP through dlt's own retrying ``requests`` helper (``dlt.sources.helpers.requests.Client``:
  429, 5xx and connection errors retried, ``Retry-After`` honoured).  Webex throttles in a 200
  body (000045), which dlt cannot see, so throttling is added by hand: a shared request budget
  (``common.Limiter``, requests evenly spaced at the server's rate) and, on 000045, a 60 s
  cool-down for every thread, then the page is asked again.
* Destination: ``filesystem`` (local folder, Parquet, ``append``) by default -- the cheapest load
  dlt has; ``--dlt-destination duckdb`` and ``--dlt-disposition merge`` (primary key = the natural
  key) are the alternatives (merge on plain files falls back to append in dlt, so merge needs the
  duckdb destination).
* No incremental cursor (a one-shot full load of the range, like the other contenders);
  telemetry off, a fresh ``pipelines_dir`` per run, ``restore_from_destination`` off.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from bench.contenders.common import Limiter, Outcome, Workload, bench_range, day_slices, list_request
from exporter.model.dataset_spec import Dataset

PAGE = 500
_ARROW = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string(),
          "timestamp": pa.timestamp("us", tz="UTC"), "json": pa.string()}
_WIRE = "%m/%d/%Y %H:%M:%S"
SERV = "{http://www.webex.com/schemas/2002/06/service}"


class PageError(RuntimeError):
    """A FAILURE answer other than "no records" or a throttle: dlt fails the extract step."""


def arrow_schema(ds: Dataset) -> pa.Schema:
    """The explicit schema: the registry's columns with Arrow types."""
    return pa.schema([pa.field(c.name, _ARROW[c.type]) for c in ds.columns])


class PageParser:
    """lxml record elements -> one typed Arrow table (hand-written, vectorised casts)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.schema = arrow_schema(ds)
        self.top = {c.element: c.name for c in ds.columns if c.parent is None}
        self.nested = {(c.parent, c.element): c.name for c in ds.columns if c.parent is not None}
        self.parents = {c.parent for c in ds.columns if c.parent is not None}
        self.json_cols = {c.element for c in ds.columns if c.type == "json"}

    def table(self, records: list[etree._Element]) -> pa.Table:
        """Typed table of one page's records."""
        names = [c.name for c in self.ds.columns]
        cols: dict[str, list[Any]] = {n: [None] * len(records) for n in names}
        for i, rec in enumerate(records):
            for child in rec:
                tag = child.tag
                if not isinstance(tag, str):
                    continue
                local = tag.rpartition("}")[2]
                if local in self.parents:
                    for grand in child:
                        name = self.nested.get((local, grand.tag.rpartition("}")[2]))
                        if name is not None:
                            cols[name][i] = grand.text or ""
                elif local in self.json_cols:
                    name = self.top[local]
                    item = {g.tag.rpartition("}")[2]: g.text or "" for g in child}
                    cols[name][i] = (cols[name][i] or []) + [item]
                else:
                    name = self.top.get(local)
                    if name is not None:
                        cols[name][i] = child.text or ""
        arrays = [self._typed(c.type, cols[c.name]) for c in self.ds.columns]
        return pa.Table.from_arrays(arrays, schema=self.schema)

    @staticmethod
    def _typed(type_: str, values: list[Any]) -> pa.Array:
        if type_ == "str":
            return pa.array(values, pa.string())
        if type_ == "json":
            return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values], pa.string())
        texts = pa.array([v.strip() or None if v is not None else None for v in values], pa.string())
        if type_ == "int":
            return texts.cast(pa.int64())
        if type_ == "float":
            return texts.cast(pa.float64())
        if type_ == "bool":
            return pc.equal(pc.utf8_lower(texts), "true")
        try:  # timestamp: vectorised; every baseline asks for GMT, so wall time is UTC
            naive = pc.strptime(texts, format=_WIRE, unit="us")
        except pa.ArrowInvalid:  # e.g. unpadded dates the kernel refuses: per value
            naive = pa.array([None if t is None else datetime.strptime(t, _WIRE) for t in texts.to_pylist()],
                             pa.timestamp("us"))
        return naive.cast(pa.timestamp("us", tz="UTC"))


class Fetcher:
    """Fetch and parse one page, through the shared budget, with hand-written throttle handling."""

    def __init__(self, w: Workload, url: str) -> None:
        from dlt.sources.helpers.requests import Client

        self.w = w
        self.url = url
        self.limiter = Limiter(w.rate_limit)
        self.client = Client(request_timeout=120, raise_for_status=True, max_connections=max(8, w.concurrency))
        self.parsers = {ds.name: PageParser(ds) for ds in w.dataset_objs}
        self._lock = threading.Lock()
        self.requests = 0
        self.throttles = 0

    def page(self, ds: Dataset, window: dict[str, datetime], start_from: int) -> tuple[pa.Table, int]:
        """The page at ``start_from`` of ``window`` as a table, and the listing's total."""
        payload = list_request(self.w, ds, window["start"], window["end"], start_from, PAGE)
        while True:
            self.limiter.acquire()
            with self._lock:
                self.requests += 1
            response = self.client.session.post(self.url, data=payload, headers={"Content-Type": "text/xml"})
            root = etree.fromstring(response.content)
            header = root.find(f"{SERV}header/{SERV}response")
            result = header.findtext(f"{SERV}result")
            if result == "SUCCESS":
                break
            code = header.findtext(f"{SERV}exceptionID") or ""
            if code == "000015":  # no records
                return self.parsers[ds.name].schema.empty_table(), 0
            if code == "000045":  # throttled: everybody waits, then ask again
                with self._lock:
                    self.throttles += 1
                self.limiter.cool_down(self.w.throttle_cooldown_seconds)
                continue
            raise PageError(f"{ds.operation} startFrom={start_from}: FAILURE {code} {header.findtext(f'{SERV}reason')}")
        content = root.find(f"{SERV}body/{SERV}bodyContent")
        records = [el for el in content if isinstance(el.tag, str) and el.tag.endswith("}" + ds.record_element)]
        total = 0
        for el in content:
            if isinstance(el.tag, str) and el.tag.endswith("}matchingRecords"):
                total = int(el.findtext(f"{SERV}total") or 0)
        return self.parsers[ds.name].table(records), total


def build_resources(w: Workload, fetcher: Fetcher, disposition: str) -> list[Any]:
    """One resource chain per dataset: windows -> first page (parallel) -> all pages (deferred)."""
    import dlt

    since, until = bench_range(w)
    windows_plan = [{"start": s, "end": e} for s, e in day_slices(since, until, w.window_hours * 3600)]
    out = []
    for ds in w.dataset_objs:

        def make(ds: Dataset) -> Any:
            @dlt.resource(name=f"{ds.name}_windows", selected=False)
            def windows() -> Any:
                yield from windows_plan

            @dlt.transformer(name=f"{ds.name}_first_page", parallelized=True, selected=False)
            def first_page(window: dict[str, datetime]) -> Any:
                table, total = fetcher.page(ds, window, 1)
                return {"window": window, "total": total, "table": table}

            @dlt.defer
            def later_page(window: dict[str, datetime], start_from: int) -> pa.Table:
                return keyed(fetcher.page(ds, window, start_from)[0])

            str_keys = [k for k in ds.natural_key if ds.column_by_name[k].type == "str"]

            def keyed(table: pa.Table) -> pa.Table:
                # dlt makes primary-key columns NOT NULL; call-in attendees have no e-mail.
                if disposition != "merge":
                    return table
                for k in str_keys:
                    i = table.schema.get_field_index(k)
                    table = table.set_column(i, k, pc.fill_null(table.column(k), ""))
                return table

            hints: dict[str, Any] = {"write_disposition": disposition}
            if disposition == "merge":
                hints["primary_key"] = list(ds.natural_key)

            @dlt.transformer(name=ds.name, **hints)
            def pages(first: dict[str, Any]) -> Any:
                if first["table"].num_rows:
                    yield keyed(first["table"])
                for start_from in range(1 + PAGE, first["total"] + 1, PAGE):
                    yield later_page(first["window"], start_from)

            return windows | first_page | pages

        out.append(make(ds))
    return out


def run(w: Workload, url: str, out_dir: Path, *, destination: str = "filesystem", disposition: str = "append") -> Outcome:
    """Run the dlt pipeline; data lands under ``out_dir``."""
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["EXTRACT__WORKERS"] = str(w.concurrency)
    os.environ["EXTRACT__MAX_PARALLEL_ITEMS"] = str(w.concurrency)
    os.environ.setdefault("NORMALIZE__WORKERS", "1")
    import dlt

    out_dir.mkdir(parents=True, exist_ok=True)
    variant = f"D2+D3: parallel first pages + deferred pages, Arrow tables, {destination} {disposition}"
    outcome = Outcome("dlt", variant, output=str(out_dir))
    if destination == "filesystem":
        dest = dlt.destinations.filesystem(bucket_url=(out_dir / "lake").as_uri())
        outcome.output_kind = "parquet"
        for ds in w.datasets:
            outcome.table_paths[ds] = str(out_dir / "lake" / "webex" / ds / "*.parquet")
    else:
        db = out_dir / "dlt.duckdb"
        dest = dlt.destinations.duckdb(str(db))
        outcome.output_kind = "duckdb"
        for ds in w.datasets:
            outcome.table_paths[ds] = f"{db}::webex.{ds}"
    pipeline = dlt.pipeline(pipeline_name="webex_bench", pipelines_dir=str(out_dir / "pipelines"),
                            destination=dest, dataset_name="webex")
    fetcher = Fetcher(w, url)
    try:
        info = pipeline.run(build_resources(w, fetcher, disposition), loader_file_format="parquet")
        if info.has_failed_jobs:
            outcome.error = "dlt load has failed jobs"
        trace = pipeline.last_trace
        if trace is not None:
            steps = {s.step: round((s.finished_at - s.started_at).total_seconds(), 2) for s in trace.steps
                     if s.finished_at and s.started_at}
            outcome.notes.append("dlt steps (s): " + ", ".join(f"{k} {v}" for k, v in steps.items()))
    except Exception as exc:  # extract is all-or-nothing in dlt: nothing of this run is loaded
        outcome.error = f"pipeline failed: {type(exc).__name__}: {str(exc)[:300]}"
    outcome.client_requests = fetcher.requests
    outcome.client_throttles = fetcher.throttles
    if fetcher.limiter.cooldowns:
        outcome.notes.append(f"{fetcher.limiter.cooldowns} throttle answer(s) (000045): hand-written 60 s cool-down")
    return outcome
