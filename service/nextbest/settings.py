"""Server settings: one model, each field a `nextbest serve` flag and a NEXTBEST_* variable.

`ServerSettings` is the one place a setting is declared. Its field's name makes the flag
(`data_dir` → `--data-dir`, unless a `Flag` it is annotated with names another) and the
environment variable (`NEXTBEST_DATA_DIR`), its description the help, its type and
constraints the validation (a `Literal` lists the choices), its default the default.

`nextbest serve` takes a flag given on its command line first, then the variable, then the
default (`ServerSettings.load`). Built in Python (tests, `nextbest simulate`, bench) the
settings are only what the caller passes: a NEXTBEST_* variable set for a server (or for a
client: NEXTBEST_TLS_CERT) must not reach an embedded one.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import NoneType
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from nextbest.policy.requests import Limits
from nextbest.store.durable import Durability, Fsync

ENV_PREFIX = "NEXTBEST_"
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
EventLoop = Literal["uvloop", "asyncio"]


@dataclass(frozen=True)
class Flag:
    """How a setting shows on the command line where its name does not say it: `name`, the
    flag (`--redis` for `redis_url`); `metavar`, what its value is in the help (`FILE`)."""

    name: str | None = None
    metavar: str | None = None


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:port`) → (host, port); port 0 picks a free one."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def _default_event_loop() -> EventLoop:
    return "uvloop" if has_uvloop() else "asyncio"


HostPort = Annotated[str, Flag(metavar="HOST:PORT")]
File = Annotated[Path, Flag(metavar="FILE")]
Seconds = Annotated[float, Flag(metavar="SECONDS")]
Bytes = Annotated[int, Flag(metavar="BYTES")]
Count = Annotated[int, Flag(metavar="N")]


class ServerSettings(BaseSettings):
    """Every setting of `nextbest serve`: add a field here and it has its flag, its
    NEXTBEST_* variable, its help line and its validation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="forbid", frozen=True
    )

    config: File = Field(description="policy YAML")
    address: HostPort = Field("127.0.0.1:50051", description="gRPC; port 0 picks a free one")
    metrics_address: HostPort = Field("127.0.0.1:9464", description="Prometheus /metrics")
    http_address: Annotated[str | None, Flag(metavar="HOST:PORT")] = Field(
        None, description="Azure Personalizer-compatible REST API; off unless given"
    )
    data_dir: Annotated[Path, Flag(metavar="DIR")] = Field(
        Path("nextbest-data"), description="where logs and models are kept"
    )
    fsync: Fsync = Field(
        Durability().fsync,
        description="when decisions and rewards reach the disk (see README); durability's fsync",
    )
    log_level: LogLevel = Field("info", description="JSON logs on stdout, from this level up")
    event_loop: EventLoop = Field(
        default_factory=_default_event_loop,
        description="uvloop (the default where installed: less CPU per call) or asyncio",
    )
    auth_file: Annotated[Path | None, Flag(metavar="FILE")] = Field(
        None,
        description="tokens with scopes (YAML, see README), re-read on SIGHUP; no auth "
        "unless given",
    )
    allow_unauthenticated: bool = Field(
        False, description="serve a non-loopback address without --auth-file"
    )
    tls_cert: Annotated[Path | None, Flag(metavar="FILE")] = Field(
        None, description="PEM certificate chain: serve TLS (with --tls-key)"
    )
    tls_key: Annotated[Path | None, Flag(metavar="FILE")] = Field(
        None, description="PEM private key of --tls-cert"
    )
    tls_client_ca: Annotated[Path | None, Flag(metavar="FILE")] = Field(
        None, description="PEM CA bundle: require client certificates it signed (mTLS)"
    )
    redis_url: Annotated[str | None, Flag("--redis", "URL")] = Field(
        None,
        description="Redis mode: redis://HOST:PORT (rediss:// for TLS) of a server or a "
        "cluster node; the password in the URL or NEXTBEST_REDIS_PASSWORD",
    )
    role: Literal["all", "server", "learner"] = Field(
        "all",
        description="Redis mode: server (answer DecisionService), learner (close windows, "
        "learn, publish models) or all",
    )
    model_publish_interval: Seconds = Field(
        1.0, gt=0, description="Redis mode: seconds between model snapshots (learner) and checks"
    )
    spool_max_bytes: Bytes = Field(
        256 << 20,
        ge=4096,
        description="Redis mode: what a serving replica keeps in its data dir while Redis is "
        "unreachable, at most (then it refuses calls and health says NOT_SERVING)",
    )
    workers: Count = Field(
        1,
        ge=1,
        description="serving processes sharing the gRPC port, one /metrics (Redis mode; "
        "see README)",
    )
    worker: Annotated[int | None, Flag(metavar="N")] = Field(
        None,
        ge=0,
        description="set by a --workers parent in each child: its index; the child shares the "
        "gRPC port (SO_REUSEPORT) and serves no /metrics (the parent serves them all)",
    )
    join_tick: Seconds = Field(0.02, gt=0, description="seconds between checks for ended windows")
    coalesce_wait: Seconds = Field(
        0.001,
        ge=0,
        le=0.1,
        description="seconds a Decide may wait for concurrent ones to be decided with, while "
        "calls come concurrently (less CPU per call under load); 0: never",
    )
    retain_closed: Count = Field(50_000, ge=0, description="closed events kept in memory")
    max_closed_bytes: Bytes = Field(
        256 << 20, ge=0, description="bytes of closed events kept in memory (oldest go first)"
    )
    max_pending_bytes: Bytes = Field(
        1 << 30, gt=0, description="bytes of pending events; past it Decide is shed"
    )
    grace: Seconds = Field(5.0, ge=0, description="seconds in-flight RPCs get on shutdown")
    checkpoint_every: Count = Field(10_000, ge=1, description="learned events between checkpoints")
    checkpoint_interval: Seconds = Field(60.0, gt=0, description="seconds between checkpoints")
    max_receive_message_bytes: Bytes = Field(
        4 * 1024 * 1024, ge=1024, description="largest request accepted (gRPC's client default)"
    )
    durability: Annotated[Durability, NoDecode, Flag(metavar="JSON")] = Field(
        default_factory=Durability,
        description="how the data dir is made durable and kept (see README): a JSON object "
        "of any of the fields shown; --fsync sets fsync",
    )
    limits: Annotated[Limits, NoDecode, Flag(metavar="JSON")] = Field(
        default_factory=Limits,
        description="per-request bounds (see README): a JSON object of any of the fields shown",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Built in Python, the settings are what the caller passes (see the module's
        docstring); `load` adds the environment."""
        return (init_settings,)

    @classmethod
    def load(cls, flags: Mapping[str, Any]) -> ServerSettings:
        """`nextbest serve`'s settings: `flags` (field name → the value given on the command
        line) over the NEXTBEST_* environment variables over the defaults. ValidationError
        when a value is wrong (`problems` says which, naming flags)."""
        given = {
            name: None if value == "" and optional(name) else value for name, value in flags.items()
        }
        return cls(**{**EnvSettingsSource(cls)(), **given})

    @field_validator("*", mode="before")
    @classmethod
    def _json_object(cls, value: Any, info: ValidationInfo) -> Any:
        """A dataclass setting (durability, limits) from the command line or the
        environment: a JSON object of any of its fields."""
        kind = cls.model_fields[info.field_name or ""].annotation
        if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
            return value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"not JSON ({exc})") from None
        if isinstance(value, dict):
            known = [f.name for f in dataclasses.fields(kind)]
            unknown = sorted(set(value) - set(known))
            if unknown:
                raise ValueError(f"no field {', '.join(unknown)}: use {', '.join(known)}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("event_loop")
    @classmethod
    def _event_loop(cls, value: EventLoop) -> EventLoop:
        if value == "uvloop" and not has_uvloop():
            raise ValueError("uvloop is not installed")
        return value

    @field_validator("address", "metrics_address", "http_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                split_address(value)
            except ValueError:
                raise ValueError("give HOST:PORT ([::1]:PORT for IPv6)") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None:
            from nextbest.store.redis.connection import check_url

            check_url(value)
        return value

    @model_validator(mode="after")
    def _one_fsync(self) -> ServerSettings:
        """`fsync` (`--fsync`) is `durability.fsync`: given either way, both say it (the
        flag wins). Set in place: this is the model's own construction."""
        if "fsync" in self.model_fields_set:
            durability = dataclasses.replace(self.durability, fsync=self.fsync)
            object.__setattr__(self, "durability", durability)
        else:
            object.__setattr__(self, "fsync", self.durability.fsync)
        return self

    @model_validator(mode="after")
    def _tls(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS)")
        return self

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


def _flag_meta(name: str) -> Flag:
    found = [m for m in ServerSettings.model_fields[name].metadata if isinstance(m, Flag)]
    return Flag(
        next((m.name for m in reversed(found) if m.name), None),
        next((m.metavar for m in reversed(found) if m.metavar), None),
    )


def flag(name: str) -> str:
    """The command-line flag of setting `name`: `--data-dir` for `data_dir`."""
    return _flag_meta(name).name or "--" + name.replace("_", "-")


def metavar(name: str) -> str | None:
    """What the value of setting `name` is in the help: FILE, HOST:PORT, {a,b}, …"""
    choices = choices_of(name)
    if choices:
        return "{" + ",".join(choices) + "}"
    return _flag_meta(name).metavar


def env_var(name: str) -> str:
    """The environment variable of setting `name`: NEXTBEST_DATA_DIR for `data_dir`."""
    return ENV_PREFIX + name.upper()


def choices_of(name: str) -> tuple[str, ...]:
    """The values a `Literal` setting takes; () for the others."""
    annotation = ServerSettings.model_fields[name].annotation
    if get_origin(annotation) is Literal:
        return tuple(str(choice) for choice in get_args(annotation))
    return ()


def optional(name: str) -> bool:
    """Whether setting `name` may be None (off, unless given)."""
    return NoneType in get_args(ServerSettings.model_fields[name].annotation)


def shown(value: Any) -> str:
    """A value as the help and messages show it, on one line."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.dumps(dataclasses.asdict(value))
    text = str(value)
    return text if text.isprintable() else repr(text)


def problems(exc: ValidationError) -> list[str]:
    """A `ServerSettings` ValidationError as lines that name the flag, one per wrong value:
    `--workers 0: Input should be greater than or equal to 1`, `--limits max_batch=x: …`
    (the messages of the validators across settings name their flags already)."""
    lines = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        loc = error["loc"]
        name = loc[0] if loc else None
        if (
            not isinstance(name, str)
            or name not in ServerSettings.model_fields
            or message.startswith("--")  # a validator's message: it names its flags
        ):
            lines.append(message)
        elif error["type"] == "missing":
            value = f" {metavar(name)}" if metavar(name) else ""
            lines.append(f"{flag(name)}{value} (or {env_var(name)}) is required")
        elif len(loc) > 1:
            where = ".".join(str(part) for part in loc[1:])
            lines.append(f"{flag(name)} {where}={shown(error['input'])}: {message}")
        else:
            lines.append(f"{flag(name)} {shown(error['input'])}: {message}")
    return lines
