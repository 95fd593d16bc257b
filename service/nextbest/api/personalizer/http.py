"""Serve the Personalizer API with uvicorn on the server's own event loop (beside grpc.aio).

The socket is bound here, so a busy address is an OSError naming it (uvicorn itself would
exit the process). uvicorn's signal handling is left out: the process's SIGTERM / SIGINT /
SIGHUP belong to ``nextbest serve``, which stops this server with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator

import uvicorn

from nextbest.api.auth import Authorizer, is_loopback
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics
from nextbest.policy.control import Control
from nextbest.policy.engine import Engine
from nextbest.settings import ServerSettings, split_address

from .app import PersonalizerApi


def check_exposure(settings: ServerSettings, authorizer: Authorizer) -> None:
    """Refuse an HTTP address others can reach when no caller would have to prove who it
    is (as for gRPC); ValueError says what to give."""
    if settings.http_address is None:
        return
    host, _ = split_address(settings.http_address)
    if (
        authorizer.enabled
        or settings.tls_client_ca is not None
        or is_loopback(host)
        or settings.allow_unauthenticated
    ):
        return
    raise ValueError(
        f"--http-address {settings.http_address} is reachable from other hosts and every "
        "call would be accepted: give --auth-file (or --tls-client-ca), or "
        "--allow-unauthenticated"
    )


class _Relay(logging.Handler):
    """uvicorn's own warnings and errors (a malformed request, a protocol error) as
    structlog JSON lines, like every other line the process writes."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.log = get_logger("nextbest.personalizer")

    def emit(self, record: logging.LogRecord) -> None:
        method = self.log.error if record.levelno >= logging.ERROR else self.log.warning
        method("http_server", message=record.getMessage()[:1024], exc_info=record.exc_info)


def _relay_uvicorn_logs() -> None:
    logger = logging.getLogger("uvicorn")
    if not any(isinstance(h, _Relay) for h in logger.handlers):
        logger.addHandler(_Relay())
        logger.propagate = False


class _Embedded(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the process's signals are nextbest serve's


class PersonalizerHttp:
    """The running HTTP server: `port` after `start`, then `stop`."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], port: int) -> None:
        self._server = server
        self._task = task
        self.port = port

    @classmethod
    async def start(
        cls,
        settings: ServerSettings,
        engine: Engine,
        control: Control,
        commit: Callable[[], Awaitable[None]],
        authorizer: Authorizer,
        metrics: Metrics,
    ) -> PersonalizerHttp:
        """Bind `settings.http_address` and serve; TLS (and client certificates) as for gRPC."""
        assert settings.http_address is not None
        check_exposure(settings, authorizer)
        host, port = split_address(settings.http_address)
        api = PersonalizerApi(
            engine,
            control,
            commit,
            authorizer,
            metrics,
            max_body_bytes=settings.max_receive_message_bytes,
            retention_days=math.ceil(settings.durability.retention_age / 86400),
        )
        config = uvicorn.Config(
            api.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            interface="asgi3",
            server_header=False,
            proxy_headers=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=max(math.ceil(settings.grace), 1),
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
            ssl_ca_certs=str(settings.tls_client_ca) if settings.tls_client_ca else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if settings.tls_client_ca else ssl.CERT_NONE,
        )
        _relay_uvicorn_logs()
        try:
            config.load()  # TLS files: fail here, not in the serving task
        except (OSError, ssl.SSLError) as exc:
            raise OSError(f"--http-address: cannot load TLS files: {exc}") from None
        try:
            sock = _listen(host, port)
        except OSError as exc:
            raise OSError(
                f"cannot bind HTTP to {settings.http_address} ({exc.strerror or exc})"
            ) from None
        bound = int(sock.getsockname()[1])
        server = _Embedded(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="nextbest-personalizer")
        while not server.started:
            if task.done():
                sock.close()
                task.result()  # raises what stopped it
                raise OSError(f"HTTP server on {settings.http_address} stopped at start")
            await asyncio.sleep(0.005)
        return cls(server, task, bound)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (within the grace period)."""
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Made with IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY
    only on connections of such a socket, and without it a keep-alive client waits for a
    delayed ACK (~40 ms) on every response."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
