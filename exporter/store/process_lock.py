"""The one-writer-per-warehouse lock: an exclusive ``flock`` on ``.webex-exporter/lock``.

Taken by :class:`exporter.store.warehouse.Warehouse` while it is open and by
:func:`exporter.store.state_rebuild.rebuild_state` while it rebuilds the state DB.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import WarehouseError

__all__ = ["ProcessLock"]


class ProcessLock:
    """An exclusive ``flock`` on a file that names its holder's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, what: str) -> None:
        """Take the lock, or raise ``WarehouseError`` naming the pid that holds it (``what``: the
        thing being locked, for the message)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise WarehouseError(
                f"{what} is being written by another exporter (pid {holder}, lock {self.path}); "
                "only one exporter may write a warehouse at a time"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (the file stays); a no-op when not held."""
        if self._fd is not None:
            # The file stays: deleting a lock file lets two processes lock two different files.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
