"""What a run is asked to cover (:class:`RunOptions`) and what it did (:class:`DatasetOutcome`
per site and dataset, :class:`RunReport` for the run): plain data, read by the CLI, ``serve``,
metrics and the warehouse's ``runs`` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..errors import AuthError
from .counters import Counters

__all__ = ["RunOptions", "DatasetOutcome", "RunReport"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What one run covers; ``None`` means "everything configured" / "from state"."""

    sites: tuple[str, ...] | None = None
    datasets: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    backfill: bool = False
    now: datetime | None = None  # tests align this with the simulator's clock


@dataclass(slots=True)
class DatasetOutcome(Counters):
    """What one (site, dataset) did in one run; also written to the ``runs`` table.  Its
    :class:`~exporter.model.counters.Counters` are the sum of every listing's and probe's."""

    site: str
    dataset: str
    windows_planned: int = 0
    windows_committed: int = 0
    windows_failed: int = 0
    windows_unverified: int = 0  # landed although no listing could be verified complete
    unavailable: str | None = None  # the site does not serve this dataset (its operation is retired)
    #: Why the whole site stopped in this run (credentials refused, backup mode, ...), if it did.
    site_stopped: str | None = None
    #: The site refused our credentials (or they lack the admin privilege); without ``site_stopped``:
    #: only this dataset's (an ``auto`` site's REST tokens or scopes), the site's others went on.
    refused: bool = False
    records: int = 0
    errors: list[str] = field(default_factory=list)
    cursor: datetime | None = None

    @property
    def outcome(self) -> str:
        """``ok``, ``partial`` (some windows failed or landed unverified), ``failed`` (nothing
        landed, errors), ``unavailable`` (the site no longer serves the operation), ``refused`` (the
        site refused our credentials) or ``site_stopped`` (the site stopped for another reason):
        monitoring must never read a stopped site as ok."""
        if self.site_stopped is not None:
            return "refused" if self.refused else "site_stopped"
        if self.refused:
            return "refused"
        if self.unavailable is not None:
            return "unavailable"
        if self.windows_failed == 0 and self.windows_unverified == 0 and not self.errors:
            return "ok"
        return "partial" if self.windows_committed else "failed"


@dataclass(slots=True)
class RunReport:
    """The result of one run, for the CLI, the scheduler and tests."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    outcomes: list[DatasetOutcome] = field(default_factory=list)
    #: Per stopped site, what stopped it, as text for people (``"AuthError: ..."``).
    site_errors: dict[str, str] = field(default_factory=dict)
    #: Per stopped site, the class of the exception that stopped it: the exit code is decided
    #: from this, never from the text.
    site_error_types: dict[str, type[BaseException]] = field(default_factory=dict)
    interrupted: bool = False
    #: Per site, what it said about itself that the run acted on or warns about (zones, privilege).
    site_notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 all good; 3 a site refused our credentials (or they lack the site-admin privilege); 1
        anything else failed; 130 interrupted."""
        if self.interrupted:
            return 130
        if any(issubclass(kind, AuthError) for kind in self.site_error_types.values()) or any(
            o.refused for o in self.outcomes
        ):
            return 3
        if self.site_errors or any(o.outcome != "ok" for o in self.outcomes):
            return 1
        return 0

    def summary(self) -> str:
        """A short human-readable table of what the run did."""
        lines = [f"run {self.run_id}: " + ("interrupted" if self.interrupted else "finished")]
        lines.append(f"{'site':<12} {'dataset':<20} {'windows':>8} {'failed':>6} {'unverif':>7} {'records':>9} "
                     f"{'requests':>8} {'throttles':>9}  outcome")
        for o in self.outcomes:
            lines.append(
                f"{o.site:<12} {o.dataset:<20} {o.windows_committed:>8} {o.windows_failed:>6} "
                f"{o.windows_unverified:>7} {o.records:>9} {o.requests:>8} {o.throttles:>9}  {o.outcome}"
            )
            for error in o.errors[:3]:
                lines.append(f"    ! {error}")
        for site, notes in self.site_notes.items():
            for note in notes:
                lines.append(f"site {site}: {note}")
        for site, message in self.site_errors.items():
            lines.append(f"site {site} stopped: {message}")
        return "\n".join(lines)
