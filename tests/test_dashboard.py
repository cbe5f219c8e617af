"""The HTML dashboard: its SVG charts as drawn, and the page in a real headless browser (Debian's
Chromium, installed by scripts/test) at a desktop and a phone width.

The browser test drives Chromium over its DevTools protocol (the page itself has no script):
it measures every chart label where Chromium laid it out, fails on any that overlap or pass
their chart's edge, and on a page that scrolls sideways.  Screenshots are kept for people to
look at: ``test-artifacts/dashboard.png`` (1280 px wide) and ``dashboard-narrow.png`` (390 px).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli, write_config

from exporter.app.dashboard.charts import CHART_WIDTH, bar_chart_svg, line_chart_svg, text_width
from exporter.app.dashboard.page import render_page
from exporter.app.dashboard.report import write_report
from exporter.app.queries import run_query
from exporter.errors import ConfigError
from exporter.model.runs import RunOptions
from exporter.run.pipeline import export
from exporter.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--enable-logging=stderr", "--v=0",
]
SVG = "{http://www.w3.org/2000/svg}"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (scripts/test installs Debian's chromium)")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Settings of a warehouse holding a small simulator export (in ``<dir>/warehouse``)."""
    from conftest import exporter_settings_dict

    from exporter.config import parse_settings
    from exporter.simulator import SimulatorConfig, run_in_thread

    root = tmp_path_factory.mktemp("dash")
    with run_in_thread(SimulatorConfig.small(days=5, meetings_per_day=9)) as sim:
        settings = parse_settings(exporter_settings_dict(sim.url, str(root / "warehouse")), env={"WEBEX_TEST_PW": "sim-password"})

        async def main() -> None:
            with Warehouse(settings.warehouse, export=settings.export) as warehouse:
                await export(settings, RunOptions(now=sim.clock.now()), warehouse=warehouse)

        asyncio.run(main())
    return settings


@pytest.fixture(scope="module")
def report_html(exported) -> Path:
    return write_report(exported, Path(exported.warehouse.root).parent / "report.html", site="demo")


# -- reading the SVG back ------------------------------------------------------------------------


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return root


def shown(text: ET.Element) -> str:
    """A <text>'s visible string: its own text and its children's tails, not a <title> tooltip."""
    return (text.text or "") + "".join(child.tail or "" for child in text)


def tooltip(element: ET.Element) -> str | None:
    title = element.find(SVG + "title")
    return None if title is None else title.text


def extent(text: ET.Element) -> tuple[float, float]:
    """Left and right of a <text> as the dashboard estimates them (the browser test measures them for real)."""
    x, width = float(text.get("x")), text_width(shown(text))
    anchor = text.get("text-anchor", "start")
    left = x if anchor == "start" else x - width if anchor == "end" else x - width / 2
    return left, left + width


def view_width(root: ET.Element) -> float:
    box = root.get("viewBox")
    return float(box.split()[2]) if box else float(root.get("width"))


def assert_texts_inside(root: ET.Element) -> None:
    width = view_width(root)
    for text in root.iter(SVG + "text"):
        left, right = extent(text)
        assert 0 <= left and right <= width, (shown(text), left, right, width)


def x_labels(root: ET.Element) -> list[ET.Element]:
    """The x-axis labels of a chart over days or times (the texts that are dates)."""
    return [t for t in root.iter(SVG + "text") if re.match(r"\d{4}-\d\d-\d\d", shown(t))]


def cards(html: str) -> dict[str, str]:
    """Each card's content by its heading."""
    return {title: body for title, body in re.findall(r'<section class="card[^"]*"><h2>(.*?)</h2>(.*?)</section>', html, re.S)}


def tick_values(svg: str) -> list[float]:
    """The y-axis tick labels of a line chart (the right-aligned texts)."""
    return [float(shown(t).replace(",", "")) for t in parse(svg).iter(SVG + "text") if t.get("text-anchor") == "end"]


# -- the page as a whole -------------------------------------------------------------------------


def test_the_report_is_self_contained(report_html):
    html = report_html.read_text(encoding="utf-8")
    assert html.count("<svg") >= 5
    for forbidden in ("http://", "https://", "<script", "@import", "url("):
        # the only URL allowed is the SVG namespace, which browsers never fetch
        assert html.replace('xmlns="http://www.w3.org/2000/svg"', "").count(forbidden) == 0, forbidden


def test_charts_escape_text_and_handle_no_data():
    assert "no data" in bar_chart_svg([], {"x": []})
    assert "no data" in line_chart_svg([], {"x": []})
    svg = bar_chart_svg(["<b>&co"], {"meetings": [3]})
    assert "&lt;b&gt;&amp;co" in svg and "<b>" not in svg
    parse(line_chart_svg(["<i>"], {"a&b": [1]}))  # well-formed (escaped) with a single point


# -- 1. responsive charts ------------------------------------------------------------------------


def test_charts_scale_to_their_card_instead_of_a_fixed_width(report_html):
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(10)]
    drawn = [bar_chart_svg(["a", "b"], {"n": [1, 2]}), line_chart_svg(days, {"n": list(range(10))})]
    drawn += re.findall(r"<svg.*?</svg>", report_html.read_text(encoding="utf-8"), re.S)
    assert len(drawn) >= 8
    for svg in drawn:
        root = parse(svg)
        x, y, width, height = (float(v) for v in root.get("viewBox").split())
        assert (x, y, width) == (0, 0, CHART_WIDTH) and height > 0
        # sized by CSS to the card: no pixel width or height, proportions kept, anchored top left
        assert root.get("width") == "100%" and root.get("height") is None
        assert root.get("preserveAspectRatio") == "xMinYMin meet"


# -- 2. meetings and participants ----------------------------------------------------------------


def test_meetings_and_participants_have_a_chart_and_an_axis_each(exported, report_html):
    charts = cards(report_html.read_text(encoding="utf-8"))
    assert "Meetings and participants per day" not in charts
    _, daily = run_query(exported, "meetings_per_day", ("site=demo",))
    most_meetings, most_participants = max(r[1] for r in daily), max(r[2] for r in daily)
    assert most_participants > 2 * most_meetings  # the reason for two charts: very different sizes
    for title, peak in (("Meetings per day", most_meetings), ("Participants per day", most_participants)):
        svg = charts[title]
        assert svg.count("<polyline") == 1, title
        top = max(tick_values(svg))
        assert peak <= top < 2 * peak, (title, peak, top)  # each axis fits its own series


# -- 3. overlapping labels -----------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 7, 31, 92, 365])
def test_day_labels_are_thinned_to_as_many_as_fit(count):
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(count)]
    root = parse(line_chart_svg(days, {"meetings": [i % 7 for i in range(count)]}))
    labels = x_labels(root)
    spans = sorted(extent(t) for t in labels)
    assert all(a[1] + 8 <= b[0] for a, b in zip(spans, spans[1:])), spans  # no two touch
    assert_texts_inside(root)
    # and the room is used: an ISO date is about 70 units wide, the plot about 380
    assert len(labels) == count if count <= 4 else 4 <= len(labels) <= 6, len(labels)
    assert shown(labels[0]) == "2026-01-01" and {shown(t) for t in labels} <= {d.isoformat() for d in days}


def test_long_time_labels_are_thinned_too():
    moments = [datetime(2026, 3, 1, 8, tzinfo=timezone.utc) + timedelta(hours=i) for i in range(24)]
    root = parse(line_chart_svg(moments, {"joins": list(range(24))}))
    spans = sorted(extent(t) for t in x_labels(root))
    assert 2 <= len(spans) <= 4 and all(a[1] < b[0] for a, b in zip(spans, spans[1:]))
    assert_texts_inside(root)


def test_long_bar_labels_are_cut_and_keep_their_full_text_as_a_tooltip():
    long = "Webex Meetings Desktop App 44.10.0.123 (Windows 11 Enterprise)"
    root = parse(bar_chart_svg([long, "iOS"], {"joins": [40, 2]}))
    first, second = [t for t in root.iter(SVG + "text") if t.get("text-anchor") == "end"]
    assert shown(first).endswith("…") and long.startswith(shown(first)[:-1].rstrip())
    assert tooltip(first) == long
    assert shown(second) == "iOS" and tooltip(second) is None  # short labels are left alone
    assert extent(first)[1] - extent(first)[0] <= CHART_WIDTH * 0.4
    assert_texts_inside(root)


def test_value_labels_stay_inside_the_chart():
    root = parse(bar_chart_svg(["a", "b"], {"minutes": [1_234_567.8, 5.0], "calls": [98_765_432, 1]}))
    values = [t for t in root.iter(SVG + "text") if re.fullmatch(r"[\d,.]+", shown(t))]
    assert all(t.get("text-anchor", "start") == "start" for t in values)  # written after the bar
    assert {shown(t) for t in values} == {"1,234,567.8", "5.0", "98,765,432", "1"}
    assert_texts_inside(root)
    # bars of one group are stacked, each value beside its own bar without touching the next one
    ys = sorted(float(t.get("y")) for t in values)
    assert all(b - a >= 14 for a, b in zip(ys, ys[1:])), ys


def test_legend_entries_are_placed_by_their_length_and_wrap():
    names = ["a rather long series name", "b", "another long one, too", "d", "the fifth series of this chart"]
    root = parse(bar_chart_svg(["x"], {n: [i + 1] for i, n in enumerate(names)}))
    texts = {shown(t): t for t in root.iter(SVG + "text")}
    rows: dict[float, list[tuple[float, float]]] = {}
    for name in names:
        rows.setdefault(float(texts[name].get("y")), []).append(extent(texts[name]))
    assert len(rows) >= 2  # five long names do not fit on one line of a 420-unit chart
    for spans in rows.values():
        spans.sort()
        assert all(a[1] + 10 <= b[0] for a, b in zip(spans, spans[1:])), spans
    swatches = [float(r.get("x")) for r in root.iter(SVG + "rect") if r.get("class") == "swatch"]
    assert len(swatches) == len(names) and len(set(swatches)) < len(names)  # a new line starts at the left again
    assert_texts_inside(root)


# -- 4. sort prefixes ----------------------------------------------------------------------------


def test_sort_prefixes_are_hidden_and_the_order_kept(report_html):
    root = parse(bar_chart_svg(["01: 1-2", "02: 3-5", "06: over 100", "unknown"], {"meetings": [5, 4, 1, 2]}))
    labels = [shown(t) for t in root.iter(SVG + "text") if t.get("text-anchor") == "end"]
    assert labels == ["1-2", "3-5", "over 100", "unknown"]
    assert "01: " not in ET.tostring(root, encoding="unicode")
    size = cards(report_html.read_text(encoding="utf-8"))["Meeting size (participants)"]
    buckets = [shown(t) for t in parse(size).iter(SVG + "text") if t.get("text-anchor") == "end"]
    assert buckets and buckets == sorted(buckets, key=lambda b: (b == "unknown", int(b.split("-")[0].split()[-1])))
    assert not any(re.match(r"\d+: ", b) for b in buckets), buckets


# -- 5. the freshness table ----------------------------------------------------------------------


def test_the_freshness_table_wraps_and_scrolls_inside_its_card(report_html):
    html = report_html.read_text(encoding="utf-8")
    assert '<section class="card wide"><h2>Data freshness</h2><div class="table-scroll"><table>' in html
    assert re.search(r"\.table-scroll\{overflow-x:auto", html)
    table = cards(html)["Data freshness"]
    assert '<th class="num">lag hours</th>' in table  # headers break between words, numbers align right
    assert "meeting_<wbr>attendees" in table  # dataset names may break after an underscore
    # where it lands in a browser, at either width, is checked by the layout test below


# -- 6. an inverted period -----------------------------------------------------------------------


def test_an_inverted_period_is_refused_before_anything_is_written(exported, tmp_path):
    output = tmp_path / "report.html"
    since, until = datetime(2026, 11, 20, tzinfo=timezone.utc), datetime(2026, 11, 1, tzinfo=timezone.utc)
    with pytest.raises(ConfigError) as refused:
        write_report(exported, output, since=since, until=until)
    assert str(refused.value) == "--since 2026-11-20 is after --until 2026-11-01"
    with pytest.raises(ConfigError, match=r"^--since 2026-11-01T10:00 is after --until 2026-11-01T08:30$"):
        write_report(exported, output, since=since.replace(day=1, hour=10), until=until.replace(hour=8, minute=30))
    assert not output.exists() and not list(tmp_path.iterdir())
    write_report(exported, output, since=until, until=until)  # an empty period is not an inverted one
    assert output.exists()


def test_the_report_command_exits_2_on_an_inverted_period(exported, tmp_path):
    # the config's relative warehouse is the exported one: without the check a report is written
    config = write_config(Path(exported.warehouse.root).parent / "config.toml", "http://127.0.0.1:9")
    output = tmp_path / "r.html"
    done = cli("report", "--since", "2026-11-20", "--until", "2026-11-01", "--output", str(output), config=config)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines()[-1] == "error: --since 2026-11-20 is after --until 2026-11-01"
    assert not output.exists()


# -- 7. in a browser -----------------------------------------------------------------------------


@needs_chromium
def test_dashboard_renders_in_headless_chromium(report_html, tmp_path):
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *profile, "--dump-dom", report_html.as_uri()],
                         capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") >= 6 and "Meetings per day" in dom.stdout and "Participants per day" in dom.stdout
    assert "polyline" in dom.stdout and "<rect" in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console


# Run in the page by the DevTools protocol (the page has no script of its own): everything that
# can be seen to overlap or overflow, in CSS pixels as Chromium laid the page out.
LAYOUT_CHECK = r"""
(() => {
  const problems = [], slack = 0.5;
  const view = document.documentElement.clientWidth, page = document.documentElement.scrollWidth;
  if (page > view + slack) problems.push(`the page is ${page}px wide in a ${view}px window: it scrolls sideways`);
  const inside = (a, b) => a.left >= b.left - slack && a.right <= b.right + slack && a.top >= b.top - slack && a.bottom <= b.bottom + slack;
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > slack
                         && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > slack;
  const label = e => e.tagName === 'text' ? JSON.stringify(e.textContent) : `a ${e.getAttribute('class') || 'bar'}`;
  let texts = 0, charts = 0, tables = 0;
  for (const card of document.querySelectorAll('.card')) {
    const name = card.querySelector('h2').textContent, box = card.getBoundingClientRect();
    if (box.left < -slack || box.right > view + slack) problems.push(`${name}: the card passes the window's edge`);
    if (card.scrollWidth > card.clientWidth + slack) problems.push(`${name}: the content is wider than the card`);
    for (const svg of card.querySelectorAll('svg')) {
      charts++;
      const frame = svg.getBoundingClientRect();
      if (!inside(frame, box)) problems.push(`${name}: the chart passes the card's edge`);
      const items = [...svg.querySelectorAll('text, rect')].map(e => [e, e.getBoundingClientRect()]);
      for (const [e, r] of items) {
        if (e.tagName !== 'text') continue;
        texts++;
        if (!inside(r, frame)) problems.push(`${name}: ${label(e)} passes the chart's edge`);
      }
      for (let i = 0; i < items.length; i++)
        for (let j = i + 1; j < items.length; j++)
          if ((items[i][0].tagName === 'text' || items[j][0].tagName === 'text') && overlap(items[i][1], items[j][1]))
            problems.push(`${name}: ${label(items[i][0])} overlaps ${label(items[j][0])}`);
    }
    for (const wrap of card.querySelectorAll('.table-scroll')) {
      tables++;
      if (!inside(wrap.getBoundingClientRect(), box)) problems.push(`${name}: the table passes the card's edge`);
      if (getComputedStyle(wrap).overflowX !== 'auto') problems.push(`${name}: a wide table would not scroll in its card`);
      const cells = [...wrap.querySelectorAll('th')].map(th => th.getBoundingClientRect().width);
      if (Math.min(...cells) < 20) problems.push(`${name}: a column is squeezed to ${Math.min(...cells)}px`);
    }
  }
  return {problems, texts, charts, tables, height: document.documentElement.scrollHeight};
})()
"""


class DevTools:
    """Just enough of the Chrome DevTools protocol: commands to one page, events collected."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.session, self.events, self._next = ws, None, [], 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        await self.ws.send_json(message)
        while True:
            answer = await self.ws.receive_json()
            if answer.get("id") == self._next:
                assert "error" not in answer, (method, answer["error"])
                return answer["result"]
            self.events.append(answer)

    async def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(await self.ws.receive_json())


async def _lay_out(url: str, width: int, screenshot: Path, profile: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Open ``url`` in a ``width``-pixel-wide window (a phone's when narrow), run LAYOUT_CHECK,
    save a full-page screenshot; returns the check's result and any console or log messages."""
    import aiohttp

    browser = await asyncio.create_subprocess_exec(
        CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    assert browser.stderr is not None
    try:
        endpoint = None
        while endpoint is None:
            line = (await browser.stderr.readline()).decode(errors="replace")
            assert line, "Chromium exited before it listened for DevTools"
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = found and found.group(1)
        drain = asyncio.ensure_future(browser.stderr.read())  # a full pipe would stall the browser
        async with aiohttp.ClientSession() as http, http.ws_connect(endpoint, max_msg_size=0) as ws:
            tools = DevTools(ws)
            target = await tools.call("Target.createTarget", url="about:blank")
            tools.session = (await tools.call("Target.attachToTarget", targetId=target["targetId"], flatten=True))["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                await tools.call(f"{domain}.enable")
            metrics = {"width": width, "deviceScaleFactor": 1, "mobile": width < 600}
            await tools.call("Emulation.setDeviceMetricsOverride", height=900, **metrics)
            await tools.call("Page.navigate", url=url)
            await tools.wait_for("Page.loadEventFired")
            result = (await tools.call("Runtime.evaluate", expression=LAYOUT_CHECK, returnByValue=True))["result"]["value"]
            # the window made as tall as the page, so one screenshot shows all of it
            await tools.call("Emulation.setDeviceMetricsOverride", height=int(result["height"]), **metrics)
            shot = await tools.call("Page.captureScreenshot", format="png")
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            messages = [
                e["params"] for e in tools.events
                if e.get("method") in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown")
                or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] in ("warning", "error"))
            ]
        drain.cancel()
        return result, messages
    finally:
        with contextlib.suppress(ProcessLookupError):
            browser.terminate()
        await browser.wait()


@needs_chromium
@pytest.mark.parametrize("width, name", [(1280, "dashboard.png"), (390, "dashboard-narrow.png")], ids=["desktop", "phone"])
def test_nothing_overlaps_or_overflows_in_chromium(report_html, tmp_path, width, name):
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / name
    screenshot.unlink(missing_ok=True)
    result, messages = asyncio.run(asyncio.wait_for(_lay_out(report_html.as_uri(), width, screenshot, tmp_path / "profile"), 90))
    assert result["problems"] == [], "\n".join(result["problems"])
    assert result["charts"] >= 6 and result["texts"] >= 60 and result["tables"] == 1, result
    assert messages == [], messages
    assert screenshot.exists() and screenshot.stat().st_size > 10_000


def awkward_page() -> str:
    """Charts with what makes labels collide: a year of days, big numbers, long, wide, mixed-script
    labels and series names, many series, and nothing but zeros."""
    days = [date(2025, 3, 1) + timedelta(days=i) for i in range(365)]
    hours = [datetime(2026, 3, 1, 8, tzinfo=timezone.utc) + timedelta(hours=i) for i in range(30)]
    agents = ["WEBEX APP,WINDOWS", "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWW", "Webex Meetings Desktop App 44.10.0.123 (Windows 11)",
              "会议室客户端应用程序会议室客户端应用程序", "MAC,SAFARI", "iOS", "01: a sort key", "x" * 60]
    series = {"VoIP minutes over the whole period": [123_456.7, 0.0, 5.5, 99_999_999.0, 1, 2, 3, 4],
              "call-in (toll and toll-free)": [1, 2, 3, 4, 5, 6, 7, 8], "MMMM WWWW call-out": [0] * 8,
              "d": [8] * 8, "another series": [3] * 8, "and one more series": [1] * 8}
    cards = [
        ("A year of days", line_chart_svg(days, {"meetings": [(i * 7919) % 123_457 for i in range(365)]}), False),
        ("Hours, three series", line_chart_svg(hours, {
            n: [i * k for i in range(30)] for k, n in enumerate(["meetings started", "participants joined", "x"], 1)
        }), False),
        ("Long labels", bar_chart_svg(agents, {"joins": [10**k for k in range(8)]}), False),
        ("Six series", bar_chart_svg(["2026-01", "2026-02"], {k: v[:2] for k, v in series.items()}), False),
        ("All zero", bar_chart_svg(["only"], {"meetings": [0]}), False),
        ("One day", line_chart_svg([date(2026, 3, 1)], {"meetings": [0]}), False),
    ]
    return render_page("Awkward data", "every label that could collide", cards)


@needs_chromium
@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_awkward_labels_do_not_overlap_in_chromium(tmp_path, width):
    page = tmp_path / "awkward.html"
    page.write_text(awkward_page(), encoding="utf-8")
    laid_out = _lay_out(page.as_uri(), width, tmp_path / "shot.png", tmp_path / "profile")
    result, messages = asyncio.run(asyncio.wait_for(laid_out, 90))
    assert result["problems"] == [], "\n".join(result["problems"])
    assert result["charts"] == 6 and messages == []
