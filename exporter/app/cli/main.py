"""The ``webex-exporter`` command line: a thin shell over the library.

This module is the command group and the console-script entry point (:func:`main`); the commands
live by what the user does: :mod:`.export` (run, backfill, serve), :mod:`.reading`
(status, query, report, schema), :mod:`.sites` (check, auth), :mod:`.state` (state
maintenance) and :mod:`.simulate` (demo, simulate).  Every command takes ``--config`` and
``--debug`` (:mod:`.options`); :func:`~exporter.app.cli.boundary.error_boundary` turns an
:class:`~exporter.errors.ExporterError` into one clear line on stderr and an exit code
(:mod:`.boundary` lists them).
"""

from __future__ import annotations

import click

from .export import backfill, run, serve
from .reading import query, report, schema, status
from .simulate import demo, simulate
from .sites import auth, check
from .state import state

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
