"""``report``: one self-contained HTML file with charts of the main reports and data freshness.

Charts are inline SVG drawn here (no JavaScript library, no fonts or images fetched), so the file
opens anywhere without a network.  Data comes from the named queries in ``queries/``, run
read-only on the catalog, for a chosen period and site.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from .config import Settings
from .queries import QUERIES_DIR, load_queries, open_catalog

__all__ = ["write_report", "render_report", "bar_chart_svg", "line_chart_svg"]

_PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 0 4px} .sub{color:#6b7280;margin-bottom:20px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:14px}
.card{overflow-x:auto} .card h2{font-size:15px;margin:0 0 8px} .empty{color:#9ca3af;font-style:italic;padding:30px 0;text-align:center}
table{border-collapse:collapse;font-size:12px;width:100%;white-space:nowrap} td,th{border-bottom:1px solid #e5e7eb;padding:4px 6px;text-align:left}
th{background:#f3f4f6} .num{text-align:right;font-variant-numeric:tabular-nums}
svg text{font-size:11px;fill:#374151}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%m-%d %H:%M")
    return str(value)


def bar_chart_svg(labels: Sequence[Any], series: dict[str, Sequence[float]], *, width: int = 460, height: int = 240) -> str:
    """Horizontal grouped bars: one row per label, one bar per series."""
    if not labels:
        return '<div class="empty">no data for this period</div>'
    left, right, top = 150, 60, 8
    names = list(series)
    row = min(30, max(14, (height - top) // max(len(labels), 1)))
    bar = max(4, (row - 4) // max(len(names), 1))
    height = top + row * len(labels) + 24
    peak = max((v or 0) for values in series.values() for v in values) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" class="chart bar">']
    for i, label in enumerate(labels):
        y = top + i * row
        parts.append(f'<text x="{left - 6}" y="{y + row / 2 + 4:.0f}" text-anchor="end">{_esc(str(label)[:24])}</text>')
        for j, name in enumerate(names):
            value = series[name][i] or 0
            w = (width - left - right) * value / peak
            parts.append(
                f'<rect x="{left}" y="{y + j * bar}" width="{w:.1f}" height="{bar - 1}" fill="{_PALETTE[j % len(_PALETTE)]}">'
                f"<title>{_esc(name)}: {_esc(_short(value))}</title></rect>"
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + j * bar + bar - 2}">{_esc(_short(value))}</text>')
    parts.append(_legend(names, 8, height - 8))
    parts.append("</svg>")
    return "".join(parts)


def line_chart_svg(xs: Sequence[Any], series: dict[str, Sequence[float]], *, width: int = 460, height: int = 240) -> str:
    """A line per series over ordered x labels (e.g. days)."""
    if not xs:
        return '<div class="empty">no data for this period</div>'
    left, right, top, bottom = 44, 12, 10, 40
    peak = max((v or 0) for values in series.values() for v in values) or 1
    span = max(len(xs) - 1, 1)

    def point(i: int, v: float) -> tuple[float, float]:
        return left + (width - left - right) * i / span, top + (height - top - bottom) * (1 - (v or 0) / peak)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" class="chart line">']
    parts.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#9ca3af"/>')
    parts.append(f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_esc(_short(peak))}</text>')
    parts.append(f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>')
    for j, values in enumerate(series.values()):
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, v) for i, v in enumerate(values)))
        parts.append(f'<polyline fill="none" stroke="{_PALETTE[j % len(_PALETTE)]}" stroke-width="2" points="{coords}"/>')
    last = len(xs) - 1
    for i in sorted({0, len(xs) // 2, last}):
        x, _ = point(i, 0)
        anchor = "start" if i == 0 else "end" if i == last else "middle"
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="{anchor}">{_esc(xs[i])}</text>')
    parts.append(_legend(list(series), left, height - 8))
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: list[str], x: int, y: int) -> str:
    out = []
    for j, name in enumerate(names):
        out.append(f'<rect x="{x + j * 140}" y="{y - 9}" width="10" height="10" fill="{_PALETTE[j % len(_PALETTE)]}"/>')
        out.append(f'<text x="{x + j * 140 + 14}" y="{y}">{_esc(name)}</text>')
    return "".join(out)


def _table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return '<div class="empty">no data</div>'
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{_esc(_short(v))}</td>' if isinstance(v, (int, float)) else f"<td>{_esc(_short(v))}</td>"
            for v in row
        ) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _run(connection: Any, name: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    query = load_queries(QUERIES_DIR)[name]
    given = {k: str(v) for k, v in params.items() if k in {p[0] for p in query.params}}
    cursor = connection.execute(query.sql, query.bind(given))
    return [d[0] for d in cursor.description], cursor.fetchall()


def render_report(connection: Any, *, site: str | None, since: date | None, until: date | None, title: str) -> str:
    """The dashboard HTML for an open catalog connection."""
    params: dict[str, Any] = {"site": site or "*"}
    if since:
        params["since"] = since.isoformat()
    if until:
        params["until"] = until.isoformat()
    cards: list[tuple[str, str]] = []

    _, daily = _run(connection, "meetings_per_day", params)
    cards.append(("Meetings and participants per day", line_chart_svg(
        [r[0].isoformat() for r in daily], {"meetings": [r[1] for r in daily], "participants": [r[2] for r in daily]}
    )))  # fmt: skip
    _, hosts = _run(connection, "top_hosts", {**params, "limit": 10})
    cards.append(("Top hosts (meetings)", bar_chart_svg([r[1] for r in hosts], {"meetings": [r[3] for r in hosts]})))
    _, sizes = _run(connection, "meeting_size_distribution", params)
    cards.append(("Meeting size (participants)", bar_chart_svg([r[0] for r in sizes], {"meetings": [r[1] for r in sizes]})))
    _, clients = _run(connection, "join_client_mix", params)
    cards.append(("How people join (client agent)", bar_chart_svg([r[0] for r in clients[:10]], {"joins": [r[1] for r in clients[:10]]})))
    _, audio = _run(connection, "audio_minutes_mix", params)
    cards.append(("Audio minutes by month", bar_chart_svg(
        [r[0] for r in audio], {"VoIP": [r[1] for r in audio], "call-in": [r[2] + r[3] for r in audio], "call-out": [r[4] + r[5] for r in audio]}
    )))  # fmt: skip
    columns, fresh = _run(connection, "data_freshness", params)
    cards.append(("Data freshness", _table(columns, fresh)))

    scope = f"site {site}" if site else "all sites"
    period = f"{since or 'beginning'} to {until or 'now'}"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f'<section class="card"><h2>{_esc(t)}</h2>{content}</section>' for t, content in cards)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{_esc(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
        f"<div class=\"sub\">{_esc(scope)} &middot; {_esc(period)} &middot; generated {_esc(generated)}</div>"
        f"<div class=\"grid\">{body}</div></body></html>"
    )


def write_report(
    settings: Settings, output: Path, *, site: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> Path:
    """Write the dashboard to ``output`` (atomically) and return its path."""
    if site is not None:
        settings.site(site)
    connection = open_catalog(settings)
    try:
        page = render_report(
            connection, site=site, since=since.date() if since else None, until=until.date() if until else None,
            title="Webex Meetings usage",
        )  # fmt: skip
    finally:
        connection.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(output.suffix + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(output)
    return output
