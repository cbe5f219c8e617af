"""The ``webex-exporter`` command line: the group and console script in ``main.py``, one module per
kind of command (export, reading, sites, state, simulate), shared options, and the error boundary."""
