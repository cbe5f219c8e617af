"""Webex ``exceptionID`` values shared by the simulator (which emits them) and the client (which
classifies them).  Codes marked UNCONFIRMED are our best reading of public material; the client
lets a site's config add codes to each class, so a real server's different code is one line away.
"""

from __future__ import annotations

__all__ = [
    "NO_RECORDS",
    "RATE_LIMITED",
    "PRELIMINARY_FILTER_REQUIRED",
    "BODY_CONTENT_LIMIT",
    "USER_NOT_FOUND",
    "BAD_PASSWORD",
    "TICKET_EXPIRED",
    "TOKEN_INVALID",
    "ACCOUNT_LOCKED",
    "AUTH_CODES",
    "MALFORMED_REQUEST",
    "UNKNOWN_OPERATION",
    "INVALID_ARGUMENT",
    "ACCESS_DENIED",
    "OPERATION_RETIRED",
]

NO_RECORDS = "000015"  # "Sorry, no record found": how an empty list comes back (confirmed via clients)
RATE_LIMITED = "000045"  # "API Rate Limit Reached": 60 s block (confirmed, release notes)
PRELIMINARY_FILTER_REQUIRED = "000047"  # preliminary history without a filter (confirmed)
BODY_CONTENT_LIMIT = "000053"  # "BodyContent count in request must be less than {n}" (seed documents)

USER_NOT_FOUND = "030001"  # UNCONFIRMED: "Corresponding User not found"
BAD_PASSWORD = "030002"  # UNCONFIRMED: "Incorrect user or password"
TICKET_EXPIRED = "030003"  # UNCONFIRMED: "Session ticket is expired or invalid" (re-authenticate once)
TOKEN_INVALID = "030004"  # UNCONFIRMED: "WebEx access token is invalid"
ACCOUNT_LOCKED = "030005"  # UNCONFIRMED: "User account is locked"
AUTH_CODES = frozenset({USER_NOT_FOUND, BAD_PASSWORD, TICKET_EXPIRED, TOKEN_INVALID, ACCOUNT_LOCKED})

MALFORMED_REQUEST = "999999"  # UNCONFIRMED: request body is not well-formed XML
UNKNOWN_OPERATION = "000001"  # UNCONFIRMED: xsi:type names no operation
INVALID_ARGUMENT = "000002"  # UNCONFIRMED: a request element has a bad value (e.g. a bad date)
ACCESS_DENIED = "000003"  # UNCONFIRMED: caller may not list site-wide history
OPERATION_RETIRED = "000080"  # UNCONFIRMED: "This API has been retired. Please use the Webex REST APIs instead."
