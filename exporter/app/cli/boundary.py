"""The CLI's error boundary and exit codes: every command is wrapped in :func:`error_boundary`, the
single place where an :class:`~exporter.errors.ExporterError` becomes one clear line on stderr and
an exit code (full traceback only with ``--debug``).

Exit codes: 0 success; 1 finished but some windows or sites failed (details in ``status``);
2 bad usage or configuration; 3 a site refused our credentials; 4 warehouse problem (e.g. locked
by another exporter); 130 interrupted.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

from ...errors import AuthError, ConfigError, ExporterError, FatalSiteError, WarehouseError

__all__ = ["EXIT_OK", "EXIT_PARTIAL", "EXIT_CONFIG", "EXIT_AUTH", "EXIT_WAREHOUSE", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_AUTH, EXIT_WAREHOUSE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(exc: ExporterError) -> int:
    """The exit code for an error, from its type alone (never its message)."""
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, (AuthError, FatalSiteError)):
        return EXIT_AUTH
    if isinstance(exc, WarehouseError):
        return EXIT_WAREHOUSE
    return EXIT_PARTIAL


_P = ParamSpec("_P")
_R = TypeVar("_R")


def error_boundary(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn our errors into one line + exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        debug = bool(kwargs.get("debug"))
        try:
            return func(*args, **kwargs)
        except ExporterError as exc:
            from ...obs.logs import redact

            if debug:
                raise
            where = exc.where()  # the site, dataset, window it carries that its message does not name
            message = redact(f"{where}: {exc}" if where else str(exc))
            click.echo(f"error: {message}", err=True)
            sys.exit(exit_code_for(exc))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper
