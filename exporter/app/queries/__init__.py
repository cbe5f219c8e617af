"""Named SQL reports (the ``*.sql`` files beside this module, shipped as package data) and ad-hoc
SQL, run read-only on the DuckDB catalog.

A query file starts with a header of ``-- key: value`` lines::

    -- question: Who hosted the most meeting minutes?
    -- param: limit int 10          (name, type, default; repeatable)
    -- param: since date 1970-01-01
    -- example: webex-exporter query top_hosts --param limit=5

and uses DuckDB named parameters (``$limit``).  Values given with ``--param k=v`` are checked against
the declared type before the query runs, so a typo gives a clear error instead of a SQL one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ...config import Settings
from ...errors import ConfigError, WarehouseError

__all__ = ["NamedQuery", "load_queries", "run_query", "describe_queries", "QUERIES_DIR", "open_catalog"]

QUERIES_DIR = Path(__file__).resolve().parent  # the .sql files beside this module (package data)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CONVERT: dict[str, Callable[[str], object]] = {
    "int": int,
    "float": float,
    "str": str,
    "date": lambda v: date.fromisoformat(v),
    "timestamp": lambda v: datetime.fromisoformat(v),
}


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """One ``<name>.sql`` file of this package with its parsed header."""

    name: str
    question: str
    params: tuple[tuple[str, str, str], ...]  # (name, type, default)
    example: str
    sql: str

    def bind(self, given: dict[str, str]) -> dict[str, Any]:
        """Typed parameter values: given ones over defaults; unknown or ill-typed ones are errors."""
        declared = {name: (type_, default) for name, type_, default in self.params}
        problems = [f"--param {k}: query {self.name!r} has no such parameter" for k in given if k not in declared]
        values: dict[str, Any] = {}
        for name, (type_, default) in declared.items():
            raw = given.get(name, default)
            try:
                values[name] = _CONVERT[type_](raw)
            except (ValueError, KeyError):
                problems.append(f"--param {name}: expected {type_}, got {raw!r}")
        if problems:
            raise ConfigError(problems)
        return values


def _parse(path: Path) -> NamedQuery:
    header: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        key, sep, value = line[2:].strip().partition(":")
        if sep:
            header.setdefault(key.strip().lower(), []).append(value.strip())
    params = []
    for spec in header.get("param", []):
        parts = spec.split(None, 2)
        if len(parts) != 3 or parts[1] not in _CONVERT:
            raise ConfigError(f"{path}: bad '-- param: {spec}' (want: name type default; types {', '.join(_CONVERT)})")
        params.append((parts[0], parts[1], parts[2]))
    return NamedQuery(
        name=path.stem,
        question=" ".join(header.get("question", [""])),
        params=tuple(params),
        example=" ".join(header.get("example", [""])),
        sql=path.read_text(encoding="utf-8"),
    )


def load_queries(directory: Path = QUERIES_DIR) -> dict[str, NamedQuery]:
    """Every named query, by name."""
    return {p.stem: _parse(p) for p in sorted(directory.glob("*.sql")) if _NAME.match(p.stem)}


def describe_queries(directory: Path = QUERIES_DIR) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Rows for ``query --list``."""
    rows = [
        (q.name, q.question, ", ".join(f"{n}:{t}={d}" for n, t, d in q.params))
        for q in load_queries(directory).values()
    ]
    return ["name", "question", "parameters"], rows


def open_catalog(settings: Settings) -> Any:
    """A read-only connection to the catalog (safe while an export runs)."""
    from ...store.catalog_readers import open_reader

    path = Path(settings.warehouse.catalog)
    if not path.exists():
        raise WarehouseError(f"no catalog at {path} yet: run `webex-exporter run` (or `demo`) first")
    connection = open_reader(path)  # which checked the file by reading catalog_info
    (root,) = connection.execute("SELECT lake_root FROM catalog_info").fetchone() or ("",)
    if str(root).startswith("s3://"):
        # Read the S3 lake through pyarrow's client: DuckDB's httpfs may not be installable.
        from ...store.lake import Lake

        filesystem = Lake(str(root), s3_endpoint_url=settings.warehouse.s3_endpoint_url,
                          s3_region=settings.warehouse.s3_region).duckdb_filesystem()
        if filesystem is not None:
            connection.register_filesystem(filesystem)
    return connection


def run_query(
    settings: Settings, sql_or_name: str, params: tuple[str, ...] = (), *, directory: Path = QUERIES_DIR
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run a named query (with ``k=v`` params) or SQL text; returns (columns, rows)."""
    import duckdb

    given: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        given[key.strip()] = value
    queries = load_queries(directory)
    if _NAME.match(sql_or_name) and sql_or_name in queries:
        named = queries[sql_or_name]
        sql, values = named.sql, named.bind(given)
    elif _NAME.match(sql_or_name):
        hint = difflib.get_close_matches(sql_or_name, list(queries), n=1)
        raise ConfigError(f"no query named {sql_or_name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + "; see `webex-exporter query --list`")
    else:
        if given:
            raise ConfigError("--param applies to named queries only")
        sql, values = sql_or_name, {}
    connection = open_catalog(settings)
    try:
        cursor = connection.execute(sql, values) if values else connection.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()
    except _SQL_MISTAKES as exc:
        # The SQL is wrong (a typo, a missing table or column): the user's to fix, exit 2, with
        # DuckDB's own hints ("Did you mean ...?", the caret under the spot) kept.
        raise ConfigError(f"query failed: {str(exc).strip()}") from None
    except duckdb.Error as exc:
        raise WarehouseError(f"query failed: {str(exc).strip()}") from None
    finally:
        connection.close()


def _sql_mistakes() -> tuple[type[BaseException], ...]:
    import duckdb

    return (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException, duckdb.SyntaxException,
            duckdb.ConversionException, duckdb.InvalidInputException)


_SQL_MISTAKES = _sql_mistakes()
