"""The commands people type: ``cli``, ``serve`` (scheduler), Prometheus metrics, the demo, named
queries (with their ``*.sql`` files), the HTML report and the text reports.  Top layer: may import
everything below; nothing imports it."""
