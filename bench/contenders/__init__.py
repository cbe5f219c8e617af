"""Contenders of the export benchmark (``bench/run_bench.py``), each run in its own process.

* ``ours`` -- this project's exporter (``exporter.run.pipeline.run_once``);
* ``sequential`` -- a pager that works the way the Splunk add-on does (one request at a time);
* ``dlt`` -- a dlt 1.x pipeline, hand-written resource, concurrent pages, Arrow fast path.

``worker.py`` runs one of them against a simulator URL and prints a JSON result line;
``simserver.py`` runs a fresh simulator in its own process.
"""
