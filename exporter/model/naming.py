"""Column names from Webex element names: snake_case, with WebEx/Webex as one word.

``confID`` -> ``conf_id``, ``hostWebExID`` -> ``host_webex_id``, ``meetingUUID`` and ``MeetingUUID``
-> ``meeting_uuid``, ``isScheduledPMR`` -> ``is_scheduled_pmr``, ``clientIP`` -> ``client_ip``.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["column_name", "ALIASES"]

_WEBEX = re.compile(r"Web[Ee][Xx]")
_ACRONYM_THEN_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")  # "UUIDValue" -> "UUID_Value"
_LOWER_THEN_UPPER = re.compile(r"([a-z0-9])([A-Z])")  # "confID" -> "conf_ID"

#: Element spellings that the schema itself gets wrong, mapped to the column they mean.
ALIASES = {
    "total_call_in_tolllfree_minutes": "total_call_in_tollfree_minutes",  # typo in history.xsd
}


@lru_cache(maxsize=4096)
def column_name(element: str) -> str:
    """The snake_case column name for an element's local name (cached: called per element)."""
    name = _WEBEX.sub("Webex", element)
    name = _ACRONYM_THEN_WORD.sub(r"\1_\2", name)
    name = _LOWER_THEN_UPPER.sub(r"\1_\2", name).lower()
    return ALIASES.get(name, name)
