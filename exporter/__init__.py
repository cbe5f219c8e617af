"""webex-history-exporter: keep an organisation's Webex Meetings history forever, typed and clean."""

__version__ = "0.1.0"
