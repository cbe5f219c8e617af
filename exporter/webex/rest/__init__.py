"""The Webex REST APIs as a second source (client side), one job per module.

* :mod:`.links`: pure: ``Link`` headers (RFC 8288 / 5988), the next URL and its repairs;
* :mod:`.classify`: pure: (status, headers, body) -> what the client does next;
* :mod:`.decode`: pure: a page's JSON ``items`` -> a typed Arrow table of the dataset;
* :mod:`.tokens`: the site's rotating OAuth tokens in an owner-only file (atomic, locked);
* :mod:`.oauth`: the token endpoint (refresh, code exchange), when to refresh, scope checks;
* :mod:`.connection`: the HTTP exchange, secrets scrubbed, the site's stop state;
* :mod:`.pages`: one page, retried within the budget (cool-downs, backoff, one token refresh);
* :mod:`.listing`: one window: next links, fan-out per parent id, walks again on repeats;
* :mod:`.results`: what a listing returns (:class:`~.results.RestFetch`) and its counters;
* :mod:`.client`: :class:`~.client.RestClient`, built from the three above; token seeding.

Only :mod:`.connection` sends HTTP requests (aiohttp); the rest is plain Python over bytes, dicts and Arrow.
"""
