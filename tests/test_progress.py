"""Terminal progress: pages done out of pages known, records/s, ETA, throttle wait; silent off a terminal."""

from __future__ import annotations

import io

from exporter.progress import Progress


def test_progress_lines_show_pages_records_eta_and_throttle_wait():
    stream = io.StringIO()
    progress = Progress(stream, throttle_wait=lambda site: 61.0)
    tracker = progress.dataset("acme", "meeting_attendees", windows=4)
    tracker.page(1, 3, 500)
    tracker.page(2, 3, 500)
    tracker.window_done(1000)
    tracker.page(3, 3, 200)
    tracker.done()
    progress.close()
    last = stream.getvalue().split("\x1b[2K")[-1]
    assert "acme/meeting_attendees" in last
    assert "windows    1/4" in last
    assert "pages      3/3" in last
    assert "records      1200" in last
    assert "ETA   done" in last
    assert "throttle-wait    61s" in last


def test_progress_is_silent_off_a_terminal():
    progress = Progress(None)
    tracker = progress.dataset("acme", "meeting_usage", windows=1)
    tracker.page(1, 1, 10)
    tracker.done()
    progress.close()  # nothing to assert but that nothing breaks: logs carry the events instead
