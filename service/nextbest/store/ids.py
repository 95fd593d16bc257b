"""Every event id ever used, in 8 bytes each: an id is given to one event, forever.

An id is kept as a 64-bit blake2b digest (a false "used" needs a collision: ~n/2^64).
A Python set of ints would cost ~70 bytes an id (70 MB a million); here recent digests sit
in a small set and older ones in sorted ``array('Q')`` runs, merged like an LSM tree (runs
of similar size are merged, up to ``RUN`` digests), so memory is ~8 bytes an id and an
add costs well under a microsecond amortized. A lookup bisects each run (a few µs at
millions of ids); it happens only for ids not already held by the store.

:class:`IdFile` makes the index durable: digests are appended to ``event-ids.bin`` before
any log line naming them is deleted, and recovery adds the ids still named by the logs.
"""

from __future__ import annotations

import bisect
import os
from array import array
from hashlib import blake2b
from pathlib import Path

FLUSH = 4096  # digests in the set before they become a sorted run
RUN = 1 << 18  # the largest run merged: bounds the pause of one merge (a few ms)


def digest(event_id: str) -> int:
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "little")


class IdIndex:
    """A set of event ids, as digests."""

    def __init__(self, digests: array[int] | None = None) -> None:
        self._recent: set[int] = set()
        self._runs: list[array[int]] = []
        if digests is not None and len(digests):
            ordered = sorted(set(digests))
            self._runs = [array("Q", ordered[i : i + RUN]) for i in range(0, len(ordered), RUN)]

    def add(self, event_id: str) -> int:
        """Remember the id; returns its digest."""
        d = digest(event_id)
        self.add_digest(d)
        return d

    def add_digest(self, d: int) -> None:
        self._recent.add(d)
        if len(self._recent) >= FLUSH:
            self._flush()

    def __contains__(self, event_id: str) -> bool:
        return self.has_digest(digest(event_id))

    def has_digest(self, d: int) -> bool:
        if d in self._recent:
            return True
        for run in self._runs:
            i = bisect.bisect_left(run, d)
            if i < len(run) and run[i] == d:
                return True
        return False

    def __len__(self) -> int:
        return len(self._recent) + sum(len(run) for run in self._runs)

    def nbytes(self) -> int:
        """Memory of the runs, and of the recent set (~70 bytes a digest)."""
        return sum(run.itemsize * len(run) for run in self._runs) + 70 * len(self._recent)

    def _flush(self) -> None:
        runs = self._runs
        runs.append(array("Q", sorted(self._recent)))
        self._recent.clear()
        while (
            len(runs) > 1
            and len(runs[-2]) <= 2 * len(runs[-1])
            and len(runs[-2]) + len(runs[-1]) <= RUN
        ):
            newer = runs.pop()
            older = runs.pop()
            runs.append(array("Q", sorted(older + newer)))  # two sorted runs: a linear merge


class IdFile:
    """``event-ids.bin``: digests appended, 8 bytes each; a torn tail is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> array[int]:
        digests = array("Q")
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return digests
        digests.frombytes(data[: len(data) - len(data) % digests.itemsize])
        return digests

    def append(self, digests: array[int]) -> None:
        """Append and fsync: the ids must be on disk before the lines naming them go."""
        if not digests:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size % digests.itemsize:  # a torn tail: appends go on from a whole digest
                os.ftruncate(fd, size - size % digests.itemsize)
            data = digests.tobytes()
            if os.write(fd, data) != len(data):
                os.ftruncate(fd, size - size % digests.itemsize)
                raise OSError(28, "short write: no space left on device")
            os.fsync(fd)
        finally:
            os.close(fd)
