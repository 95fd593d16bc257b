"""One owner per data dir: an exclusive flock on ``<data dir>/lock``, holding the owner's pid.

Two processes appending to one journal would interleave records and compact each other's
segments away. The kernel drops a flock when its process dies, so a crash never leaves a
stale lock behind; the pid in the file is only for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class DataDirError(OSError):
    """The data dir cannot be used; the message says why, naming it."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        """Create the data dir if need be and lock it, or raise DataDirError."""
        if data_dir.exists() and not data_dir.is_dir():
            raise DataDirError(f"data dir {data_dir} is not a directory")
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise DataDirError(f"data dir {data_dir} is in use by pid {owner}") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = -1
