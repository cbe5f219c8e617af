"""Crash safety with real processes: a writer that commits windows in a loop is SIGKILLed at
every step of a commit, a compaction and a publish, and at random instants; a fresh Warehouse
then recovers, and the catalog must hold only whole windows - each window fully present or
absent, never duplicated - including every window the writer had reported committed."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from warehouse_worker import commit_sequence, window_bounds, window_size

from exporter.config import WarehouseSettings
from exporter.store.warehouse import Warehouse

WORKER = Path(__file__).with_name("warehouse_worker.py")
WINDOWS = 12

#: Stages after which the commit in flight is durable (the manifest transaction is done).
DURABLE_STAGES = {"committed", "placed"}


def run_writer(
    root: Path | str, *extra: str, kill_after: float | None = None, windows: int = WINDOWS
) -> tuple[int, list[str]]:
    """Run the writer; SIGKILL it ``kill_after`` seconds after it is ready (if given)."""
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "writer", str(root), "--windows", str(windows), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        if kill_after is not None:
            assert proc.stdout.readline().strip() == "READY"
            time.sleep(kill_after)
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in err, err
    return proc.returncode, out.splitlines()


def committed(lines: list[str]) -> list[tuple[int, int]]:
    return [(int(p[1]), int(p[2])) for p in (line.split() for line in lines) if p and p[0] == "COMMITTED"]


def verify(
    root: Path | str,
    printed: list[tuple[int, int]],
    *,
    inflight_durable: bool | None,
    windows: int = WINDOWS,
    catalog: Path | None = None,
    s3_endpoint: str | None = None,
) -> None:
    """Recover, then check the catalog against what the writer reported.

    ``inflight_durable``: whether the commit after the last reported one is known durable (True),
    known not (False) or unknown (None: a kill at a random instant).
    """
    sequence = commit_sequence(windows)
    assert printed == sequence[: len(printed)]
    inflight = sequence[len(printed)] if len(printed) < len(sequence) else None
    catalog = catalog or Path(root) / "webex.duckdb"
    settings = WarehouseSettings(root=str(root), catalog=str(catalog), s3_endpoint_url=s3_endpoint)
    with Warehouse(settings, retire_grace_seconds=0) as wh:
        manifest = {r["path"] for r in wh.store.manifest()}
        assert wh.lake.list_files("_staging") == [], "orphans in staging survived recovery"
        on_disk = set(wh.lake.list_files("meeting_usage"))
        assert on_disk == manifest, f"files not in the manifest: {on_disk - manifest}, missing: {manifest - on_disk}"
        cursor = wh.state("acme", "meeting_usage").cursor

        lake_fs = wh.lake.duckdb_filesystem()
    con = duckdb.connect(str(catalog), read_only=True)
    if lake_fs is not None:
        con.register_filesystem(lake_fs)
    rows = con.sql(
        "SELECT conf_id // 1000 AS w, count(*) AS n, count(DISTINCT conf_id) AS d, "
        "list(DISTINCT regexp_extract(conf_name, 'v(\\d+)$', 1)) AS versions FROM meeting_usage GROUP BY ALL"
    ).fetchall()
    con.close()
    present = {w: versions for w, n, d, versions in rows}
    for w, n, d, versions in rows:
        assert n == d == window_size(w), f"window {w}: {n} rows, {d} distinct, expected {window_size(w)}"
        assert len(versions) == 1, f"window {w} mixes versions {versions}"

    reported = {w for w, _ in printed}
    allowed = reported | ({inflight[0]} if inflight and inflight_durable is not False else set())
    assert reported <= set(present) <= allowed
    if inflight and inflight_durable:
        assert inflight[0] in present
    last_version = {w: v for w, v in printed}
    for w, versions in present.items():
        options = {last_version.get(w)}
        if inflight and inflight[0] == w and inflight_durable is not False:
            options.add(inflight[1])
        assert int(versions[0]) in options, f"window {w} has version {versions[0]}, expected one of {options}"
    first_versions = [w for w, v in printed if v == 1] + (
        [inflight[0]] if inflight and inflight[1] == 1 and inflight[0] in present else []
    )
    expected_cursor = window_bounds(max(first_versions))[1] if first_versions else None
    assert cursor == expected_cursor


@pytest.mark.parametrize(
    ("stage", "at"),
    [
        ("staged", 3),  # files written to staging, manifest not committed: orphans to delete
        ("committed", 4),  # manifest committed, files still in staging: moves to finish
        ("placed", 5),  # files in place, nothing left to do
        ("compact-committed", 1),  # compacted file committed but staged; old files retired, not deleted
        ("compact-reaped", 1),  # retired files being deleted
        ("publish-built", 2),  # a new catalog generation written but not recorded
        ("publish-recorded", 2),  # recorded but not swapped in
    ],
)
def test_sigkill_at_each_step(tmp_path: Path, stage: str, at: int) -> None:
    code, lines = run_writer(tmp_path / "wh", "--kill-stage", stage, "--kill-at", str(at))
    assert code == -signal.SIGKILL, f"the writer never reached {stage} #{at}: {lines[-3:]}"
    verify(tmp_path / "wh", committed(lines), inflight_durable=stage in DURABLE_STAGES if "-" not in stage else False)


def test_sigkill_at_random_instants(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    for trial in range(3):
        root = tmp_path / f"wh{trial}"
        code, lines = run_writer(root, kill_after=rng.uniform(0.0, 0.6))
        verify(root, committed(lines), inflight_durable=None if code == -signal.SIGKILL else False)


def test_a_rerun_after_a_crash_converges_to_the_clean_result(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    code, lines = run_writer(root, "--kill-stage", "committed", "--kill-at", "5", windows=6)
    assert code == -signal.SIGKILL
    code, lines = run_writer(root, windows=6)  # the same windows again, from the start
    assert code == 0 and lines[-1] == "DONE"
    verify(root, committed(lines), inflight_durable=False, windows=6)
