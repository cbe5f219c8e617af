"""Terminal progress: pages done out of pages known, records/s, ETA, throttle wait; fits the
terminal's width; silent off a terminal."""

from __future__ import annotations

import io
import re

from exporter.run.progress import Progress

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def last_frame(text: str, lines: int) -> list[str]:
    """The final frame of a live display written to a string (control sequences removed)."""
    return [line for line in _CONTROL.sub("", text).replace("\r", "\n").split("\n") if line.strip()][-lines:]


def test_progress_lines_show_pages_records_eta_and_throttle_wait():
    stream = io.StringIO()
    progress = Progress(stream, throttle_wait=lambda site: 61.0, width=120)
    tracker = progress.dataset("acme", "meeting_attendees", windows=4)
    tracker.page(1, 3, 500)
    tracker.page(2, 3, 500)
    tracker.window_done(1000)
    tracker.page(3, 3, 200)
    tracker.done()
    progress.close()
    (last,) = last_frame(stream.getvalue(), 1)
    assert "acme/meeting_attendees" in last
    assert "1/4 win" in last
    assert "3/3     pages" in last
    assert "1,200 rec" in last
    assert "wait  61s" in last


def test_progress_fits_a_narrow_terminal():
    stream = io.StringIO()
    progress = Progress(stream, width=80)
    for name in ("meeting_attendees", "scheduled_sessions", "training_attendees"):
        tracker = progress.dataset("a-long-site-name", name, windows=90)
        tracker.page(1, 40, 500)
    progress.close()
    frame = last_frame(stream.getvalue(), 3)
    assert len(frame) == 3 and all(len(line) <= 80 for line in frame), frame


def test_at_100_columns_every_column_shows_the_bar_and_the_eta_included():
    stream = io.StringIO()
    progress = Progress(stream, width=100)
    tracker = progress.dataset("demo", "scheduled_sessions", windows=481)
    for page in range(1, 9):
        tracker.page(page, 8, 100)
    tracker.window_done(800, windows=481)
    tracker.done()
    progress.close()
    (line,) = last_frame(stream.getvalue(), 1)
    assert "━" in line and "481/481 win" in line and "wait" in line, line
    assert any(part.count(":") == 1 and part.replace(":", "").isdigit() for part in line.split()), line  # the time


def test_progress_is_silent_off_a_terminal():
    progress = Progress(None)
    tracker = progress.dataset("acme", "meeting_usage", windows=1)
    tracker.page(1, 1, 10)
    tracker.done()
    progress.close()  # nothing to assert but that nothing breaks: logs carry the events instead
