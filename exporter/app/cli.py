"""The ``webex-exporter`` command line: a thin shell over the library.

This module is the command group and the console-script entry point (:func:`main`); the commands
live by what the user does: :mod:`.cli_export` (run, backfill, serve), :mod:`.cli_reading`
(status, query, report, schema), :mod:`.cli_sites` (check, auth), :mod:`.cli_state` (state
maintenance) and :mod:`.cli_simulator` (demo, simulate).  Every command takes ``--config`` and
``--debug`` (:mod:`.cli_options`); :func:`~exporter.app.cli_boundary.error_boundary` turns an
:class:`~exporter.errors.ExporterError` into one clear line on stderr and an exit code
(:mod:`.cli_boundary` lists them).
"""

from __future__ import annotations

import click

from .cli_export import backfill, run, serve
from .cli_reading import query, report, schema, status
from .cli_simulator import demo, simulate
from .cli_sites import auth, check
from .cli_state import state

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="webex-history-exporter")
def cli() -> None:
    """Keep your Webex Meetings history forever: exactly-once Parquet + a DuckDB catalog.

    \b
    Quick start (built-in simulator, no Webex site needed):
      webex-exporter demo
    """


for _command in (demo, simulate, run, backfill, serve, status, query, check, report, state, schema, auth):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="webex-exporter")


if __name__ == "__main__":
    main()
