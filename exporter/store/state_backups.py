"""Backups of the private state DB: ``.webex-exporter/backups/``, one after every finished run,
the newest :data:`STATE_BACKUPS_KEPT` kept.  :func:`exporter.store.state_rebuild.rebuild_state`
starts from the newest readable one."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from ..obs.logs import event
from .state_db import StateStore

__all__ = ["STATE_BACKUPS_KEPT", "backup_state", "backups"]

#: How many backups of the state DB (one per finished run) are kept in ``.webex-exporter/backups``.
STATE_BACKUPS_KEPT = 3


def backup_state(store: StateStore, backups_dir: Path, now: datetime) -> Path:
    """Write a backup of the state DB to ``.webex-exporter/backups/`` and keep the newest
    :data:`STATE_BACKUPS_KEPT`; returns its path.  Called after every finished run (``now`` names it)."""
    name = f"state-{now:%Y%m%dT%H%M%S%f}-{store.max_commit():010d}.duckdb"
    target = backups_dir / name
    store.backup_to(target)
    for old in backups(backups_dir)[STATE_BACKUPS_KEPT:]:
        try:
            old.unlink()
        except OSError as exc:
            event("cannot remove an old state backup", level=logging.WARNING, path=str(old), error=str(exc))
    return target


def backups(directory: Path) -> list[Path]:
    """State DB backups in ``directory``, newest first (their names sort by time)."""
    return sorted(directory.glob("state-*.duckdb"), key=lambda p: p.name, reverse=True)
