"""The vocabulary everything shares, as plain data: the dataset registry, windows, names, time
zones and Webex exception codes.  Imports only ``errors``."""
