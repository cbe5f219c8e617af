"""The HTML dashboard in a real headless browser (Debian's Chromium, installed by scripts/test).

The page must render with its charts present and no console errors; a screenshot is kept in
``test-artifacts/dashboard.png`` for people to look at.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from exporter.dashboard import bar_chart_svg, line_chart_svg, write_report
from exporter.pipeline import RunOptions, export
from exporter.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--enable-logging=stderr", "--v=0",
]  # fmt: skip


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
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
    return write_report(settings, root / "report.html", site="demo")


def test_the_report_is_self_contained(report_html):
    html = report_html.read_text(encoding="utf-8")
    assert html.count("<svg") >= 5
    for forbidden in ("http://", "https://", "<script src", "@import", "url("):
        # the only URL allowed is the SVG namespace, which browsers never fetch
        assert html.replace('xmlns="http://www.w3.org/2000/svg"', "").count(forbidden) == 0, forbidden


def test_charts_escape_text_and_handle_no_data():
    assert "no data" in bar_chart_svg([], {"x": []})
    assert "no data" in line_chart_svg([], {"x": []})
    svg = bar_chart_svg(["<b>&co"], {"meetings": [3]})
    assert "&lt;b&gt;&amp;co" in svg and "<b>" not in svg


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (scripts/test installs Debian's chromium)")
def test_dashboard_renders_in_headless_chromium(report_html, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    url = report_html.as_uri()
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") >= 5 and "Meetings and participants per day" in dom.stdout
    assert "polyline" in dom.stdout and "<rect" in dom.stdout
    shot = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, *profile, "--window-size=1280,1600", f"--screenshot={screenshot}", url],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
    console = [line for line in (dom.stderr + shot.stderr).splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
