"""``state clear``: forget where one (site, dataset) got to, so its next run lists everything the
retention still holds, as a first run would.  Landed data stays: the re-listed rows replace their
earlier versions by identity, nothing is duplicated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .state_db import ts

if TYPE_CHECKING:  # warehouse imports this module's neighbours; the type alone is needed here
    from .warehouse import Warehouse

__all__ = ["clear_dataset_state"]


def clear_dataset_state(warehouse: Warehouse, site: str, dataset: str) -> dict[str, int]:
    """Reset the cursor and drop the failed windows of ``site``/``dataset`` in one transaction;
    return what was cleared.  Unverified windows stay listed (their files are retired by the
    first verified listing that covers them).  ``warehouse`` is an open, locked Warehouse."""
    store = warehouse.store
    with store.transaction(f"clearing the state of {site}/{dataset}") as con:
        (had_cursor,) = con.execute(
            'SELECT count(*) FROM sync_state WHERE site = ? AND dataset = ? AND "cursor" IS NOT NULL', [site, dataset]
        ).fetchall()[0]
        (failed,) = con.execute("SELECT count(*) FROM failed_windows WHERE site = ? AND dataset = ?",
                                [site, dataset]).fetchall()[0]
        # The commits made so far belong to a finished run now: none is taken for a crashed run's
        # work to resume (that would skip re-listing the windows it covered).
        (newest,) = con.execute("SELECT coalesce(max(commit_id), 0) FROM commits").fetchall()[0]
        con.execute(
            'UPDATE sync_state SET "cursor" = NULL, cursor_updated_at = NULL, finished_commit = ?, '
            "last_outcome = 'cleared', last_run_at = CAST(? AS TIMESTAMPTZ) WHERE site = ? AND dataset = ?",
            [newest, ts(warehouse._now()), site, dataset],
        )
        con.execute("DELETE FROM failed_windows WHERE site = ? AND dataset = ?", [site, dataset])
    warehouse.publish(force=True)
    return {"cursor": int(had_cursor), "failed_windows": int(failed)}
