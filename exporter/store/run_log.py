"""Run bookkeeping: the ``run_log`` and ``runs`` rows of each run, and each (site, dataset)'s
last outcome in ``sync_state``.

:meth:`exporter.store.warehouse.Warehouse.start_run` and :meth:`~exporter.store.warehouse.Warehouse.finish_run`
delegate here (under the warehouse's lock); a run that starts and never finishes shows as ``crashed``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from duckdb import DuckDBPyConnection

from ..model.runs import DatasetOutcome, RunReport
from .state_db import StateStore, ts

__all__ = ["record_crashed", "record_finish", "record_start"]


def record_start(
    store: StateStore, run_id: str, started_at: datetime, pairs: Iterable[tuple[str, str]] = ()
) -> None:
    """Note that run ``run_id`` started, and that it is the last run of each (site, dataset) in
    ``pairs`` (``status`` shows ``running``; a run that never finishes becomes ``crashed``: a run
    killed every time must never read as the previous run's ``ok``)."""
    with store.transaction(f"recording the start of run {run_id}") as con:
        con.execute(
            "INSERT INTO run_log VALUES (?, CAST(? AS TIMESTAMPTZ), NULL, 'running', NULL) "
            "ON CONFLICT (run_id) DO NOTHING",
            [run_id, ts(started_at)],
        )
        for site, dataset in pairs:
            con.execute(
                """
                INSERT INTO sync_state (site, dataset, last_run_id, last_run_at, last_outcome)
                VALUES (?, ?, ?, CAST(? AS TIMESTAMPTZ), 'running')
                ON CONFLICT (site, dataset) DO UPDATE SET last_run_id = excluded.last_run_id,
                    last_run_at = excluded.last_run_at, last_outcome = excluded.last_outcome
                """,
                [site, dataset, run_id, ts(started_at)],
            )


def record_crashed(store: StateStore) -> None:
    """Runs that started and never finished (the process was killed) are ``crashed``, in the
    run log and as the last outcome of the pairs they were running."""
    with store.transaction("recording crashed runs") as con:
        con.execute("UPDATE run_log SET outcome = 'crashed' WHERE outcome = 'running' AND finished_at IS NULL")
        con.execute("UPDATE sync_state SET last_outcome = 'crashed' WHERE last_outcome = 'running' AND last_run_id IN "
                    "(SELECT run_id FROM run_log WHERE outcome = 'crashed')")


def record_finish(
    store: StateStore, report: RunReport, now: datetime,
    report_damage: Callable[[list[DatasetOutcome], str], None],
) -> str:
    """Write the ``runs`` rows of a finished run and each (site, dataset)'s last outcome, in one
    transaction; returns the run's id.

    Windows committed by a run that was *not* interrupted stop counting
    as resumable (``DatasetState.resume_done``).  ``report_damage(outcomes, run_id)`` is called
    first (the damaged files the run's outcomes name); ``now`` stands in for missing times.
    """
    run_id = report.run_id
    finished = report.finished_at or now
    started = report.started_at
    interrupted = report.interrupted
    site_errors = dict(report.site_errors)
    outcomes = list(report.outcomes)
    report_damage(outcomes, run_id)
    max_commit = store.max_commit()
    labels = []
    with store.transaction(f"recording run {run_id}") as con:
        for o in outcomes:
            label = _outcome_label(o, interrupted, o.site in site_errors)
            labels.append(label)
            _insert_run_row(con, run_id, o, label, started, finished, site_errors.get(o.site))
            con.execute(
                """
                INSERT INTO sync_state (site, dataset, last_run_id, last_run_at, last_outcome, finished_commit)
                VALUES (?, ?, ?, CAST(? AS TIMESTAMPTZ), ?, ?)
                ON CONFLICT (site, dataset) DO UPDATE SET
                    last_run_id = excluded.last_run_id, last_run_at = excluded.last_run_at,
                    last_outcome = excluded.last_outcome,
                    finished_commit = greatest(sync_state.finished_commit, excluded.finished_commit)
                """,
                [o.site, o.dataset, run_id, ts(finished), label, 0 if interrupted else max_commit],
            )
        overall = _run_label(labels, interrupted, bool(site_errors))
        con.execute(
            """
            INSERT INTO run_log VALUES (?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?)
            ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at,
                outcome = excluded.outcome, site_errors = excluded.site_errors
            """,
            [run_id, ts(started), ts(finished), overall, json.dumps(site_errors) if site_errors else None],
        )
    return run_id


def _outcome_label(outcome: DatasetOutcome, interrupted: bool, site_stopped: bool) -> str:
    label = outcome.outcome
    if label == "ok" and site_stopped:
        return "site_stopped"
    if label == "ok" and interrupted:
        return "interrupted"
    return label


def _run_label(labels: Sequence[str], interrupted: bool, site_errors: bool) -> str:
    if interrupted:
        return "interrupted"
    if not site_errors and all(label == "ok" for label in labels):
        return "ok"
    if labels and all(label in ("failed", "site_stopped", "refused") for label in labels):
        return "failed"
    return "partial"


def _insert_run_row(
    con: DuckDBPyConnection, run_id: str, o: DatasetOutcome, label: str, started: datetime, finished: datetime, site_error: str | None
) -> None:
    errors = list(o.errors)
    if site_error:
        errors.append(site_error)
    details = {
        "unknown_elements": dict(o.unknown_elements),
        "bad_values": dict(o.bad_values),
    }
    con.execute(
        """
        INSERT INTO runs (run_id, site, dataset, started_at, finished_at, outcome, windows, windows_failed, pages,
                          records, requests, retries, throttles, throttle_wait_seconds, unknown_elements,
                          bad_values, errors, error_messages, details, windows_unverified)
        VALUES (?, ?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (run_id, site, dataset) DO UPDATE SET windows_unverified = excluded.windows_unverified,
            finished_at = excluded.finished_at, outcome = excluded.outcome, windows = excluded.windows,
            windows_failed = excluded.windows_failed, pages = excluded.pages, records = excluded.records,
            requests = excluded.requests, retries = excluded.retries, throttles = excluded.throttles,
            throttle_wait_seconds = excluded.throttle_wait_seconds, unknown_elements = excluded.unknown_elements,
            bad_values = excluded.bad_values, errors = excluded.errors, error_messages = excluded.error_messages,
            details = excluded.details
        """,
        [
            run_id, o.site, o.dataset, ts(started), ts(finished), label,
            o.windows_committed, o.windows_failed, o.pages, o.records, o.requests, o.retries, o.throttles,
            o.throttle_wait_seconds, sum(o.unknown_elements.values()), sum(o.bad_values.values()), len(errors),
            json.dumps(errors[:20]) if errors else None, json.dumps(details, default=str), o.windows_unverified,
        ],
    )
