"""structlog JSON lines on stdout: one per decision, one per reward, one per join.

A log line per decision is on the hot path, so the setup follows structlog's performance
advice: orjson renders straight to bytes, timestamps are epoch floats (no string
formatting), and loggers are cached on first use.
"""

from __future__ import annotations

import logging
import sys
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
        logger_factory=structlog.BytesLoggerFactory(stream or sys.stdout.buffer),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
