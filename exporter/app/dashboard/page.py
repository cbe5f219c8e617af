"""The HTML report's page: its grid of cards, its stylesheet and its data tables (the charts
come from :mod:`.charts`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .charts import CHART_WIDTH, FONT_SIZE, esc, short

__all__ = ["data_table", "render_page"]

# Upscaling is capped (CSS max-width) so that text on a wide card stays near 14 px.
_CSS = f"""
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111827;background:#f9fafb}}
h1{{font-size:22px;margin:0 0 4px}} .sub{{color:#6b7280;margin-bottom:20px}}
.grid{{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr));gap:16px}}
.card{{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:14px;min-width:0}}
.card.wide{{grid-column:1/-1}} .card h2{{font-size:15px;margin:0 0 8px}}
.empty{{color:#9ca3af;font-style:italic;padding:30px 0;text-align:center}}
svg.chart{{display:block;width:100%;height:auto;max-width:{round(CHART_WIDTH * 1.33)}px}}
svg text{{font-size:{FONT_SIZE}px;fill:#374151}}
.table-scroll{{overflow-x:auto;max-width:100%}}
table{{border-collapse:collapse;font-size:12px;width:100%}}
td,th{{border-bottom:1px solid #e5e7eb;padding:4px 6px;text-align:left}}
th{{background:#f3f4f6;vertical-align:bottom}} td{{white-space:nowrap}} td.text{{white-space:normal}}
.num{{text-align:right;font-variant-numeric:tabular-nums}}
@media (max-width:520px){{body{{margin:10px}} .grid{{gap:10px}} .card{{padding:10px}}}}
"""


def data_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A table that scrolls sideways inside its card when it is wider than the card."""
    if not rows:
        return '<div class="empty">no data</div>'
    # headers wrap between words; identifiers such as dataset names may break after an underscore
    numeric = [all(isinstance(r[i], (int, float, Decimal)) for r in rows if r[i] is not None) for i in range(len(columns))]
    head = "".join(
        f'<th class="num">{esc(c.replace("_", " "))}</th>' if num else f"<th>{esc(c.replace('_', ' '))}</th>"
        for c, num in zip(columns, numeric)
    )

    def cell(v: Any) -> str:
        if v is None:
            return "<td>—</td>"  # e.g. a dataset that never ran: no cursor, no last run
        if isinstance(v, (int, float, Decimal)):
            return f'<td class="num">{esc(short(v))}</td>'
        if isinstance(v, (date, datetime)):
            return f"<td>{esc(short(v))}</td>"
        return f'<td class="text">{esc(short(v)).replace("_", "_<wbr>")}</td>'

    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f'<div class="table-scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def render_page(title: str, subtitle: str, cards: Sequence[tuple[str, str, bool]]) -> str:
    """A dashboard page: ``cards`` are (heading, HTML content, whether it spans the whole row),
    laid out in a grid of as many columns as fit (one on a phone)."""
    body = "".join(
        f'<section class="card{" wide" if wide else ""}"><h2>{esc(t)}</h2>{content}</section>' for t, content, wide in cards
    )
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{esc(title)}</h1>"
        f"<div class=\"sub\">{esc(subtitle)}</div>"
        f"<div class=\"grid\">{body}</div></body></html>"
    )
