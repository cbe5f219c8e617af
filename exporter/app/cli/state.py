"""Maintenance of the exporter's private state DB: ``state rebuild``, ``backup``, ``verify`` and
``clear``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ...errors import ConfigError
from .boundary import EXIT_OK, EXIT_PARTIAL, error_boundary
from .options import common_options, load_command_settings

__all__ = ["state"]


@click.command()
@common_options
@click.argument("action", type=click.Choice(["rebuild", "backup", "verify", "clear"]))
@click.option("--force", is_flag=True, help="rebuild: replace a state DB that still opens (default: only a damaged or missing one).")
@click.option("--no-backups", is_flag=True, help="rebuild: ignore the backups, use the lake's commit records alone.")
@click.option("--site", "clear_site", default=None, help="clear: the site whose dataset state is reset.")
@click.option("--dataset", "clear_dataset", default=None, help="clear: the dataset whose state is reset.")
@error_boundary
def state(config_path: Path, debug: bool, action: str, force: bool, no_backups: bool, clear_site: str | None,
          clear_dataset: str | None) -> None:
    """Rebuild, back up or verify the exporter's private state DB (.webex-exporter/state.duckdb).

    The state DB says which files are committed, where each cursor is and which windows failed.
    A backup is written after every run (the newest 3 are kept in .webex-exporter/backups/) and
    every commit leaves a small record in the lake (<root>/_commits/), so a lost or damaged state
    DB can be rebuilt.

    \b
    rebuild  from the newest readable backup plus the newer commit records; the old file is kept
             beside it; windows within the retention no commit covers are listed for the next run
    backup   write a backup now
    verify   read every committed file's footer again (runs check new and changed files only); a
             damaged file leaves the catalog and its windows are fetched again by the next run;
             exit 1 while damaged files wait for that (local lakes only)
    clear    forget one dataset's cursor and failed windows (--site, --dataset): its next run lists
             all the retention holds again; landed data stays and is not duplicated

    \b
    Examples:
      webex-exporter state rebuild
      webex-exporter state verify
      webex-exporter state clear --site acme --dataset recording_access
    """
    from ...store.state_rebuild import rebuild_state
    from ...store.warehouse import Warehouse

    settings = load_command_settings(config_path, debug)
    if action == "clear":
        from ...config import ALL_DATASETS
        from ...store.state_reset import clear_dataset_state

        if not clear_site or not clear_dataset:
            raise ConfigError("state clear needs --site and --dataset (one dataset's state at a time)")
        settings.site(clear_site)
        if clear_dataset not in ALL_DATASETS:
            raise ConfigError(f"--dataset: unknown dataset {clear_dataset!r}; known: {', '.join(ALL_DATASETS)}")
        with Warehouse(settings.warehouse, export=settings.export) as warehouse:
            cleared = clear_dataset_state(warehouse, clear_site, clear_dataset)
        click.echo(f"cleared {clear_site}/{clear_dataset}: cursor {'reset' if cleared['cursor'] else 'was not set'}, "
                   f"{cleared['failed_windows']} failed window(s) dropped; the next run lists the whole retention")
        return
    if action == "rebuild":
        result = rebuild_state(settings.warehouse, export=settings.export, use_backups=not no_backups, force=force)
        click.echo(result.summary())
        return
    with Warehouse(settings.warehouse, export=settings.export) as warehouse:
        if action == "backup":
            click.echo(f"wrote {warehouse.backup_state()}")
            return
        found = warehouse.verify_lake(full=True)
        warehouse.publish()
        damaged = warehouse.damaged_files()
        checked = len(warehouse.store.manifest())
    for row in found:
        click.echo(f"damaged now: {row['site']}/{row['dataset']} {row['path']}: {row['problem']}")
    for row in damaged:
        click.echo(f"{row['state']}: {row['site']}/{row['dataset']} {row['path']} ({row['problem']}), "
                   f"found {row['detected_at']:%Y-%m-%d %H:%M}")
    click.echo(f"{checked} committed files readable; {len(damaged)} damaged file(s) not repaired")
    sys.exit(EXIT_PARTIAL if damaged else EXIT_OK)
