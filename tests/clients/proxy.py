"""A gRPC proxy on 127.0.0.1 that forwards raw bytes to a real server, with scripted faults.

It lets a test break the network exactly where a retry matters: before the server saw the
call (``unavailable``), after the server acted but before the answer arrived
(``lost_response``), or after the server acted, holding the answer past the client's
deadline (``stall``).
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import grpc

Fault = Literal["unavailable", "lost_response", "stall"]


@dataclass(frozen=True)
class SeenCall:
    method: str  # short name: "Decide", "Reward", ...
    request: bytes
    metadata: dict[str, str]


class FaultyProxy:
    def __init__(self, target: str, credentials: grpc.ServerCredentials | None = None) -> None:
        self._upstream = grpc.insecure_channel(target)
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.calls: list[SeenCall] = []
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers([_Handler(self)])
        if credentials is None:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            self.port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self._server.start()
        self.target = f"127.0.0.1:{self.port}"

    def inject(self, method: str, *faults: Fault) -> None:
        """The next calls of ``method`` meet these faults, in order; later calls pass."""
        with self._lock:
            self._faults[method].extend(faults)

    def seen(self, method: str) -> list[SeenCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)
        self._upstream.close()

    def handle(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        short = method.rsplit("/", 1)[-1]
        metadata = {key: str(value) for key, value in context.invocation_metadata()}
        with self._lock:
            self.calls.append(SeenCall(short, request, metadata))
            fault = self._faults[short].popleft() if self._faults[short] else None
        if fault == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected: connection lost")
        forward: grpc.UnaryUnaryMultiCallable[bytes, bytes] = self._upstream.unary_unary(method)
        try:
            response: bytes = forward(request, timeout=10)
        except grpc.RpcError as exc:  # pass the server's status and details through
            context.set_trailing_metadata(tuple((m.key, m.value) for m in exc.trailing_metadata()))
            context.abort(exc.code(), exc.details() or "")
        if fault == "lost_response":
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected: response lost")
        if fault == "stall":  # answer only after the client gave up: its deadline passed
            ended = threading.Event()
            context.add_callback(ended.set)
            ended.wait(10)
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected: answered too late")
        return response


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, proxy: FaultyProxy) -> None:
        self.proxy = proxy

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any]:
        method: str = details.method

        def behaviour(request: bytes, context: grpc.ServicerContext) -> bytes:
            return self.proxy.handle(method, request, context)

        return grpc.unary_unary_rpc_method_handler(behaviour)
