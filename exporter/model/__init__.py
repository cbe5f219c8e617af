"""The vocabulary everything shares, as plain data: the dataset registry, windows, names, time
zones, Webex exception codes, the fetch-cost ``counters`` and what a run covers and reports
(``runs``).  Imports only ``errors``."""
