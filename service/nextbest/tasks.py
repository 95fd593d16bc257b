"""Stopping background tasks for good.

redis-py (8.1 on CPython 3.11) can swallow a cancel that arrives while it opens a
connection or subscribes, and the task then runs on: a process stopped a second after it
started would hang in its shutdown. So a task is cancelled again until it has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

RECANCEL_AFTER = 1.0  # seconds a cancelled task gets before it is cancelled again


async def stop(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel the tasks and wait until every one has ended (their results are dropped: a
    task that failed has logged why itself)."""
    every = list(tasks)
    pending = [t for t in every if not t.done()]
    while pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=RECANCEL_AFTER)
        pending = [t for t in pending if not t.done()]
    for task in every:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
