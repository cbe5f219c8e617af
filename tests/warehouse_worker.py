"""Helpers for the warehouse tests, and a script the crash and reader tests run as real processes.

As a library: :func:`make_table` builds a window's table in ``parse.arrow_schema(dataset)``;
:func:`window_rows` is the deterministic content of window ``i`` the worker lands.

As a script::

    python tests/warehouse_worker.py writer ROOT [--kill-stage STAGE --kill-at N] [--windows N] [--s3-endpoint URL]
    python tests/warehouse_worker.py reader CATALOG STOPFILE [--mode fresh|long] [--s3-endpoint URL]

``writer`` opens the warehouse at ROOT (local path or s3:// URI), prints ``READY``, then commits
window after window (each spanning two UTC days, so two files per commit), re-lands the previous
window with a new version every third commit, compacts and publishes now and then, printing
``COMMITTED <i> <version>`` once each commit has returned.  With ``--kill-stage`` it SIGKILLs
itself at the N-th time the warehouse reaches that stage.

``reader`` opens the catalog read-only (``--mode fresh``: a new connection every loop; ``long``: one
connection kept across many publishes) and checks every window is all there or not there at all,
until STOPFILE exists; it prints a JSON summary.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.model.dataset_spec import Dataset  # noqa: E402
from exporter.model.datasets import by_name  # noqa: E402

try:
    from exporter.records.arrow_schema import arrow_schema  # noqa: E402
except ImportError:  # parse.py not there yet: the same schema from the registry
    from exporter.store.lake_shaping import arrow_type

    def arrow_schema(dataset: Dataset) -> pa.Schema:
        fields = [pa.field(c.name, arrow_type(c.type)) for c in dataset.columns]
        return pa.schema(fields + [pa.field("site", pa.string()), pa.field("extra", pa.string()),
                                   pa.field("_preliminary", pa.bool_())])


DAY0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DATASET = "meeting_usage"
SITE = "acme"


def make_table(
    dataset: Dataset | str,
    rows: list[dict[str, object]],
    *,
    site: str = SITE,
    preliminary: bool = False,
    schema: pa.Schema | None = None,
) -> pa.Table:
    """A table in ``arrow_schema(dataset)``; columns not given in ``rows`` are null."""
    ds = by_name(dataset) if isinstance(dataset, str) else dataset
    schema = schema or arrow_schema(ds)
    columns = {}
    for field in schema:
        if field.name == "site":
            columns["site"] = pa.array([site] * len(rows), pa.string())
        elif field.name == "_preliminary":
            columns["_preliminary"] = pa.array([preliminary] * len(rows), pa.bool_())
        else:
            columns[field.name] = pa.array([r.get(field.name) for r in rows], field.type)
    return pa.table(columns, schema=pa.schema([pa.field(f.name, f.type) for f in schema]))


def window_size(i: int) -> int:
    """How many rows window ``i`` holds (varies, so a partial window would show)."""
    return 4 + (i * 7) % 11


def window_bounds(i: int) -> tuple[datetime, datetime]:
    """Window ``i`` spans two UTC days."""
    start = DAY0 + timedelta(days=2 * i)
    return start, start + timedelta(days=2)


def window_rows(i: int, version: int = 1) -> list[dict[str, object]]:
    """Meeting-usage rows of window ``i``: conf_id ``i*1000 + j``, half on each day."""
    start, _ = window_bounds(i)
    n = window_size(i)
    return [
        {
            "conf_id": i * 1000 + j,
            "conf_name": f"w{i}-r{j}-v{version}",
            "meeting_start_time": start + timedelta(days=j % 2, minutes=j),
            "duration": version,
        }
        for j in range(n)
    ]


def commit_sequence(windows: int) -> list[tuple[int, int]]:
    """The ``(window, version)`` commits the writer makes, in order."""
    out = []
    for i in range(windows):
        out.append((i, 1))
        if i % 3 == 2:
            out.append((i - 1, 2))
    return out


def _writer(args: list[str]) -> None:
    from exporter.config import WarehouseSettings
    from exporter.model.windows import Window
    from exporter.store.warehouse import Warehouse

    root = args[0]
    opts = dict(zip(args[1::2], args[2::2], strict=False))
    kill_stage, kill_at = opts.get("--kill-stage"), int(opts.get("--kill-at", "1"))
    windows = int(opts.get("--windows", "40"))
    catalog = opts.get("--catalog") or str(Path(root) / "webex.duckdb")
    settings = WarehouseSettings(root=root, catalog=catalog, row_group_size=1000,
                                 compact_min_files=3, s3_endpoint_url=opts.get("--s3-endpoint"))
    seen = {"n": 0}

    def hook(stage: str) -> None:
        if stage == kill_stage:
            seen["n"] += 1
            if seen["n"] >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    with Warehouse(settings, retire_grace_seconds=0, auto_compact=False) as wh:
        wh._crash_hook = hook
        print("READY", flush=True)
        for i in range(windows):
            start, end = window_bounds(i)
            wh.commit_window(SITE, DATASET, Window(start, end), make_table(DATASET, window_rows(i)),
                             cursor_to=end, run_id="worker")
            print(f"COMMITTED {i} 1", flush=True)
            if i % 3 == 2:
                s, e = window_bounds(i - 1)
                wh.commit_window(
                    SITE, DATASET, Window(s, e), make_table(DATASET, window_rows(i - 1, 2)), run_id="worker"
                )
                print(f"COMMITTED {i - 1} 2", flush=True)
            if i % 4 == 3:
                wh.compact(min_files=2)
            if i % 2 == 1:
                wh.publish()
    print("DONE", flush=True)


def _reader(args: list[str]) -> None:
    import duckdb

    catalog, stop = Path(args[0]), Path(args[1])
    opts = dict(zip(args[2::2], args[3::2], strict=False))
    fs = None
    if endpoint := opts.get("--s3-endpoint"):
        import pyarrow.fs as pafs
        from fsspec.implementations.arrow import ArrowFSWrapper

        host = endpoint.split("://", 1)[1]
        fs = ArrowFSWrapper(pafs.S3FileSystem(endpoint_override=host, scheme="http", region="us-east-1"))
    summary = {"loops": 0, "errors": [], "partial": [], "max_windows_seen": 0, "window_counts_seen": []}
    query = "SELECT conf_id // 1000 AS w, count(*) AS n, count(DISTINCT conf_id) AS d FROM meeting_usage GROUP BY ALL"

    def check(con: duckdb.DuckDBPyConnection, label: str) -> None:
        rows = con.sql(query).fetchall()
        for w, n, d in rows:
            if n != window_size(w) or d != n:
                summary["partial"].append([label, w, n, d])
        summary["max_windows_seen"] = max(summary["max_windows_seen"], len(rows))
        if len(rows) not in summary["window_counts_seen"]:
            summary["window_counts_seen"].append(len(rows))

    def connect() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(catalog), read_only=True)
        if fs is not None:
            con.register_filesystem(fs)
        return con

    # One connection per process and path: DuckDB caches open databases by path within a
    # process, so "long" keeps one connection for many loops (its snapshot must stay readable
    # while publishes replace the file and compaction retires files) and "fresh" reconnects
    # every loop (it must always see a complete, current catalog).
    mode = opts.get("--mode", "fresh")
    con = None
    deadline = time.monotonic() + 60
    print("READY", flush=True)
    while not stop.exists() and time.monotonic() < deadline:
        try:
            if con is None:
                if not catalog.exists():
                    time.sleep(0.01)
                    continue
                con = connect()
            check(con, mode)
            summary["loops"] += 1
            time.sleep(0.02)  # leave the (shared, 2-core) CPU to the writer now and then
            if mode == "fresh" or summary["loops"] % 25 == 0:
                con.close()
                con = None
        except Exception as exc:  # noqa: BLE001 - every failure is a finding; report them all
            summary["errors"].append(f"{type(exc).__name__}: {exc}"[:300])
            if con is not None:
                con.close()
                con = None
    if con is not None:
        con.close()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    {"writer": _writer, "reader": _reader}[mode](rest)
