"""`nextbest health --address HOST:PORT`: ask a server's grpc.health.v1 service.

Exit 0 only when it answers SERVING; 1 when it answers anything else (NOT_SERVING while a
data dir failure is pending a restart, or shutting down); 2 when it cannot be reached in
time. Docker's HEALTHCHECK and Kubernetes exec probes run it inside the container.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SERVING = 0
NOT_SERVING = 1
UNREACHABLE = 2


def add_arguments(parser: argparse.ArgumentParser, default_address: str | None) -> None:
    parser.add_argument(
        "--address",
        default=default_address,
        help="gRPC HOST:PORT of the server [NEXTBEST_ADDRESS, else 127.0.0.1:50051]",
    )
    parser.add_argument(
        "--service",
        default="",
        help="the service to ask about ['': the whole server; nextbest.v1.DecisionService]",
    )
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds to wait for the answer [3]"
    )
    parser.add_argument(
        "--tls-ca",
        default=os.environ.get("NEXTBEST_HEALTH_TLS_CA"),
        help="ask over TLS, trusting this CA bundle (PEM) [NEXTBEST_HEALTH_TLS_CA]",
    )
    for name, what in (("cert", "certificate"), ("key", "key")):
        parser.add_argument(
            f"--tls-{name}",
            default=os.environ.get(f"NEXTBEST_HEALTH_TLS_{name.upper()}"),
            help=f"client {what} (PEM), for a server that requires one (mTLS) "
            f"[NEXTBEST_HEALTH_TLS_{name.upper()}]",
        )
    parser.add_argument(
        "--tls-server-name",
        default=os.environ.get("NEXTBEST_HEALTH_TLS_SERVER_NAME"),
        help="the name the server's certificate carries, when the address does not "
        "[NEXTBEST_HEALTH_TLS_SERVER_NAME]",
    )


def probe_address(address: str) -> str:
    """The address to dial for a listening address: a wildcard host means this host."""
    host, sep, port = address.rpartition(":")
    if sep and host in ("0.0.0.0", "[::]", "::", ""):
        return f"127.0.0.1:{port}"
    return address


def check(
    address: str,
    service: str = "",
    timeout: float = 3.0,
    tls_ca: str | None = None,
    server_name: str | None = None,
    client: tuple[str, str] | None = None,
) -> tuple[int, str]:
    """(exit code, what was found) for the server at `address`; over TLS when `tls_ca` is
    given, with a `client` (cert, key) pair when the server requires one (mTLS). Health
    needs no token."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = probe_address(address)
    if tls_ca:
        from nextbest_client import TLSConfig

        cert, key = client if client else (None, None)
        credentials = TLSConfig(ca=Path(tls_ca), cert=cert, key=key).credentials()
        options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            name = code.name if code is not None else type(exc).__name__
            return UNREACHABLE, f"{target}: {name}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return (SERVING if status == "SERVING" else NOT_SERVING), f"{target}: {status}"


def run(args: argparse.Namespace) -> int:
    code, found = check(
        args.address or "127.0.0.1:50051",
        args.service,
        args.timeout,
        args.tls_ca,
        args.tls_server_name,
        (args.tls_cert, args.tls_key) if args.tls_cert and args.tls_key else None,
    )
    print(found, file=sys.stdout if code == SERVING else sys.stderr)
    return code
