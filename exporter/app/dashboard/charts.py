"""The HTML report's charts: inline SVG drawn here (no JavaScript library, no fonts or images
fetched), so the page opens anywhere without a network.

Every chart is drawn in a fixed coordinate system (a ``viewBox`` :data:`CHART_WIDTH` units wide)
and scaled by the browser to the width of its card, so text keeps its place relative to the
bars and lines at any screen width.  Without JavaScript the page cannot measure text, so the
layout estimates text widths (:func:`text_width`, deliberately on the wide side) to decide how
many axis labels fit, where legend entries go and how much room labels need.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["CHART_WIDTH", "FONT_SIZE", "bar_chart_svg", "display_label", "esc", "line_chart_svg", "short", "text_width"]

CHART_WIDTH = 420
"""Width of every chart's coordinate system (its ``viewBox``), in SVG user units."""

FONT_SIZE = 11  # chart text size in user units; the page's CSS (``svg text``) sets the same
_LINE = 16  # height of one legend line
_PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2")
_MAX_MARKERS = 62  # up to about two months of days get a hoverable dot per point
_SORT_PREFIX = re.compile(r"^\d{1,3}:\s+")

# Advance widths (in em) of DejaVu Sans, the widest of the usual system-ui fallbacks, grouped
# coarsely: an estimate that errs wide leaves a little space rather than letting labels collide.
_NARROW = frozenset(" .,:;'|!ilIj")
_SLIM = frozenset("ftr-()[]/\"")
_WIDE = frozenset("mwMW%@")


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Estimated rendered width of ``text`` at font ``size`` (user units), erring on the wide side."""
    total = 0.0
    for char in text:
        if char in _NARROW:
            total += 0.32
        elif char in _SLIM:
            total += 0.42
        elif char in _WIDE:
            total += 0.98
        elif char.isdigit() or char.islower():
            total += 0.64
        elif ord(char) >= 0x2E80:  # CJK and the like are a full em
            total += 1.0
        else:
            total += 0.76
    return total * size


def display_label(value: Any) -> str:
    """How a category or x value is shown: dates as ISO dates, and without a sort prefix.

    Some queries order their buckets by a key such as ``"02: 3-5"``; the rows arrive in that
    order, so the prefix is dropped here for display and the order is kept."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return _SORT_PREFIX.sub("", "" if value is None else str(value))


def esc(value: Any) -> str:
    """``value`` as HTML text (None is empty), quotes escaped too."""
    return html.escape("" if value is None else str(value), quote=True)


def short(value: Any) -> str:
    """A value as a chart or table shows it: thousands separated, one decimal, dates without the year."""
    if isinstance(value, (float, Decimal)):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%m-%d %H:%M")
    return str(value)


def _fit(text: str, room: float) -> str:
    """``text`` cut (with an ellipsis) to fit ``room`` user units."""
    if text_width(text) <= room:
        return text
    while text and text_width(text + "…") > room:
        text = text[:-1]
    return text.rstrip() + "…"


def _label(x: float, y: float, text: str, room: float, anchor: str = "start") -> str:
    """A ``<text>`` that fits ``room``; when cut short, its full text is in a ``<title>`` (a tooltip)."""
    shown = _fit(text, room)
    tip = f"<title>{esc(text)}</title>" if shown != text else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{tip}{esc(shown)}</text>'


def _svg_open(width: float, height: float, kind: str, label: str) -> str:
    # No width/height in pixels: the viewBox sets the proportions, CSS the size (width 100%).
    # xMinYMin keeps the chart at the top left should a container ever force another ratio.
    aria = f' aria-label="{esc(label)}"' if label else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {math.ceil(width)} {math.ceil(height)}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" class="chart {kind}"{aria}>'
    )


def _legend(names: Sequence[str], x0: float, y0: float, width: float) -> tuple[str, float]:
    """Legend entries placed one after another by their text's length, wrapping to a new line
    when the next would pass the right edge; returns the SVG and the height it takes."""
    out: list[str] = []
    x, y, swatch, gap = x0, y0, 10, 14
    for j, name in enumerate(names):
        room = width - x0 - swatch - 4
        shown = _fit(name, room)
        item = swatch + 4 + text_width(shown)
        if x > x0 and x + item > width:
            x, y = x0, y + _LINE
        out.append(f'<rect class="swatch" x="{x:.1f}" y="{y + 2:.1f}" width="{swatch}" height="{swatch}" '
                   f'fill="{_PALETTE[j % len(_PALETTE)]}"/>')
        out.append(_label(x + swatch + 4, y + 11, name, room))
        x += item + gap
    return "".join(out), (y - y0 + _LINE) if names else 0


def bar_chart_svg(labels: Sequence[Any], series: dict[str, Sequence[float]], *, width: int = CHART_WIDTH, label: str = "") -> str:
    """Horizontal grouped bars: one row per label, one bar per series, each value written after its bar.

    Labels longer than their column are cut with an ellipsis and keep their full text as a
    tooltip; the right margin is as wide as the longest value, so values stay inside the chart.
    ``label`` names the chart for screen readers."""
    if not labels:
        return '<div class="empty">no data for this period</div>'
    names = list(series)
    shown = [display_label(v) for v in labels]
    texts = {name: [short(series[name][i] or 0) for i in range(len(labels))] for name in names}
    values = {name: [max(_number(series[name][i]), 0.0) for i in range(len(labels))] for name in names}
    # the label column takes what the longest label needs, up to 40% of the width
    room = min(max(text_width(s) for s in shown), width * 0.4)
    left = room + 10
    right = max(text_width(t) for ts in texts.values() for t in ts) + 8
    bar = 16  # a value label (11 units, 13 with descenders) must fit beside each bar, clear of the next
    row = bar * len(names) + 8
    top = 4
    plot = max(width - left - right, 1.0)
    peak = max((v for vs in values.values() for v in vs), default=0) or 1
    legend, legend_height = _legend(names, 4, top + row * len(labels) + 6, width)
    height = top + row * len(labels) + 6 + legend_height + 4
    parts = [_svg_open(width, height, "bar", label)]
    parts.append(f'<line x1="{left:.1f}" y1="{top}" x2="{left:.1f}" y2="{top + row * len(labels) - 4}" stroke="#d1d5db"/>')
    for i, text in enumerate(shown):
        y = top + i * row
        parts.append(_label(left - 6, y + (row - 8) / 2 + 4, text, room, "end"))
        for j, name in enumerate(names):
            value = values[name][i]
            w = plot * value / peak
            by = y + j * bar
            parts.append(
                f'<rect x="{left:.1f}" y="{by + 1:.1f}" width="{w:.1f}" height="{bar - 2}" fill="{_PALETTE[j % len(_PALETTE)]}">'
                f"<title>{esc(text)} · {esc(name)}: {esc(texts[name][i])}</title></rect>"
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{by + bar / 2 + 4:.1f}">{esc(texts[name][i])}</text>')
    parts.append(legend)
    parts.append("</svg>")
    return "".join(parts)


def _number(value: Any) -> float:
    """A value as a float for drawing (counts come as int, sums may be Decimal; None is 0)."""
    return float(value or 0)


def _tick_text(value: float, step: float) -> str:
    """An axis tick: a whole number when the step is one, else only the decimals it needs."""
    if float(step).is_integer():
        return f"{round(value):,}"
    return f"{value:,.6f}".rstrip("0").rstrip(".")  # six places hide the float noise of k * step


def _nice_ticks(peak: float, integers: bool) -> list[float]:
    """Round y-axis ticks from 0 to at least ``peak``: three to five of them, steps of 1, 2, 2.5 or 5 x 10^n."""
    peak = peak if peak > 0 else 1
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = 10 * magnitude
    for m in (1, 2, 2.5, 5, 10):
        candidate = m * magnitude
        if integers and candidate != int(candidate):
            continue  # counts never get a tick at 2.5
        if candidate >= raw:
            step = candidate
            break
    step = max(step, 1) if integers else step
    count = math.ceil(peak / step - 1e-9)
    return [step * k for k in range(count + 1)]


def _thin(centres: Sequence[float], widths: Sequence[float], width: float, gap: float = 10) -> list[tuple[int, float]]:
    """The x labels to draw, as (index, centre): every k-th label for the smallest k at which none
    overlap, and the last one (the end of the period) in place of the k-th before it when both do
    not fit; each is kept inside 0..width."""

    def place(i: int) -> float:
        half = widths[i] / 2
        return min(max(centres[i], half + 1), width - half - 1)

    def clear(a: int, b: int) -> bool:
        return place(b) - widths[b] / 2 - (place(a) + widths[a] / 2) >= gap

    n = len(centres)
    chosen = [0]
    for k in range(1, n + 1):
        chosen = list(range(0, n, k))
        if all(clear(a, b) for a, b in zip(chosen, chosen[1:])):
            break
    if chosen[-1] != n - 1:
        if not clear(chosen[-1], n - 1):
            chosen.pop()
        if not chosen or clear(chosen[-1], n - 1):
            chosen.append(n - 1)
    return [(i, place(i)) for i in chosen]


def line_chart_svg(xs: Sequence[Any], series: dict[str, Sequence[float]], *, width: int = CHART_WIDTH, height: int = 200,
                   label: str = "") -> str:
    """A line per series over ordered x labels (e.g. days), on one y axis from 0 with round ticks.

    Every series shares that axis: draw measures of different sizes as separate charts.  Only
    as many x labels are drawn as fit without overlapping; with few points each has a dot whose
    tooltip gives its value.  ``height`` is that of the plot and its axes, the legend (when there
    is more than one series) comes below; ``label`` names the chart for screen readers."""
    if not xs:
        return '<div class="empty">no data for this period</div>'
    names = list(series)
    values = {name: [_number(v) for v in series[name]] for name in names}
    integers = all(v.is_integer() for vs in values.values() for v in vs)
    ticks = _nice_ticks(max((v for vs in values.values() for v in vs), default=0), integers)
    tick_texts = [_tick_text(t, ticks[1] - ticks[0]) for t in ticks]
    shown = [display_label(x) for x in xs]
    # room for the first and last x labels centred on their points, and for the y tick labels
    left = max(max(text_width(t) for t in tick_texts) + 10, text_width(shown[0]) / 2 + 2)
    right, top, bottom = max(8, text_width(shown[-1]) / 2 + 2), 8, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    base = top + plot_h
    n = len(xs)

    def px(i: int) -> float:
        return left + plot_w / 2 if n == 1 else left + plot_w * i / (n - 1)

    def py(v: float) -> float:
        return base - plot_h * v / ticks[-1]

    legend, legend_height = _legend(names, 4, height, width) if len(names) > 1 else ("", 0)
    parts = [_svg_open(width, height + legend_height + (4 if legend_height else 0), "line", label)]
    for tick, text in zip(ticks, tick_texts):
        y = py(tick)
        stroke = "#9ca3af" if tick == 0 else "#eef0f3"  # the x axis, then faint gridlines
        parts.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{width - right:.1f}" y2="{y:.1f}" stroke="{stroke}"/>')
        parts.append(f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{esc(text)}</text>')
    for i, centre in _thin([px(i) for i in range(n)], [text_width(s) for s in shown], width):
        parts.append(f'<line x1="{px(i):.1f}" y1="{base:.1f}" x2="{px(i):.1f}" y2="{base + 4:.1f}" stroke="#9ca3af"/>')
        parts.append(f'<text x="{centre:.1f}" y="{base + 19:.1f}" text-anchor="middle">{esc(shown[i])}</text>')
    for j, name in enumerate(names):
        colour = _PALETTE[j % len(_PALETTE)]
        coords = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(values[name]))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        if n <= _MAX_MARKERS:
            parts.extend(
                f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="2.5" fill="{colour}">'
                f"<title>{esc(shown[i])}: {esc(short(series[name][i] or 0))} {esc(name)}</title></circle>"
                for i, v in enumerate(values[name])
            )
    parts.append(legend)
    parts.append("</svg>")
    return "".join(parts)
