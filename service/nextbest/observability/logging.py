"""structlog JSON lines on stdout: one per decision, one per reward, one per join.

A log line per decision is on the hot path, so the setup follows structlog's performance
advice: orjson renders straight to bytes, timestamps are epoch floats (no string
formatting), and loggers are cached on first use.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import orjson
import structlog


def configure(level: str = "info", stream: BinaryIO | None = None) -> None:
    """JSON logs at `level`; called once by the CLI (tests leave structlog's defaults)."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt=None, utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_LinesFactory(stream or sys.stdout.buffer),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


_held = 0  # >0 while lines are held (`held_lines`): written, flushed at its end
_streams: set[BinaryIO] = set()  # where lines were written while held


@contextmanager
def held_lines() -> Iterator[None]:
    """Flush the log lines written inside once, at the end: the decisions of a DecideBatch
    chunk leave in one write, not one each. Lines are never lost by it: it only delays the
    flush to the end of the block (on the same thread: the event loop's)."""
    global _held
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held:
            while _streams:
                _streams.pop().flush()


class _Lines:
    """structlog's BytesLogger without its lock and with a flush that `held_lines` can
    hold: the stream (a BufferedWriter) is thread-safe itself."""

    __slots__ = ("_file", "name")

    def __init__(self, file: BinaryIO, name: str | None = None) -> None:
        self._file = file
        self.name = name

    def msg(self, message: bytes) -> None:
        file = self._file
        file.write(message + b"\n")
        if _held:
            _streams.add(file)
        else:
            file.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _LinesFactory:
    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _Lines:
        return _Lines(self._file, args[0] if args and isinstance(args[0], str) else None)
