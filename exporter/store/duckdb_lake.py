"""Letting the state DB's DuckDB connection read the lake (to bind the catalog's views and count
rows): a local lake always; an S3 lake through an fsspec filesystem when fsspec is installed,
else through DuckDB's httpfs extension if that is already installed (never downloaded)."""

from __future__ import annotations

import os

from ..config import WarehouseSettings
from .lake import Lake
from .state_db import StateStore, duckdb_errors, quote_str

__all__ = ["connect_lake"]


def connect_lake(store: StateStore, lake: Lake, settings: WarehouseSettings) -> bool:
    """Make ``lake`` readable from ``store``'s connection; whether that worked."""
    if lake.is_local:
        return True
    if (fs := lake.duckdb_filesystem()) is not None:
        store.register_filesystem(fs)
        return True
    return _try_httpfs(store, settings)


def _try_httpfs(store: StateStore, settings: WarehouseSettings) -> bool:
    """Load DuckDB's httpfs (only if already installed) with a session secret for the lake."""
    con = store.con
    try:
        con.execute("LOAD httpfs")
    except Exception:  # noqa: BLE001 - any failure means "not available"; callers degrade honestly
        return False
    region = settings.s3_region or os.environ.get("AWS_REGION", "us-east-1")
    options = [
        f"KEY_ID {quote_str(os.environ.get('AWS_ACCESS_KEY_ID', ''))}",
        f"SECRET {quote_str(os.environ.get('AWS_SECRET_ACCESS_KEY', ''))}",
        f"REGION {quote_str(region)}",
    ]
    if endpoint := settings.s3_endpoint_url:
        scheme, _, host = endpoint.partition("://")
        options += [f"ENDPOINT {quote_str(host or scheme)}", "URL_STYLE 'path'",
                    f"USE_SSL {'false' if scheme == 'http' else 'true'}"]
    with duckdb_errors("configuring DuckDB for the S3 lake"):
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET webex_lake (TYPE s3, {', '.join(options)})")
    return True
