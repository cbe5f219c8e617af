"""The Arrow table a dataset parses into: one column per declared column, then the lineage columns.

``ARROW_TYPES`` maps the registry's column types to Arrow types; the XML parser and the REST decoder
both build their tables from it."""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa

from ..model.dataset_spec import Dataset

__all__ = ["ARROW_TYPES", "arrow_schema"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "str": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
}


@lru_cache(maxsize=None)
def arrow_schema(dataset: Dataset) -> pa.Schema:
    """Declared columns in declared order, then ``site`` (not null), ``extra`` (JSON), ``_preliminary``."""
    fields = [pa.field(c.name, ARROW_TYPES[c.type]) for c in dataset.columns]
    fields += [
        pa.field("site", pa.string(), nullable=False),
        pa.field("extra", pa.string()),  # JSON object of unknown elements and raw bad values; null if none
        pa.field("_preliminary", pa.bool_()),
    ]
    return pa.schema(fields)
