"""Server settings: flags, each also read from a NEXTBEST_* environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nextbest.policy.requests import Limits
from nextbest.store.durable import Durability


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:port`) → (host, port); port 0 picks a free one."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    config: Path
    address: str = "127.0.0.1:50051"
    metrics_address: str = "127.0.0.1:9464"
    http_address: str | None = Field(
        None, description="the Azure Personalizer-compatible REST API; None: off"
    )
    data_dir: Path = Path("nextbest-data")
    log_level: str = "info"
    join_tick: float = Field(0.02, gt=0, description="seconds between checks for ended windows")
    retain_closed: int = Field(50_000, ge=0, description="closed events kept in memory")
    max_closed_bytes: int = Field(
        256 << 20, ge=0, description="bytes of closed events kept in memory (oldest go first)"
    )
    max_pending_bytes: int = Field(
        1 << 30, gt=0, description="bytes of pending events; past it Decide is shed"
    )
    grace: float = Field(5.0, ge=0, description="seconds in-flight RPCs get on shutdown")
    checkpoint_every: int = Field(10_000, ge=1, description="learned events between checkpoints")
    checkpoint_interval: float = Field(60.0, gt=0, description="seconds between checkpoints")
    max_receive_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="largest request accepted (gRPC's client default)"
    )
    durability: Durability = Field(default_factory=Durability)
    limits: Limits = Field(default_factory=Limits)
    auth_file: Path | None = Field(None, description="tokens with scopes (YAML); None: no auth")
    allow_unauthenticated: bool = Field(
        False, description="serve a non-loopback address without an auth file"
    )
    tls_cert: Path | None = Field(None, description="PEM certificate chain: serve TLS")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: Path | None = Field(
        None, description="PEM CA bundle: require client certificates it signed (mTLS)"
    )
    redis_url: str | None = Field(
        None, description="Redis mode: redis:// or rediss:// URL of a server or cluster node"
    )
    role: Literal["all", "server", "learner"] = Field(
        "all", description="Redis mode: answer DecisionService, learn, or both"
    )
    model_publish_interval: float = Field(
        1.0, gt=0, description="Redis mode: seconds between model snapshots (learner) and checks"
    )
    spool_max_bytes: int = Field(
        256 << 20,
        ge=4096,
        description="Redis mode: bytes a serving replica spools while Redis is unreachable; "
        "past it calls are refused and health says NOT_SERVING",
    )
    workers: int = Field(
        1, ge=1, description="serving processes sharing the gRPC port (Redis mode), one /metrics"
    )
    worker: int | None = Field(
        None,
        ge=0,
        description="set by a --workers parent in each child: its index; the child shares the "
        "gRPC port (SO_REUSEPORT) and serves no /metrics (the parent serves them all)",
    )

    @field_validator("address", "metrics_address")
    @classmethod
    def _address(cls, value: str) -> str:
        split_address(value)
        return value

    @field_validator("http_address")
    @classmethod
    def _http_address(cls, value: str | None) -> str | None:
        if value is not None:
            split_address(value)
        return value

    @model_validator(mode="after")
    def _tls(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS)")
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None:
            from nextbest.store.redis.connection import check_url

            check_url(value)
        return value

    @model_validator(mode="after")
    def _role(self) -> ServerSettings:
        if self.role != "all" and self.redis_url is None:
            raise ValueError(
                f"--role {self.role} needs --redis (roles split one process's work between "
                "processes that share Redis)"
            )
        return self

    @model_validator(mode="after")
    def _workers(self) -> ServerSettings:
        if self.workers == 1:
            return self
        flag = f"--workers {self.workers}"
        if self.redis_url is None:
            raise ValueError(
                f"{flag} needs --redis (embedded mode has one data dir, owned by one process)"
            )
        if split_address(self.address)[1] == 0:
            raise ValueError(
                f"{flag} needs a fixed --address port (with port 0 each worker would listen "
                "on a port of its own)"
            )
        if self.role == "learner":
            raise ValueError(f"{flag} runs serving processes: not with --role learner")
        if self.http_address is not None:
            raise ValueError(
                f"{flag} does not serve --http-address (one process does): leave it off"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("use debug, info, warning, error or critical")
        return value.lower()
