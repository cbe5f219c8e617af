"""The Parquet lake: where landed rows live, on local disk or S3, through ``pyarrow.fs``.

Layout (hive-style, one directory per dataset, so any Parquet reader can point at a dataset)::

    <root>/<dataset>/site=<site>/date=<YYYY-MM-DD>/part-<commit>-<uuid>.parquet
    <root>/<dataset>/site=<site>/date=__HIVE_DEFAULT_PARTITION__/...   (rows without a start time)
    <root>/_staging/part-<commit>-<uuid>.parquet                        (written, not committed)
    <root>/_commits/<commit>.json, segment-<first>-<last>.jsonl         (what each commit did)
    <root>/_damaged/<dataset>/...                                       (unreadable files, set aside)

``date`` is the UTC date of the dataset's ``start_column``.  Rows without one go to
``__HIVE_DEFAULT_PARTITION__``, the name pyarrow, Spark and DuckDB all read back as a null date.

A file is written under a unique name in ``_staging/`` first.  Names starting with ``_`` are skipped
by pyarrow datasets and sit outside every ``<root>/<dataset>/`` glob, so no reader ever sees a file
that is not committed.  Only after the manifest (in the state DB) lists it is it moved into its
partition: a rename on local disk, a server-side copy + delete on S3 (S3 has no rename, but a copy
makes the whole object appear at once).  A move is idempotent, so a crash between the manifest
commit and the move is finished on the next start (see ``Warehouse``).

Shaping tables for landing (conform to the registry, add lineage, keep the newest version per
key, split by partition) is :mod:`exporter.store.lake_shaping`.  This module is the one place that
turns pyarrow and OS errors into :class:`~exporter.errors.WarehouseError`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

if TYPE_CHECKING:  # fsspec is optional at run time: only S3 lakes read through it
    from fsspec import AbstractFileSystem

from ..errors import WarehouseError
from ..model.dataset_spec import Dataset

__all__ = [
    "Lake",
    "StagedFile",
    "STAGING_DIR",
    "COMMITS_DIR",
    "DAMAGED_DIR",
    "UNKNOWN_DATE",
    "COMMIT_COLUMN",
    "LANDED_COLUMN",
    "PRELIMINARY_COLUMN",
    "storage_errors",
    "fsync_dir",
]

STAGING_DIR = "_staging"
#: One small JSON record per commit (files, window, cursor, retired files), written before the
#: commit becomes visible: what ``webex-exporter state rebuild`` rebuilds the state DB from.
COMMITS_DIR = "_commits"
#: Where a committed file found unreadable is moved, so that no glob over a dataset hits it.
DAMAGED_DIR = "_damaged"
UNKNOWN_DATE = "__HIVE_DEFAULT_PARTITION__"
COMMIT_COLUMN = "_commit"
LANDED_COLUMN = "_landed_at"
PRELIMINARY_COLUMN = "_preliminary"

@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Translate OS and pyarrow failures into :class:`WarehouseError` naming ``action``."""
    try:
        yield
    except WarehouseError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise WarehouseError(f"{action}: {exc}") from exc


# ----------------------------------------------------------------------------- files


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A Parquet file written to staging, with what the manifest records about it."""

    staged: str  # path relative to the lake root, under _staging/
    final: str  # where it goes once committed, relative to the lake root
    partition: str  # "YYYY-MM-DD" or UNKNOWN_DATE
    rows: int
    bytes: int
    min_start: datetime | None
    max_start: datetime | None
    columns: tuple[tuple[str, str], ...]  # (name, Arrow type) of each column, in file order


class Lake:
    """Parquet files under one root: a local directory or ``s3://bucket/prefix``.

    S3 credentials come from the standard AWS environment variables (or the usual AWS config
    chain); ``s3_endpoint_url`` points at an S3-compatible server (MinIO, moto, ...).
    """

    def __init__(
        self,
        root: str,
        *,
        s3_endpoint_url: str | None = None,
        s3_region: str | None = None,
        row_group_size: int = 128 * 1024,
    ) -> None:
        self.row_group_size = row_group_size
        self.s3_endpoint_url = s3_endpoint_url
        self.s3_region = s3_region
        with storage_errors(f"opening lake {root}"):
            if root.startswith("s3://"):
                parts = urlsplit(root)
                if not parts.netloc:
                    raise WarehouseError(f"warehouse root {root!r}: no bucket")
                self.is_local = False
                self._base = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
                self.root_uri = f"s3://{self._base}"
                self.fs: pafs.FileSystem = _s3_filesystem(s3_endpoint_url, s3_region)
                info = self.fs.get_file_info(parts.netloc)
                if info.type == pafs.FileType.NotFound:
                    raise WarehouseError(f"warehouse root {root}: bucket {parts.netloc!r} does not exist")
            elif "://" in root:
                raise WarehouseError(f"warehouse root must be a local path or an s3:// URI, got {root!r}")
            else:
                path = Path(root).expanduser().resolve()
                path.mkdir(parents=True, exist_ok=True)
                self.is_local = True
                self._base = str(path)
                self.root_uri = str(path)
                self.fs = pafs.LocalFileSystem()

    # -- names -------------------------------------------------------------------------

    def path(self, rel: str) -> str:
        """``rel`` (relative to the root, ``/``-separated) as a path for :attr:`fs`."""
        return f"{self._base}/{rel}"

    def uri(self, rel: str) -> str:
        """``rel`` as readers name it: an absolute local path or an ``s3://`` URI."""
        return f"{self.root_uri}/{rel}"

    @staticmethod
    def file_name(commit_id: int) -> str:
        """A unique file name that also says which commit wrote it."""
        return f"part-{commit_id:010d}-{uuid.uuid4().hex[:16]}.parquet"

    @staticmethod
    def partition_dir(dataset: str, site: str, partition: str) -> str:
        """``<dataset>/site=<site>/date=<partition>``."""
        return f"{dataset}/site={site}/date={partition}"

    # -- writing -----------------------------------------------------------------------

    def write_staged(
        self, table: pa.Table, *, dataset: Dataset, site: str, partition: str, commit_id: int
    ) -> StagedFile:
        """Write ``table`` (one partition's rows) to staging, durably; nothing reads it yet."""
        name = self.file_name(commit_id)
        staged = f"{STAGING_DIR}/{name}"
        final = f"{self.partition_dir(dataset.name, site, partition)}/{name}"
        metadata = dict(table.schema.metadata or {})
        metadata.update({b"webex.dataset": dataset.name.encode(), b"webex.site": site.encode(),
                         b"webex.commit": str(commit_id).encode()})
        table = table.replace_schema_metadata(metadata)
        options = dict(compression="zstd", row_group_size=self.row_group_size, write_statistics=True)
        with storage_errors(f"writing {self.uri(staged)}"):
            if self.is_local:
                target = Path(self.path(staged))
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as handle:
                    pq.write_table(table, handle, **options)
                    handle.flush()
                    # The manifest will say this file exists: it must survive a power cut first.
                    os.fsync(handle.fileno())
                size = target.stat().st_size
            else:
                # An S3 upload becomes visible (and durable) only when close() completes it.
                with self.fs.open_output_stream(self.path(staged)) as out:
                    pq.write_table(table, out, **options)
                size = self.fs.get_file_info(self.path(staged)).size or 0
        start = table.column(dataset.start_column) if table.num_rows else None
        bounds = pc.min_max(start) if start is not None else None
        return StagedFile(
            staged=staged,
            final=final,
            partition=partition,
            rows=table.num_rows,
            bytes=size,
            min_start=bounds["min"].as_py() if bounds else None,
            max_start=bounds["max"].as_py() if bounds else None,
            columns=tuple((f.name, str(f.type)) for f in table.schema),
        )

    def place(self, staged: str, final: str) -> None:
        """Move a committed file from staging into its partition (idempotent: safe to repeat
        after a crash).  ``WarehouseError`` if neither copy exists (the file was lost)."""
        with storage_errors(f"moving {self.uri(staged)} to {self.uri(final)}"):
            if self.exists(staged):
                if self.is_local:
                    target = Path(self.path(final))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(self.path(staged), target)
                    fsync_dir(target.parent)
                    fsync_dir(Path(self.path(staged)).parent)
                else:
                    # Copy, then delete: a crash in between leaves both, and the next attempt
                    # copies again (same bytes) and deletes.
                    self.fs.copy_file(self.path(staged), self.path(final))
                    self.fs.delete_file(self.path(staged))
            elif not self.exists(final):
                raise WarehouseError(f"committed file {self.uri(final)} is missing (and not in staging)")

    # -- reading, listing, deleting ------------------------------------------------------

    def exists(self, rel: str) -> bool:
        """Whether the file ``rel`` exists."""
        with storage_errors(f"checking {self.uri(rel)}"):
            return bool(self.fs.get_file_info(self.path(rel)).type == pafs.FileType.File)

    def delete(self, rel: str) -> None:
        """Delete the file ``rel`` (missing is fine)."""
        with storage_errors(f"deleting {self.uri(rel)}"):
            try:
                self.fs.delete_file(self.path(rel))
            except FileNotFoundError:
                pass

    def stat(self, rel: str) -> tuple[int, int] | None:
        """``(size, mtime_ns)`` of the file ``rel``; None when there is no such file."""
        with storage_errors(f"checking {self.uri(rel)}"):
            info = self.fs.get_file_info(self.path(rel))
        if info.type != pafs.FileType.File:
            return None
        return int(info.size or 0), int(info.mtime_ns or 0)

    def check_parquet(self, rel: str, *, size: int | None = None, rows: int | None = None) -> str | None:
        """Why the committed file ``rel`` cannot be read, or None when it can: it must exist,
        have the size the manifest recorded (``size``), and a readable footer that counts
        ``rows`` rows.  Reads the footer only (a few KB), never the data pages."""
        found = self.stat(rel)
        if found is None:
            return "missing"
        if size is not None and found[0] != size:
            return f"size {found[0]} bytes, the manifest says {size} (truncated or overwritten)"
        try:
            with self.fs.open_input_file(self.path(rel)) as handle:
                metadata = pq.ParquetFile(handle).metadata
        except (OSError, pa.ArrowException) as exc:
            return f"unreadable Parquet footer: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        if rows is not None and metadata.num_rows != rows:
            return f"footer counts {metadata.num_rows} rows, the manifest says {rows}"
        return None

    def move_aside(self, rel: str, to: str) -> None:
        """Move the file ``rel`` to ``to`` (another relative path), replacing what is there."""
        with storage_errors(f"moving {self.uri(rel)} to {self.uri(to)}"):
            if self.is_local:
                target = Path(self.path(to))
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.path(rel), target)
                fsync_dir(target.parent)
            else:
                self.fs.copy_file(self.path(rel), self.path(to))
                self.fs.delete_file(self.path(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a small file durably and atomically: a reader sees the old content or the new,
        never part of it (local: temp file + fsync + rename; S3: an upload appears whole)."""
        with storage_errors(f"writing {self.uri(rel)}"):
            if self.is_local:
                target = Path(self.path(rel))
                target.parent.mkdir(parents=True, exist_ok=True)
                temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
                with open(temp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, target)
                fsync_dir(target.parent)
            else:
                with self.fs.open_output_stream(self.path(rel)) as out:
                    out.write(data)

    def read_bytes(self, rel: str) -> bytes:
        """The content of the file ``rel``."""
        with storage_errors(f"reading {self.uri(rel)}"):
            with self.fs.open_input_stream(self.path(rel)) as handle:
                data: bytes = handle.read()
                return data

    def list_files(self, under: str = "") -> list[str]:
        """Every file below ``under`` (relative paths, sorted); a missing directory is empty."""
        base = self.path(under).rstrip("/") if under else self._base
        with storage_errors(f"listing {self.uri(under)}"):
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        prefix = self._base + "/"
        return sorted(
            i.path[len(prefix) :] for i in infos if i.type == pafs.FileType.File and i.path.startswith(prefix)
        )

    def read(self, rels: Sequence[str]) -> pa.Table:
        """The files ``rels`` as one table; older files lacking newer columns get nulls."""
        with storage_errors("reading lake files"):
            tables = [pq.read_table(self.path(rel), filesystem=self.fs) for rel in rels]
            if not tables:
                return pa.table({})
            return pa.concat_tables(tables, promote_options="permissive")

    def duckdb_filesystem(self) -> AbstractFileSystem | None:
        """An fsspec view of this S3 lake that DuckDB can use without its httpfs extension
        (``con.register_filesystem``); None for local lakes or when fsspec is not installed."""
        if self.is_local:
            return None
        try:
            from fsspec.implementations.arrow import ArrowFSWrapper
        except ImportError:
            return None
        return ArrowFSWrapper(self.fs)


def _s3_filesystem(endpoint_url: str | None, region: str | None) -> pafs.S3FileSystem:
    """An S3 client; credentials from the environment (AWS_ACCESS_KEY_ID, ...)."""
    options: dict[str, object] = {
        "region": region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "connect_timeout": 10,
        "request_timeout": 60,
    }
    if endpoint_url:
        parts = urlsplit(endpoint_url if "://" in endpoint_url else f"https://{endpoint_url}")
        options["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        options["scheme"] = parts.scheme or "https"
    return pafs.S3FileSystem(**options)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX: the directory entry lives in the directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself is still atomic
    finally:
        os.close(fd)
