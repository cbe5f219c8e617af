"""The built wheel works whole: installed on its own (not the editable tree), from a directory outside
the repository, it exports from a simulator, lists the named queries and answers one.  The named
queries are package data (``exporter/app/queries/*.sql``); a wheel without them breaks ``query
<name>``, ``report`` and the demo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cli_helpers import write_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a clean copy of the sources and unpacked into a directory of
    its own (``pip install --no-deps --target``); its dependencies come from the running venv."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy: building in the tree would leave build/ and *.egg-info behind
    source.mkdir()
    shutil.copytree(ROOT / "exporter", source / "exporter", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    wheels = work / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(source)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here (offline, or no build backend to be had): {built.stderr[-800:]}")
    (wheel,) = wheels.glob("webex_history_exporter-*.whl")
    target = work / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def _run(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target), "WEBEX_TEST_PW": "sim-password"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_the_wheel_carries_the_named_queries(installed: Path, tmp_path: Path):
    code = "import exporter.app.queries as q; print(q.__file__); print(len(q.load_queries()))"
    where = _run(installed, tmp_path, "-c", code)
    assert where.returncode == 0, where.stderr
    path, count = where.stdout.split()
    assert Path(path).is_relative_to(installed), f"imported from {path}, not from the installed wheel"
    assert int(count) == len(list((ROOT / "exporter" / "app" / "queries").glob("*.sql"))) > 0


def test_the_installed_wheel_exports_lists_and_answers_a_named_query(installed: Path, sim_factory, tmp_path: Path):
    sim = sim_factory(now=datetime.now(timezone.utc).replace(microsecond=0))
    config = write_config(tmp_path / "config.toml", sim.url, datasets=("meeting_usage",))
    ran = _run(installed, tmp_path, "-m", "exporter", "run", "--config", str(config))
    assert ran.returncode == 0, ran.stderr[-2000:]
    listed = _run(installed, tmp_path, "-m", "exporter", "query", "--list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    for name in ("top_hosts", "meetings_per_day", "data_freshness"):
        assert name in listed.stdout
    top = _run(installed, tmp_path, "-m", "exporter", "query", "top_hosts", "--param", "limit=3", "--format", "json",
               "--config", str(config))
    assert top.returncode == 0, top.stderr
    rows = json.loads(top.stdout)
    assert 0 < len(rows) <= 3 and all(row["meetings"] > 0 for row in rows)
