"""Reading what landed: ``status`` (per site and dataset), ``query`` (SQL or a named query),
``report`` (the HTML dashboard) and ``schema`` (every table's columns)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ...errors import ConfigError
from .boundary import error_boundary
from .options import common_options, load_command_settings, parse_when, selection_options

__all__ = ["status", "query", "report", "schema"]


@click.command()
@common_options
@selection_options
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@error_boundary
def status(config_path: Path, debug: bool, sites: tuple[str, ...], datasets: tuple[str, ...], output: str) -> None:
    """Show per site and dataset: cursor, lag, last run and outcome, failed windows, gaps, rows.

    \b
    Example:
      webex-exporter status --format json
    """
    from ..reporting import print_rows, status_rows

    settings = load_command_settings(config_path, debug)
    columns, rows = status_rows(settings, sites=sites or None, datasets=datasets or None)
    print_rows(columns, rows, output)


@click.command()
@common_options
@click.argument("sql_or_name", required=False)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Parameter of a named query (repeatable).")
@click.option("--file", "sql_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="Read the SQL from this .sql file ('-' reads standard input).")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json", "ndjson"]), default="table",
              show_default=True)
@click.option("--list", "list_queries", is_flag=True,
              help="List the named queries (exporter/app/queries/) and their parameters.")
@error_boundary
def query(config_path: Path, debug: bool, sql_or_name: str | None, params: tuple[str, ...], sql_file: Path | None,
          output: str, list_queries: bool) -> None:
    """Run SQL text, or a named query (exporter/app/queries/), on the DuckDB catalog (read-only).

    \b
    Examples:
      webex-exporter query "select count(*) from meeting_usage"
      webex-exporter query top_hosts --param limit=5 --format csv
      webex-exporter query --file report.sql --format ndjson
      echo "select 1" | webex-exporter query --file -
      webex-exporter query --list
    """
    from ..queries import describe_queries, run_query
    from ..reporting import print_rows

    settings = load_command_settings(config_path, debug)
    if list_queries:
        print_rows(*describe_queries(), output)
        return
    if sql_file is not None:
        if sql_or_name:
            raise ConfigError("give the SQL either as an argument or with --file, not both")
        try:
            sql_or_name = sys.stdin.read() if str(sql_file) == "-" else sql_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--file {sql_file}: {exc.strerror or exc}") from None
        if not sql_or_name.strip():
            raise ConfigError(f"--file {sql_file}: no SQL in it")
    if not sql_or_name:
        raise ConfigError("give SQL text, a query name (see --list), or --file FILE")
    columns, rows = run_query(settings, sql_or_name, params)
    print_rows(columns, rows, output)


@click.command()
@common_options
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("warehouse/report.html"), show_default=True)
@click.option("--site", default=None, help="Only this site.")
@click.option("--since", help="Start of the period (UTC date).")
@click.option("--until", help="End of the period (UTC date).")
@error_boundary
def report(config_path: Path, debug: bool, output_path: Path, site: str | None, since: str | None, until: str | None) -> None:
    """Write a self-contained HTML dashboard (no network needed to view it).

    \b
    Example:
      webex-exporter report --site demo --since 2026-10-01 --output usage.html
    """
    from ..dashboard.report import write_report

    settings = load_command_settings(config_path, debug)
    path = write_report(settings, output_path, site=site, since=parse_when(since, "--since"), until=parse_when(until, "--until"))
    click.echo(f"wrote {path}")


@click.command()
@common_options
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json", "ndjson"]), default="table", show_default=True)
@error_boundary
def schema(config_path: Path, debug: bool, datasets: tuple[str, ...], output: str) -> None:
    """Print every table's columns: name, DuckDB type, the Webex element it comes from, and
    whether it is part of the row identity (natural key + _occurrence).  Needs no warehouse.

    \b
    Example:
      webex-exporter schema --dataset meeting_attendees --format json
    """
    from ...model.datasets import ALL_DATASETS
    from ...store.catalog import declared_columns
    from ..reporting import print_rows

    known = {d.name for d in ALL_DATASETS}
    unknown = [d for d in datasets if d not in known]
    if unknown:
        raise ConfigError(f"--dataset: unknown dataset {unknown[0]!r}; known: {', '.join(sorted(known))}")
    rows = []
    for ds in ALL_DATASETS:
        if datasets and ds.name not in datasets:
            continue
        identity = {*ds.identity_columns, "site", "_occurrence"}
        xml = {c.name: (f"{c.parent}/{c.element}" if c.parent else c.element) for c in ds.columns}
        rest = {f.column: f.path for f in (ds.rest.fields if ds.rest else ())}
        for name, type_ in declared_columns(ds):
            rows.append((ds.name, name, type_, xml.get(name), rest.get(name), name in identity))
    print_rows(["dataset", "column", "type", "webex_element", "rest_field", "identity"], rows, output)
