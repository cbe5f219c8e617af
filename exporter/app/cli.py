"""The ``webex-exporter`` command line: a thin shell over the library.

Every command takes ``--config`` and ``--debug``; :func:`_boundary` is the single place where an
:class:`~exporter.errors.ExporterError` becomes one clear line on stderr and an exit code (full
traceback only with ``--debug``).

Exit codes: 0 success; 1 finished but some windows or sites failed (details in ``status``);
2 bad usage or configuration; 3 a site refused our credentials; 4 warehouse problem (e.g. locked
by another exporter); 130 interrupted.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import AuthError, ConfigError, ExporterError, FatalSiteError, WarehouseError

if TYPE_CHECKING:
    from ..config import Settings
    from ..model.runs import RunOptions


__all__ = ["main", "cli", "EXIT_OK", "EXIT_PARTIAL", "EXIT_CONFIG", "EXIT_AUTH", "EXIT_WAREHOUSE"]

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_AUTH, EXIT_WAREHOUSE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

F = TypeVar("F", bound=Callable[..., Any])


def _exit_code(exc: ExporterError) -> int:
    """The exit code for an error, from its type alone (never its message)."""
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, (AuthError, FatalSiteError)):
        return EXIT_AUTH
    if isinstance(exc, WarehouseError):
        return EXIT_WAREHOUSE
    return EXIT_PARTIAL


def _boundary(func: F) -> F:
    """Turn our errors into one line + exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        try:
            return func(*args, **kwargs)
        except ExporterError as exc:
            from ..obs.logs import redact

            if debug:
                raise
            where = exc.where()  # the site, dataset, window it carries that its message does not name
            message = redact(f"{where}: {exc}" if where else str(exc))
            click.echo(f"error: {message}", err=True)
            sys.exit(_exit_code(exc))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def common_options(func: F) -> F:
    """``--config`` and ``--debug``, shared by every command."""
    func = click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")(func)
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("config.toml"),
        show_default=True,
        envvar="WEBEX_EXPORTER_CONFIG",
        help="Configuration file (env WEBEX_EXPORTER_CONFIG).",
    )(func)
    return func


def selection_options(func: F) -> F:
    """``--site`` and ``--dataset`` (repeatable), shared by run, backfill and status."""
    func = click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")(func)
    func = click.option("--site", "sites", multiple=True, help="Only this site (repeatable).")(func)
    return func


def _load(config_path: Path, debug: bool) -> Settings:
    from ..config import load_settings
    from ..obs.logs import configure_logging, register_secret

    settings = load_settings(config_path)
    for site in settings.sites:
        for secret in (site.password, site.access_token, site.rest.client_secret if site.rest else None):
            if secret is not None:
                register_secret(secret.reveal())
    configure_logging(settings.observability.log_format, "debug" if debug else settings.observability.log_level)
    return settings


def _parse_when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name}: not a date or time: {value!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _export_and_exit(settings: Settings, options: RunOptions) -> None:
    """Check the selection, run one export, print its summary, exit with its code."""
    from ..run.pipeline import run_once
    from ..run.planning import validate_options

    validate_options(settings, options)
    report = run_once(settings, options)
    click.echo(report.summary())
    sys.exit(report.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="webex-history-exporter")
def cli() -> None:
    """Keep your Webex Meetings history forever: exactly-once Parquet + a DuckDB catalog.

    \b
    Quick start (built-in simulator, no Webex site needed):
      webex-exporter demo
    """


@cli.command()
@common_options
@click.option("--keep/--fresh", default=False, help="Keep what an earlier demo landed (default: start fresh).")
@_boundary
def demo(config_path: Path, debug: bool, keep: bool) -> None:
    """Run the whole exporter against the built-in simulator and show what landed.

    Starts the simulator on a free loopback port, exports every dataset into the configured
    warehouse (default ./warehouse), prints row counts per table and an example query.

    \b
    Example:
      webex-exporter demo
    """
    from .demo import run_demo

    sys.exit(run_demo(config_path, fresh=not keep, debug=debug))


@cli.command()
@common_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address (keep it on loopback).")
@click.option("--port", type=int, default=None, help="Port (default: [simulator].port from the config, else 8765).")
@click.option("--profile", default=None, help="Built-in profile name or path to a TOML profile.")
@click.option("--seed", type=int, default=None, help="Random seed for the generated history.")
@click.option("--days", type=int, default=None, help="Days of history to generate.")
@click.option("--meetings-per-day", type=int, default=None, help="Meetings per day per site.")
@click.option("--attendees-per-meeting", type=int, default=None, help="Average attendees per meeting.")
@click.option("--latency-ms", type=float, default=None, help="Added latency per request.")
@click.option("--rate-limit", "rate_limit_per_minute", type=int, default=None, help="Requests per minute per API group, then 000045.")
@click.option("--fault", "faults", multiple=True, metavar="KIND=RATE", help="Random fault rate, e.g. http500=0.05 (repeatable).")
@click.option("--encoding", type=click.Choice(["UTF-8", "ISO-8859-1"]), default=None, help="Response encoding.")
@_boundary
def simulate(config_path: Path, debug: bool, **options: Any) -> None:
    """Run the Webex XML API simulator (a real HTTP server on loopback) until Ctrl-C.

    Point the exporter at it with the default config.toml; it prints its URL and demo credentials.

    \b
    Example:
      webex-exporter simulate --port 8765 --latency-ms 300 --rate-limit 600 --fault http500=0.02
    """
    from ..simulator import cli_main

    simulator_table: dict[str, Any] = {}
    if config_path.exists():
        import tomllib

        try:
            simulator_table = tomllib.loads(config_path.read_text(encoding="utf-8")).get("simulator", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML ({exc})") from None
    if options.get("port") is None:
        options["port"] = int(simulator_table.get("port", 8765))
    if options.get("profile") is None:
        options["profile"] = simulator_table.get("profile", "default")
    cli_main(**options)


@cli.command()
@common_options
@selection_options
@click.option("--since", help="Start of the range (UTC, YYYY-MM-DD[THH:MM]); default: cursor minus lookback.")
@click.option("--until", help="End of the range (UTC); default: now.")
@_boundary
def run(config_path: Path, debug: bool, sites: tuple[str, ...], datasets: tuple[str, ...], since: str | None, until: str | None) -> None:
    """Export once now: every due window of the chosen sites and datasets.

    Windows from (cursor - lookback) up to now, plus windows that failed before. Commits window by
    window, so an interrupted run loses nothing and resumes where it stopped.

    \b
    Example:
      webex-exporter run --site demo --dataset meeting_usage --since 2026-11-01 --until 2026-11-08
    """
    from ..model.runs import RunOptions

    settings = _load(config_path, debug)
    _export_and_exit(settings, RunOptions(
        sites=sites or None, datasets=datasets or None,
        since=_parse_when(since, "--since"), until=_parse_when(until, "--until"),
    ))


@cli.command()
@common_options
@selection_options
@_boundary
def backfill(config_path: Path, debug: bool, sites: tuple[str, ...], datasets: tuple[str, ...]) -> None:
    """Export everything the server still holds (the 90-day retention) for the chosen sites/datasets.

    Windows already committed are fetched again and merged by natural key (no duplicates).

    \b
    Example:
      webex-exporter backfill --site demo
    """
    from ..model.runs import RunOptions

    settings = _load(config_path, debug)
    _export_and_exit(settings, RunOptions(sites=sites or None, datasets=datasets or None, backfill=True))


@cli.command()
@common_options
@_boundary
def serve(config_path: Path, debug: bool) -> None:
    """Run as a background service: one scheduled job per site and dataset.

    No overlapping runs of a job, a lock so two exporters never write one warehouse, and a clean
    stop on SIGTERM/SIGINT (the window in flight is dropped, committed work stays).

    \b
    Example:
      webex-exporter serve --config /etc/webex-exporter/config.toml
    """
    from .scheduler import serve as serve_forever

    settings = _load(config_path, debug)
    sys.exit(asyncio.run(serve_forever(settings)))


@cli.command()
@common_options
@selection_options
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@_boundary
def status(config_path: Path, debug: bool, sites: tuple[str, ...], datasets: tuple[str, ...], output: str) -> None:
    """Show per site and dataset: cursor, lag, last run and outcome, failed windows, gaps, rows.

    \b
    Example:
      webex-exporter status --format json
    """
    from .reporting import print_rows, status_rows

    settings = _load(config_path, debug)
    columns, rows = status_rows(settings, sites=sites or None, datasets=datasets or None)
    print_rows(columns, rows, output)


@cli.command()
@common_options
@click.argument("sql_or_name", required=False)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Parameter of a named query (repeatable).")
@click.option("--file", "sql_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="Read the SQL from this .sql file ('-' reads standard input).")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json", "ndjson"]), default="table",
              show_default=True)
@click.option("--list", "list_queries", is_flag=True,
              help="List the named queries (exporter/app/queries/) and their parameters.")
@_boundary
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
    from .queries import describe_queries, run_query
    from .reporting import print_rows

    settings = _load(config_path, debug)
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


@cli.command()
@common_options
@selection_options
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@_boundary
def check(config_path: Path, debug: bool, sites: tuple[str, ...], datasets: tuple[str, ...], output: str) -> None:
    """Check each site: connectivity, credentials, privilege, its time zone, and which history
    operations it serves (a few requests per site; nothing is written).

    Exit code 0 when everything is fine, 1 with warnings or failures, 3 when a site refuses
    the credentials.

    \b
    Example:
      webex-exporter check --site acme
    """
    from ..webex.site_check import run_checks
    from .reporting import print_rows

    settings = _load(config_path, debug)
    names = sites or tuple(s.name for s in settings.sites)
    for name in names:
        settings.site(name)
    settings.require_secrets(names)
    lines = asyncio.run(run_checks(settings, names, datasets or None))
    print_rows(["site", "check", "status", "detail"], [(l.site, l.check, l.status, l.detail) for l in lines], output)
    if any(l.check == "credentials" and l.status == "fail" for l in lines):
        sys.exit(EXIT_AUTH)
    sys.exit(0 if all(l.status == "ok" for l in lines) else EXIT_PARTIAL)


@cli.command()
@common_options
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("warehouse/report.html"), show_default=True)
@click.option("--site", default=None, help="Only this site.")
@click.option("--since", help="Start of the period (UTC date).")
@click.option("--until", help="End of the period (UTC date).")
@_boundary
def report(config_path: Path, debug: bool, output_path: Path, site: str | None, since: str | None, until: str | None) -> None:
    """Write a self-contained HTML dashboard (no network needed to view it).

    \b
    Example:
      webex-exporter report --site demo --since 2026-10-01 --output usage.html
    """
    from .dashboard import write_report

    settings = _load(config_path, debug)
    path = write_report(settings, output_path, site=site, since=_parse_when(since, "--since"), until=_parse_when(until, "--until"))
    click.echo(f"wrote {path}")


@cli.command()
@common_options
@click.argument("action", type=click.Choice(["rebuild", "backup", "verify", "clear"]))
@click.option("--force", is_flag=True, help="rebuild: replace a state DB that still opens (default: only a damaged or missing one).")
@click.option("--no-backups", is_flag=True, help="rebuild: ignore the backups, use the lake's commit records alone.")
@click.option("--site", "clear_site", default=None, help="clear: the site whose dataset state is reset.")
@click.option("--dataset", "clear_dataset", default=None, help="clear: the dataset whose state is reset.")
@_boundary
def state(config_path: Path, debug: bool, action: str, force: bool, no_backups: bool, clear_site: str | None,
          clear_dataset: str | None) -> None:
    """Rebuild, back up or verify the exporter's private state DB (.webex-exporter/state.duckdb).

    The state DB says which files are committed, where each cursor is and which windows failed.
    A backup is written after every run (the newest 3 are kept in .webex-exporter/backups/) and
    every commit leaves a small record in the lake (<root>/_commits/), so a lost or damaged state
    DB can be rebuilt.

    \b
    rebuild  from the newest readable backup plus the newer commit records; the old file is kept
             beside it; windows within the retention no commit covers are listed for the next run
    backup   write a backup now
    verify   read every committed file's footer again (runs check new and changed files only); a
             damaged file leaves the catalog and its windows are fetched again by the next run;
             exit 1 while damaged files wait for that (local lakes only)
    clear    forget one dataset's cursor and failed windows (--site, --dataset): its next run lists
             all the retention holds again; landed data stays and is not duplicated

    \b
    Examples:
      webex-exporter state rebuild
      webex-exporter state verify
      webex-exporter state clear --site acme --dataset recording_access
    """
    from ..store.state_rebuild import rebuild_state
    from ..store.warehouse import Warehouse

    settings = _load(config_path, debug)
    if action == "clear":
        from ..config import ALL_DATASETS
        from ..store.state_reset import clear_dataset_state

        if not clear_site or not clear_dataset:
            raise ConfigError("state clear needs --site and --dataset (one dataset's state at a time)")
        settings.site(clear_site)
        if clear_dataset not in ALL_DATASETS:
            raise ConfigError(f"--dataset: unknown dataset {clear_dataset!r}; known: {', '.join(ALL_DATASETS)}")
        with Warehouse(settings.warehouse, export=settings.export) as warehouse:
            cleared = clear_dataset_state(warehouse, clear_site, clear_dataset)
        click.echo(f"cleared {clear_site}/{clear_dataset}: cursor {'reset' if cleared['cursor'] else 'was not set'}, "
                   f"{cleared['failed_windows']} failed window(s) dropped; the next run lists the whole retention")
        return
    if action == "rebuild":
        result = rebuild_state(settings.warehouse, export=settings.export, use_backups=not no_backups, force=force)
        click.echo(result.summary())
        return
    with Warehouse(settings.warehouse, export=settings.export) as warehouse:
        if action == "backup":
            click.echo(f"wrote {warehouse.backup_state()}")
            return
        found = warehouse.verify_lake(full=True)
        warehouse.publish()
        damaged = warehouse.damaged_files()
        checked = len(warehouse.store.manifest())
    for row in found:
        click.echo(f"damaged now: {row['site']}/{row['dataset']} {row['path']}: {row['problem']}")
    for row in damaged:
        click.echo(f"{row['state']}: {row['site']}/{row['dataset']} {row['path']} ({row['problem']}), "
                   f"found {row['detected_at']:%Y-%m-%d %H:%M}")
    click.echo(f"{checked} committed files readable; {len(damaged)} damaged file(s) not repaired")
    sys.exit(EXIT_PARTIAL if damaged else EXIT_OK)


@cli.command()
@common_options
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json", "ndjson"]), default="table", show_default=True)
@_boundary
def schema(config_path: Path, debug: bool, datasets: tuple[str, ...], output: str) -> None:
    """Print every table's columns: name, DuckDB type, the Webex element it comes from, and
    whether it is part of the row identity (natural key + _occurrence).  Needs no warehouse.

    \b
    Example:
      webex-exporter schema --dataset meeting_attendees --format json
    """
    from ..model.datasets import ALL_DATASETS
    from ..store.catalog import declared_columns
    from .reporting import print_rows

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


@cli.command()
@common_options
@click.option("--site", "site_name", required=True, help="The site (source 'rest' or 'auto') to authorize.")
@click.option("--code", default=None, help="An OAuth authorization code (from the redirect after approving).")
@click.option("--redirect-uri", default="", help="The redirect URI the code was issued for (with --code).")
@click.option("--print-url", is_flag=True, help="Print the URL an admin opens to approve the integration.")
@_boundary
def auth(config_path: Path, debug: bool, site_name: str, code: str | None, redirect_uri: str, print_url: bool) -> None:
    """Store a site's OAuth tokens for the REST source (once; the exporter renews them itself).

    Without --code, reads a refresh token from stdin (never from the command line, so it stays
    out of shell history), exchanges it once to prove it works, and stores the tokens Webex
    returns in the site's token file (owner-only; [sites.rest] token_file).

    \b
    Examples:
      webex-exporter auth --site acme --print-url --redirect-uri http://localhost:8080/callback
      webex-exporter auth --site acme --code <code> --redirect-uri http://localhost:8080/callback
      webex-exporter auth --site acme < refresh-token.txt
    """
    import asyncio
    import secrets as stdlib_secrets

    from ..config import Secret
    from ..model.datasets import by_name
    from ..obs.logs import register_secret
    from ..webex.rest.client import seed_tokens
    from ..webex.rest.scopes import authorize_url, required_scopes

    settings = _load(config_path, debug)
    site = settings.site(site_name)
    if site.rest is None:
        raise ConfigError(f"site {site_name!r} has no [sites.rest] table: nothing to authorize (source = {site.source!r})")
    if print_url:
        if not redirect_uri:
            raise ConfigError("--print-url needs --redirect-uri (the one registered with the integration)")
        scopes = required_scopes(by_name(d) for d in site.datasets if by_name(d).rest is not None)
        click.echo(authorize_url(site.rest, redirect_uri=redirect_uri, scopes=scopes, state=stdlib_secrets.token_urlsafe(12)))
        return
    settings.require_secrets([site_name])
    if code is None:
        if sys.stdin.isatty():
            click.echo("Paste the refresh token, then Enter:", err=True)
        value = sys.stdin.readline().strip()
        if not value:
            raise ConfigError("no refresh token on stdin (pipe it in: webex-exporter auth --site X < token.txt)")
        register_secret(value)
        tokens = asyncio.run(seed_tokens(site, refresh_token=Secret(value)))
    else:
        register_secret(code)
        tokens = asyncio.run(seed_tokens(site, code=Secret(code), redirect_uri=redirect_uri))
    register_secret(tokens.refresh_token.reveal())
    click.echo(f"site {site_name}: tokens stored in {site.rest.token_file} (scopes: {' '.join(tokens.scope) or 'not stated'})")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="webex-exporter")


if __name__ == "__main__":
    main()
