"""The log's lines: one JSON object a line; a DecideBatch chunk's lines leave together."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import structlog

from nextbest.observability.logging import configure, get_logger, held_lines


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "log"
    with io.BufferedWriter(io.FileIO(path, "w"), buffer_size=1 << 16) as stream:
        configure("info", stream)
        try:
            yield path
        finally:
            structlog.reset_defaults()


def test_each_line_is_flushed_as_it_is_written(log_file: Path) -> None:
    get_logger("t").info("one", n=1)
    [line] = log_file.read_bytes().splitlines()
    assert orjson.loads(line)["event"] == "one"
    assert orjson.loads(line)["level"] == "info"


def test_held_lines_leave_together_at_the_end_and_none_is_lost(log_file: Path) -> None:
    log = get_logger("t")
    with held_lines():
        for i in range(3):
            log.info("decision", n=i)
        with held_lines():  # nested: still held until the outer block ends
            log.warning("inner")
        assert log_file.read_bytes() == b""
    lines = [orjson.loads(x) for x in log_file.read_bytes().splitlines()]
    assert [(x["event"], x.get("n")) for x in lines] == [
        ("decision", 0),
        ("decision", 1),
        ("decision", 2),
        ("inner", None),
    ]
    log.info("after")
    assert orjson.loads(log_file.read_bytes().splitlines()[-1])["event"] == "after"


def test_lines_held_by_a_block_that_raises_are_flushed(log_file: Path) -> None:
    def fails() -> None:
        with held_lines():
            get_logger("t").info("kept")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fails()
    assert orjson.loads(log_file.read_bytes())["event"] == "kept"
