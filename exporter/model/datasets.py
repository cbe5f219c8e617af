"""The registry: every exported dataset, XML and REST, and lookup by name.

The simulator serves exactly these records, the parser types them, the warehouse keys them.  The
types are :mod:`exporter.model.dataset_spec`'s; the declarations live in
:mod:`exporter.model.xml_datasets` and :mod:`exporter.model.rest_datasets`.
"""

from __future__ import annotations

from dataclasses import replace

from .dataset_spec import Dataset
from .rest_datasets import REST_LISTINGS, REST_ONLY_DATASETS
from .xml_datasets import XML_DATASETS

__all__ = ["DATASETS", "ALL_DATASETS", "by_name"]

#: The XML datasets (some also listed by REST: their listing attached).
DATASETS: tuple[Dataset, ...] = tuple(replace(d, rest=REST_LISTINGS.get(d.name)) for d in XML_DATASETS)

#: Every table of the warehouse and catalog: the XML datasets (some also listed by REST), then
#: the REST-only ones.
ALL_DATASETS: tuple[Dataset, ...] = DATASETS + REST_ONLY_DATASETS

_BY_NAME = {d.name: d for d in ALL_DATASETS}


def by_name(name: str) -> Dataset:
    """The dataset called ``name``; ``KeyError`` lists the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(_BY_NAME)}") from None
