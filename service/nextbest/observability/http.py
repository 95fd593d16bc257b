"""The /metrics HTTP endpoint: one thread running its own asyncio loop.

A connection costs a coroutine, not a thread, so idle or slow clients cannot pile up
threads. Each must send its request within `timeout` seconds and read the answer within as
much again. At most `max_connections` are open: a new one beyond that evicts the oldest
still waiting for its request (a scraper sends its request at once; an idle socket never
does), so a flood of idle sockets cannot lock Prometheus out. One request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

MAX_REQUEST_HEAD = 16 * 1024
_PATHS = frozenset({"/metrics", "/"})
_DROPPED = (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)


class MetricsServer:
    """Serves a registry until `shutdown()`; `server_port` is the bound port."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        timeout: float = 5.0,
        max_connections: int = 256,
    ) -> None:
        self._registry = registry
        self._timeout = timeout
        self._max = max_connections
        self._waiting: dict[asyncio.StreamWriter, None] = {}  # oldest first
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="nextbest-metrics"
        )
        self._thread.start()
        try:
            self._server = asyncio.run_coroutine_threadsafe(
                asyncio.start_server(self._serve, host, port, limit=MAX_REQUEST_HEAD),
                self._loop,
            ).result(timeout=10)
        except BaseException:
            self._stop_loop()
            raise
        self.server_port: int = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        if len(self._tasks) > self._max:
            if not self._waiting:  # all busy answering: refuse this one
                self._tasks.discard(task)
                writer.transport.abort()
                return
            oldest = next(iter(self._waiting))
            del self._waiting[oldest]
            oldest.transport.abort()
        self._waiting[writer] = None
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._timeout)
            finally:
                self._waiting.pop(writer, None)
            writer.write(self._answer(head))
            await asyncio.wait_for(writer.drain(), self._timeout)
            writer.close()
        except _DROPPED:
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    def _answer(self, head: bytes) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        method, target, *_ = [*lines[0].split(" "), "", ""]
        if method not in ("GET", "HEAD"):
            return _response("405 Method Not Allowed", "text/plain", b"use GET\n")
        if target.partition("?")[0] not in _PATHS:
            return _response("404 Not Found", "text/plain", b"see /metrics\n")
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        encode, content_type = choose_encoder(accept)
        body = encode(self._registry)
        return _response("200 OK", content_type, b"" if method == "HEAD" else body, len(body))

    def shutdown(self) -> None:
        """Close the socket and every connection, and stop the thread."""
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=5)
        self._stop_loop()

    def server_close(self) -> None:
        """Kept for callers of socketserver's API: `shutdown()` already closed everything."""
        self.shutdown()

    async def _close(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def _response(status: str, content_type: str, body: bytes, length: int | None = None) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def serve_metrics(
    registry: CollectorRegistry,
    host: str,
    port: int,
    timeout: float = 5.0,
    max_connections: int = 256,
) -> MetricsServer:
    """Serve `registry` at http://host:port/metrics; port 0 picks a free one."""
    return MetricsServer(registry, host, port, timeout, max_connections)
