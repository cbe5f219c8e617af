"""Talking to Webex: the XML wire format (``protocol``), outcome classification, backoff,
request budgets, the HTTP client and its pool, body batching, parse workers, verified paging,
what a site says about itself, and the REST client (``rest/``).  Never imports ``store``."""
