"""``report``: one self-contained HTML file with charts of the main reports and data freshness.

Data comes from the named queries (:mod:`exporter.app.queries`), run read-only on the catalog, for
a chosen period and site; the charts are drawn by :mod:`.charts` and laid out on the
page by :mod:`.page`.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...config import Settings
from ...errors import ConfigError
from ..queries import QUERIES_DIR, load_queries, open_catalog
from .charts import bar_chart_svg, line_chart_svg
from .page import data_table, render_page

if TYPE_CHECKING:
    import duckdb


__all__ = ["render_report", "write_report"]


def _run(connection: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    query = load_queries(QUERIES_DIR)[name]
    given = {k: str(v) for k, v in params.items() if k in {p[0] for p in query.params}}
    cursor = connection.execute(query.sql, query.bind(given))
    return [d[0] for d in cursor.description], cursor.fetchall()


def _when(value: date) -> str:
    if isinstance(value, datetime) and (value.hour, value.minute, value.second) != (0, 0, 0):
        return value.strftime("%Y-%m-%dT%H:%M" if value.second == 0 else "%Y-%m-%dT%H:%M:%S")
    return value.strftime("%Y-%m-%d")


def _check_period(since: date | None, until: date | None) -> None:
    """Refuse a period that ends before it starts (a report of it would be silently empty)."""
    if since is None or until is None:
        return
    a, b = since, until
    if isinstance(a, datetime) != isinstance(b, datetime):  # compare a date with a datetime by day
        a, b = (a.date() if isinstance(a, datetime) else a), (b.date() if isinstance(b, datetime) else b)
    elif isinstance(a, datetime) and isinstance(b, datetime):
        a, b = (x if x.tzinfo else x.replace(tzinfo=timezone.utc) for x in (a, b))
    if a > b:
        raise ConfigError(f"--since {_when(since)} is after --until {_when(until)}")


def render_report(connection: duckdb.DuckDBPyConnection, *, site: str | None, since: date | None, until: date | None, title: str) -> str:
    """The dashboard HTML for an open catalog connection.

    Raises :class:`~exporter.errors.ConfigError` when ``since`` is after ``until``."""
    _check_period(since, until)
    params: dict[str, Any] = {"site": site or "*"}
    if since:
        params["since"] = since.isoformat()
    if until:
        params["until"] = until.isoformat()
    cards: list[tuple[str, str, bool]] = []  # title, content, spans the whole row

    def chart(heading: str, draw: Any, *args: Any) -> None:
        cards.append((heading, draw(*args, label=heading), False))

    # Meetings and participants get a chart each rather than one chart with two y axes: a day has
    # tens of participants per meeting, so on a shared axis the meetings line lies flat, and two
    # axes invite comparing the heights of lines that are on different scales.  Side by side
    # (or one above the other on a phone) both keep the same days along x.
    _, daily = _run(connection, "meetings_per_day", params)
    days = [r[0] for r in daily]
    chart("Meetings per day", line_chart_svg, days, {"meetings": [r[1] for r in daily]})
    chart("Participants per day", line_chart_svg, days, {"participants": [r[2] for r in daily]})
    _, hosts = _run(connection, "top_hosts", {**params, "limit": 10})
    chart("Top hosts (meetings)", bar_chart_svg, [r[1] for r in hosts], {"meetings": [r[3] for r in hosts]})
    _, sizes = _run(connection, "meeting_size_distribution", params)
    chart("Meeting size (participants)", bar_chart_svg, [r[0] for r in sizes], {"meetings": [r[1] for r in sizes]})
    _, clients = _run(connection, "join_client_mix", params)
    chart("How people join (client agent)", bar_chart_svg, [r[0] for r in clients[:10]], {"joins": [r[1] for r in clients[:10]]})
    _, audio = _run(connection, "audio_minutes_mix", params)
    chart("Audio minutes by month", bar_chart_svg, [r[0] for r in audio],
          {"VoIP": [r[1] for r in audio], "call-in": [r[2] + r[3] for r in audio], "call-out": [r[4] + r[5] for r in audio]})
    columns, fresh = _run(connection, "data_freshness", params)
    cards.append(("Data freshness", data_table(columns, fresh), True))

    scope = f"site {site}" if site else "all sites"
    period = f"{since or 'beginning'} to {until or 'now'}"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return render_page(title, f"{scope} · {period} · generated {generated}", cards)


def write_report(
    settings: Settings, output: Path, *, site: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> Path:
    """Write the dashboard to ``output`` (atomically) and return its path.

    Raises :class:`~exporter.errors.ConfigError` (the CLI's exit 2) when ``since`` is after
    ``until``, before anything is read or written."""
    _check_period(since, until)
    if site is not None:
        settings.site(site)
    connection = open_catalog(settings)
    try:
        page = render_report(
            connection, site=site, since=since.date() if since else None, until=until.date() if until else None,
            title="Webex Meetings usage",
        )
    finally:
        connection.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(output.suffix + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(output)
    return output
