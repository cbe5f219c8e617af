"""The warehouse on disk: Parquet lake, private state DB and its manifest, failed/unverified
windows, the one-writer lock, published month tables, the DuckDB catalog, lake health and state
recovery.  Never imports ``webex``."""
