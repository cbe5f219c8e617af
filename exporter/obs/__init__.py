"""Observability every layer may use: structured logging with secret redaction (``logs``)."""
