"""The exact rules for one ``int``, ``float`` or ``bool`` value sent as text: the definition of each
type (the vectorised converters only take what these would accept).  The REST decoder applies the
same rules to strings.  ``BAD`` is what a rule returns for a value that does not fit."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["BAD", "INT64_MAX", "INT64_MIN", "parse_bool", "parse_float", "parse_int"]

BAD = object()
_INT_LOOSE = re.compile(r"\s*([+-]?[0-9]+)\s*")
_FLOAT_LOOSE = re.compile(
    r"\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity)|nan)\s*", re.IGNORECASE
)
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_int(_row: int, text: str) -> Any:
    """Optional sign and ASCII decimal digits, white space around tolerated, within int64; else ``BAD``.
    (``_row`` is unused: the per-value path passes every rule the row.)"""
    match = _INT_LOOSE.fullmatch(text)
    if match is None:
        return BAD
    value = int(match.group(1))
    return value if INT64_MIN <= value <= INT64_MAX else BAD


def parse_float(_row: int, text: str) -> Any:
    """A decimal with optional exponent, or ``INF``/``-INF``/``NaN`` in any case; else ``BAD``."""
    match = _FLOAT_LOOSE.fullmatch(text)
    return BAD if match is None else float(match.group(1))


def parse_bool(_row: int, text: str) -> Any:
    """``true``/``false``/``1``/``0`` in any case, white space around tolerated; else ``BAD``."""
    return _BOOLS.get(text.strip().lower(), BAD)
