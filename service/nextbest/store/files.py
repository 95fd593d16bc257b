"""Append-only line files split into numbered segments, read back tolerating a torn tail.

Both the write-ahead journal and the DSJSON decision logs are such files. A segment is
named by the sequence number of its first line (``000000000042.jsonl``), so the position of
any line in the whole log is known without reading older segments.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Damage:
    """A line that could not be read back: where, and what was done about it."""

    path: Path
    line: int
    action: str


class SyncFailed(OSError):
    """An fsync failed: what was written since the last good one may never reach the disk
    (the kernel may have dropped those pages), so nothing after it can be trusted either."""


def fsync_dir(directory: Path) -> None:
    """Make a create, rename or delete in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old file or the new one, never
    a mix: written aside, fsynced, renamed, the rename made durable. A write that fails
    leaves no temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class SegmentedLog:
    """Lines appended with one write() each; rotated at `segment_bytes`."""

    def __init__(self, directory: Path, suffix: str, segment_bytes: int) -> None:
        self.directory = directory
        self.suffix = suffix
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        segments = self.segments()
        self.seq = 0  # lines in the whole log, i.e. the next line's sequence number
        self._fd = -1
        self._size = 0
        if segments:
            start, last = segments[-1]
            lines = _count_lines(last)
            self.seq = start + lines
            self._open(last)
        else:
            self._open(directory / f"{0:012d}{suffix}")
        self.unsynced = False

    def segments(self) -> list[tuple[int, Path]]:
        return list_segments(self.directory, self.suffix)

    def _open(self, path: Path) -> None:
        self.path = path
        self.start = int(path.name.removesuffix(self.suffix))  # seq of this segment's first line
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size

    def append(self, lines: list[bytes]) -> int:
        """Write lines (each without its newline) in one write(); returns the first's seq.

        After this returns the lines survive a crash of this process (they are in the
        kernel); only `sync` makes them survive a crash of the machine.
        """
        if self._size >= self.segment_bytes:
            self.rotate()
        data = b"\n".join(lines) + b"\n"
        written = os.write(self._fd, data)
        if written != len(data):  # a short write: the rest did not fit (disk full)
            os.ftruncate(self._fd, self._size)
            raise OSError(28, "short write: no space left on device")
        first = self.seq
        self.seq += len(lines)
        self._size += written
        self.unsynced = True
        return first

    def rotate(self) -> None:
        """Continue in a new segment. The new one is opened first, so a failure leaves the
        log writing where it was; the old one is fsynced before it is closed."""
        path = self.directory / f"{self.seq:012d}{self.suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fsync_dir(self.directory)
            try:
                os.fsync(self._fd)  # unconditionally: a sync in flight may have cleared the flag
            except OSError as exc:
                raise SyncFailed(exc.errno, exc.strerror) from exc
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        old, self._fd = self._fd, fd
        self.path, self.start, self._size = path, self.seq, 0
        self.unsynced = False
        os.close(old)

    def sync(self) -> None:
        if self.unsynced:
            os.fsync(self._fd)
            self.unsynced = False

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def list_segments(directory: Path, suffix: str) -> list[tuple[int, Path]]:
    """(first sequence number, path) of each segment, oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob(f"*{suffix}"):
        stem = path.name.removesuffix(suffix)
        if stem.isdigit():
            found.append((int(stem), path))
    return sorted(found)


def read_records(
    directory: Path, suffix: str, damage: list[Damage]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(seq, record) for every readable line of every segment, oldest first.

    A torn last line of the newest segment (a crash mid-write: no newline, or not JSON) is
    cut off, so appends go on from a clean end; an unreadable line anywhere else is skipped.
    Both are reported in `damage`: nothing before them is lost. Run it before opening the
    log for appending.
    """
    segments = list_segments(directory, suffix)
    for index, (start, path) in enumerate(segments):
        newest = index == len(segments) - 1
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        torn_tail = lines.pop()  # b"" when the file ends with a newline
        offset = 0
        for n, line in enumerate(lines):
            try:
                record = orjson.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except (orjson.JSONDecodeError, ValueError):
                damage.append(Damage(path, n + 1, "unreadable line skipped"))
                offset += len(line) + 1
                continue
            offset += len(line) + 1
            yield start + n, record
        if torn_tail:
            if newest:
                with path.open("r+b") as f:
                    f.truncate(offset)
                damage.append(Damage(path, len(lines) + 1, "torn last line cut off"))
            else:
                damage.append(Damage(path, len(lines) + 1, "unterminated line skipped"))
