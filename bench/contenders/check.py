"""Rows landed versus the simulator's ground truth, as multisets of natural keys.

Keys are normalised the same way on both sides: integers as integers, strings with null -> "",
times as epoch seconds (UTC).  The ground truth keeps one key per stored row, so twins (rows
sharing a natural key, exact or not) count as often as the server holds them, and a lost twin
shows.  For each dataset: rows landed, distinct keys landed, truth rows, missing (truth rows no
landed row matches: ``truth EXCEPT ALL landed``), extra (landed rows no truth row matches:
``landed EXCEPT ALL truth``) and duplicates (the extra rows whose key the truth does hold, i.e. a
row landed more often than the server holds it; a part of extra, not in addition to it).

Without twins every truth key is unique and missing means what it meant when keys were compared
as sets (truth keys never landed); a landing with nothing extra and no duplicate rows scores
0 / 0 / 0 under both definitions.  Extra now counts rows, so a key landed twice that the truth
holds once counts in extra (and in duplicates), where the set comparison counted it only as a
duplicate row.
"""

from __future__ import annotations

import glob
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from exporter.model.datasets import by_name

_WIRE = "%m/%d/%Y %H:%M:%S"


def _sql_key(dataset: str) -> str:
    ds = by_name(dataset)
    types = {c.name: c.type for c in ds.columns}
    parts = []
    for name in ds.natural_key:
        q = f'"{name}"'
        if types[name] == "timestamp":
            parts.append(f"CAST(epoch({q}) AS BIGINT) AS {q}")
        elif types[name] == "int":
            parts.append(f"CAST({q} AS BIGINT) AS {q}")
        else:
            parts.append(f"coalesce(CAST({q} AS VARCHAR), '') AS {q}")
    return ", ".join(parts)


def _jsonl_keys(dataset: str, path: str) -> list[tuple[Any, ...]]:
    """Keys from the sequential pager's JSON lines (element names, wire strings)."""
    ds = by_name(dataset)
    columns = [ds.column_by_name[name] for name in ds.natural_key]
    keys = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            key = []
            for c in columns:
                value = record.get(c.parent, {}).get(c.element) if c.parent else record.get(c.element)
                if c.type == "timestamp":
                    value = None if not value else int(
                        datetime.strptime(value, _WIRE).replace(tzinfo=timezone.utc).timestamp())
                elif c.type == "int":
                    value = None if value in (None, "") else int(value)
                else:
                    value = "" if value is None else str(value)
                key.append(value)
            keys.append(tuple(key))
    return keys


def check(result: dict[str, Any], truth_dir: Path, datasets: list[str]) -> dict[str, dict[str, int]]:
    """Per dataset: rows, distinct, truth, missing, extra, duplicates (see the module docstring)."""
    con = duckdb.connect()
    out: dict[str, dict[str, int]] = {}
    for dataset in datasets:
        ds = by_name(dataset)
        keys = ", ".join(f'"{k}"' for k in ds.natural_key)
        truth = str(truth_dir / f"{dataset}.parquet")
        con.execute(f"CREATE OR REPLACE TEMP TABLE truth AS SELECT {keys} FROM read_parquet('{truth}')")
        where = result.get("table_paths", {}).get(dataset)
        kind = result.get("output_kind")
        con.execute(f"CREATE OR REPLACE TEMP TABLE landed ({', '.join(_ddl(dataset))})")
        if where and kind == "parquet" and glob.glob(where, recursive=True):
            con.execute(f"INSERT INTO landed SELECT {_sql_key(dataset)} FROM "
                        f"read_parquet('{where}', union_by_name=true, hive_partitioning=false)")
        elif where and kind == "duckdb":
            db, _, table = where.partition("::")
            if Path(db).exists():
                con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
                try:
                    con.execute(f"INSERT INTO landed SELECT {_sql_key(dataset)} FROM src.{table}")
                except duckdb.CatalogException:
                    pass
                con.execute("DETACH src")
        elif where and kind == "jsonl" and Path(where).exists():
            rows = _jsonl_keys(dataset, where)
            if rows:
                import pyarrow as pa

                types = {c.name: c.type for c in ds.columns}
                arrow = pa.table({
                    name: pa.array([r[i] for r in rows], pa.int64() if types[name] in ("int", "timestamp") else pa.string())
                    for i, name in enumerate(ds.natural_key)
                })
                con.register("landed_rows", arrow)
                con.execute("INSERT INTO landed SELECT * FROM landed_rows")
                con.unregister("landed_rows")
        (rows,) = con.execute("SELECT count(*) FROM landed").fetchone()
        (distinct,) = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM landed)").fetchone()
        (total,) = con.execute("SELECT count(*) FROM truth").fetchone()
        # EXCEPT ALL, not EXCEPT: a key the truth holds twice must be landed twice.
        (missing,) = con.execute(
            f"SELECT count(*) FROM (SELECT {keys} FROM truth EXCEPT ALL SELECT {keys} FROM landed)").fetchone()
        con.execute(f"CREATE OR REPLACE TEMP TABLE extra AS "
                    f"SELECT {keys} FROM landed EXCEPT ALL SELECT {keys} FROM truth")
        (extra,) = con.execute("SELECT count(*) FROM extra").fetchone()
        # IS NOT DISTINCT FROM: a NULL key part (a row without a start time) matches as in EXCEPT ALL.
        same = " AND ".join(f't."{k}" IS NOT DISTINCT FROM e."{k}"' for k in ds.natural_key)
        (duplicates,) = con.execute(
            f"SELECT count(*) FROM extra e WHERE EXISTS (SELECT 1 FROM truth t WHERE {same})").fetchone()
        out[dataset] = {"rows": rows, "distinct": distinct, "truth": total, "missing": missing, "extra": extra,
                        "duplicates": duplicates}
    con.close()
    return out


def _ddl(dataset: str) -> list[str]:
    ds = by_name(dataset)
    types = {c.name: c.type for c in ds.columns}
    return [f'"{k}" ' + ("BIGINT" if types[k] in ("int", "timestamp") else "VARCHAR") for k in ds.natural_key]
