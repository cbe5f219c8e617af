"""``demo``: the whole exporter, end to end, against the built-in simulator.

Starts the simulator (profile from ``[simulator]`` in the config) on a free loopback port, points
the configured loopback sites at it, exports every dataset into the configured warehouse, then
compares what landed with the simulator's ground truth and prints an example query.  It only ever
writes a warehouse it created itself (a marker in ``.webex-exporter/``) or an empty one, and
refuses one that another exporter (``serve``, a run) is writing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from ..config import Settings, SiteSettings, parse_settings
from ..errors import ConfigError
from ..store.published import TABLES_DIR

if TYPE_CHECKING:
    from ..simulator.server import Simulator
    from ..store.process_lock import ProcessLock


__all__ = ["run_demo", "demo_settings"]

DEMO_PASSWORD_ENV = "WEBEX_SIM_PASSWORD"


def demo_settings(config_path: Path, simulator_url: str, password: str, *, rest_url: str = "",
                  client_secret: str = "", token_dir: Path | None = None) -> Settings:
    """The config file's settings with every loopback site pointed at ``simulator_url`` (REST
    sites at ``rest_url``, their tokens in ``token_dir``: the demo's own, never the user's)."""
    try:
        data: dict[str, Any] = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML ({exc})") from None
    for site in data.get("sites", []):
        host = urlsplit(str(site.get("url", ""))).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            site["url"] = simulator_url
        rest = site.get("rest")
        if isinstance(rest, dict) and rest_url and (urlsplit(str(rest.get("base_url", ""))).hostname or "") in (
            "127.0.0.1", "localhost", "::1"
        ):
            rest["base_url"], rest["token_url"] = rest_url, rest_url + "/access_token"
            if token_dir is not None:
                rest["token_file"] = str(token_dir / f"{site.get('name', 'site')}.json")
    env = dict(os.environ)
    for site in data.get("sites", []):
        name = site.get("password_env")
        if name and not env.get(name):
            env[name] = password
        secret = (site.get("rest") or {}).get("client_secret_env") if isinstance(site.get("rest"), dict) else None
        if secret and not env.get(secret) and client_secret:
            env[secret] = client_secret
    return parse_settings(data, env=env, source=str(config_path), base_dir=config_path.resolve().parent)


#: In ``<catalog dir>/.webex-exporter/``: this warehouse was created by the demo, which may clear it.
DEMO_MARKER = "demo-warehouse"


def _home(settings: Settings) -> Path:
    return Path(settings.warehouse.catalog).parent / ".webex-exporter"


def _holds_exports(settings: Settings) -> bool:
    """Whether the warehouse holds anything an exporter landed (state, tables, catalog)."""
    from ..model.datasets import ALL_DATASETS as DATASETS

    root = Path(settings.warehouse.root)
    return (
        (_home(settings) / "state.duckdb").exists()
        or Path(settings.warehouse.catalog).exists()
        or any((root / d.name).exists() for d in DATASETS)
        or (root / TABLES_DIR).exists()
    )


def _take_warehouse(settings: Settings) -> ProcessLock:
    """The warehouse's writer lock, for the demo, or a clear refusal: the demo never writes (or
    clears) a warehouse another exporter is writing, nor one that holds exports it did not make."""
    from ..errors import WarehouseError
    from ..store.process_lock import ProcessLock

    root = settings.warehouse.root
    if "://" in root:
        raise WarehouseError(f"the demo writes only a local warehouse, and warehouse.root is {root}; "
                             "run it with a config whose warehouse is a local folder")
    home = _home(settings)
    if _holds_exports(settings) and not (home / DEMO_MARKER).exists():
        raise WarehouseError(
            f"the warehouse at {Path(root).resolve()} holds exported history the demo did not create; the demo "
            "never touches it. Give the demo a config whose warehouse.root is another folder "
            "(webex-exporter demo --config demo.toml), or move that warehouse away yourself."
        )
    home.mkdir(parents=True, exist_ok=True)
    lock = ProcessLock(home / "lock")
    lock.acquire(f"the warehouse at {Path(root).resolve()}")  # refuses while `serve` or a run writes it
    (home / DEMO_MARKER).write_text("created by `webex-exporter demo`; the demo may clear it\n", encoding="utf-8")
    return lock


def _clear_warehouse(settings: Settings) -> None:
    """Remove what an earlier demo landed: only the exporter's own files and folders, and never
    the lock file (deleting a held lock file would let two processes lock two files)."""
    from ..model.datasets import ALL_DATASETS as DATASETS

    root = Path(settings.warehouse.root)
    if not root.exists():
        return
    for name in [d.name for d in DATASETS] + ["_staging", "_commits", "_damaged"]:
        shutil.rmtree(root / name, ignore_errors=True)
    home = _home(settings)
    for path in [*(home.iterdir() if home.is_dir() else ()), *(root / ".webex-exporter").glob("*")]:
        if path.name in ("lock", DEMO_MARKER):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    catalog = Path(settings.warehouse.catalog)
    for path in (catalog, catalog.with_name(catalog.name + ".wal")):
        path.unlink(missing_ok=True)
    for stale in catalog.parent.glob(f".{catalog.name}.*"):
        stale.unlink(missing_ok=True)


def run_demo(config_path: Path, *, fresh: bool = True, debug: bool = False) -> int:
    """Run the demo; returns the process exit code (0 when every table matches the ground truth)."""
    from ..model.runs import RunOptions
    from ..obs.logs import configure_logging
    from ..run.pipeline import run_once
    from ..simulator import load_profile, run_in_thread
    from .queries import run_query
    from .reporting import format_rows

    try:
        table = tomllib.loads(config_path.read_text(encoding="utf-8")).get("simulator", {})
    except (FileNotFoundError, tomllib.TOMLDecodeError):
        table = {}
    profile = load_profile(table.get("profile", "default"))
    password = dict(profile.sites[0].users).get("admin") or ""
    click.echo(f"starting the Webex XML API simulator (profile {table.get('profile', 'default')!r}) ...")
    with run_in_thread(profile) as sim, tempfile.TemporaryDirectory(prefix="webex-demo-tokens-") as tokens:
        settings = demo_settings(config_path, sim.url or "", password, rest_url=sim.rest_url,
                                 client_secret=profile.rest.client_secret, token_dir=Path(tokens))
        configure_logging("text", "debug" if debug else "warning")
        _authorize_rest_sites(settings, sim)
        lock = _take_warehouse(settings)
        try:
            if fresh:
                _clear_warehouse(settings)
        finally:
            lock.release()  # the export below takes the lock itself
        # Freeze the simulated clock: sessions that end while the demo runs would otherwise become
        # visible after the export planned its windows, and the comparison below would be unfair.
        sim.clock.freeze()
        now = sim.clock.now()
        kinds = ", ".join(f"{s.name} ({s.source.upper()})" for s in settings.sites)
        click.echo(f"simulator at {sim.url} (XML) and {sim.rest_url} (REST); exporting {kinds} into "
                   f"{settings.warehouse.root} ...")
        began = time.monotonic()
        report = run_once(settings, RunOptions(now=now))
        elapsed = time.monotonic() - began
        click.echo(report.summary())
        click.echo(f"\nexport took {elapsed:.1f} s\n")
        mismatches = _compare_with_ground_truth(settings, sim)
    columns, rows = run_query(settings, "top_hosts", ("limit=5",))
    click.echo("example: webex-exporter query top_hosts --param limit=5")
    click.echo(format_rows(columns, rows, "table"))
    click.echo(f"\nthe catalog is {settings.warehouse.catalog}; try: webex-exporter query \"select * from meeting_usage limit 5\"")
    if mismatches or report.exit_code:
        click.echo(f"\n{mismatches} table(s) differ from the simulator's ground truth", err=True)
        return 1
    return 0


def _authorize_rest_sites(settings: Settings, sim: Simulator) -> None:
    """What ``webex-exporter auth`` does, for the demo's REST sites: store the simulator's first
    refresh token (exchanged once, so the demo also shows the rotation) in the demo's token dir."""
    import asyncio

    from ..config import Secret
    from ..webex.rest.client import seed_tokens

    for site in settings.sites:
        if site.source != "xml" and site.rest is not None:
            token = sim.rest_refresh_token(_sim_site(site))
            asyncio.run(seed_tokens(site, refresh_token=Secret(token)))


def _sim_site(site: SiteSettings) -> str:
    """The simulator site a REST site's ``siteUrl`` names (``globex.webex.com`` -> ``globex``)."""
    return site.rest.site_url.split(".", 1)[0] if site.rest is not None else site.site_name


def _compare_with_ground_truth(settings: Settings, sim: Simulator) -> int:
    """Print landed rows vs the simulator's ground truth per site and dataset; count mismatches."""
    from ..model.datasets import by_name
    from .queries import open_catalog

    connection = open_catalog(settings)
    mismatches = 0
    click.echo(f"{'site':<12} {'dataset':<20} {'landed':>8} {'server':>8}")
    try:
        for site in settings.sites:
            for name in site.datasets:
                by_name(name)
                # Rows, not distinct keys: the server's twins (rows equal in every key field) are records too.
                rest = site.source == "rest" or not by_name(name).xml
                truth = len(sim.rest_ground_truth(_sim_site(site), name) if rest else sim.ground_truth(site.site_name, name))
                landed = connection.execute(
                    f"select count(*) from {name} where site = ? and not _preliminary and source = ?",
                    [site.name, "rest" if rest else "xml"],
                ).fetchall()[0][0]
                mark = "" if landed == truth else "  <-- differs"
                mismatches += bool(mark)
                click.echo(f"{site.name:<12} {name:<20} {landed:>8} {truth:>8}{mark}")
    finally:
        connection.close()
    return mismatches
