"""Who may call: bearer tokens with scopes, read from an auth file, and mTLS identities.

The auth file (``--auth-file``, YAML) lists tokens by the hex SHA-256 of their text, never
the text itself::

    tokens:
      - name: support-agents      # the caller, in logs and audit records
        sha256: 9f86d08…          # sha256 of the token; `nextbest token new` makes both
        scopes: [decide, reward]

Clients send ``authorization: Bearer <token>``. A call without a token, or with one the file
does not list, is refused as unauthenticated; a listed token without the method's scope as
permission denied, naming the scope. Each token's hash is compared in constant time.

Without an auth file every call is let through; the caller is then the subject of the
client's certificate under mTLS (``--tls-client-ca``), else ``anonymous``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nextbest.policy.errors import DecisionError

SCOPES: tuple[str, ...] = ("decide", "reward", "read", "admin")
Scope = Literal["decide", "reward", "read", "admin"]
ANONYMOUS = "anonymous"
MAX_IDENTITY_CHARS = 256  # a certificate subject in logs and audit records: bounded
_BEARER = "bearer "
BEARER = "'authorization: Bearer <token>'"


class Unauthenticated(DecisionError):
    """The call carries no credentials the server accepts."""


class PermissionDenied(DecisionError):
    """The caller is known, but may not do this."""


class AuthFileError(ValueError):
    """An auth file that cannot be used; the message names the file and the entry."""


class Token(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    sha256: str
    scopes: tuple[Scope, ...] = Field(min_length=1)

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("must be the 64 hex digits of the token's SHA-256")
        return value


class AuthFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: tuple[Token, ...]

    @field_validator("tokens")
    @classmethod
    def _unique(cls, tokens: tuple[Token, ...]) -> tuple[Token, ...]:
        for attr in ("name", "sha256"):
            seen: set[str] = set()
            for token in tokens:
                value = getattr(token, attr)
                if value in seen:
                    shown = token.name if attr == "sha256" else value
                    raise ValueError(f"two tokens have the same {attr} ({shown!r})")
                seen.add(value)
        return tokens


def _describe(error: ValidationError, data: Any) -> str:
    parts = []
    for item in error.errors():
        loc = list(item["loc"])
        if len(loc) >= 2 and loc[0] == "tokens" and isinstance(loc[1], int):
            entry = data["tokens"][loc[1]] if isinstance(data, dict) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            where = f"tokens[{loc[1]}]" + (f" ({name})" if isinstance(name, str) else "")
            where += "".join(f".{part}" for part in loc[2:])
        else:
            where = ".".join(str(part) for part in loc) or "file"
        parts.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def load_auth_file(path: str | Path) -> AuthFile:
    """Read and validate an auth file; AuthFileError says what is wrong, and where."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuthFileError(f"auth file {path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise AuthFileError(f"auth file {path}: not valid YAML: {exc}") from None
    try:
        return AuthFile.model_validate(data)
    except ValidationError as exc:
        raise AuthFileError(f"auth file {path}: {_describe(exc, data)}") from None


def digest(token: str) -> str:
    """The hex SHA-256 of a token, as the auth file lists it."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(name: str, scopes: Sequence[str]) -> tuple[str, str]:
    """A fresh random token, and the entry (YAML, indented for the ``tokens:`` list of an
    auth file) that admits it."""
    token = f"nb_{secrets.token_urlsafe(32)}"
    try:
        entry = Token.model_validate({"name": name, "sha256": digest(token), "scopes": scopes})
    except ValidationError as exc:  # one line: "name: String should have at least 1 character"
        raise ValueError(_describe(exc, None)) from None
    item = yaml.safe_dump(
        [{"name": entry.name, "sha256": entry.sha256, "scopes": list(entry.scopes)}],
        sort_keys=False,
        default_flow_style=None,
    )
    return token, "".join(f"  {line}\n" for line in item.splitlines())


def is_loopback(host: str) -> bool:
    """Whether a listening host is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to may be public


def _token_of(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            if value[: len(_BEARER)].lower() == _BEARER:
                return value[len(_BEARER) :].strip() or None
            return None
    return None


def peer_subject(context: Any) -> str | None:
    """The subject of the client's certificate (mTLS), e.g. ``CN=agent-7,O=Acme``."""
    properties = context.auth_context()
    for key in ("x509_subject", "x509_common_name"):
        values = properties.get(key)
        if values:
            return bytes(values[0]).decode(errors="replace")[:MAX_IDENTITY_CHARS]
    return None


class Authorizer:
    """``authorizer(context, scope) -> caller``: the boundary's `authorize` hook.

    `path` None: every call is allowed (the caller is the mTLS subject when
    `client_certificates`, else anonymous). `reload()` re-reads the file; a bad file raises
    AuthFileError and the tokens in force stay.
    """

    def __init__(self, path: Path | None, client_certificates: bool = False) -> None:
        self.path = path
        self.client_certificates = client_certificates
        self._tokens: tuple[tuple[bytes, Token], ...] = ()
        if path is not None:
            self.reload()

    @property
    def enabled(self) -> bool:
        return self.path is not None

    @property
    def tokens(self) -> tuple[Token, ...]:
        return tuple(token for _, token in self._tokens)

    def reload(self) -> int:
        """Re-read the auth file; the number of tokens now in force."""
        if self.path is None:
            return 0
        loaded = load_auth_file(self.path)
        self._tokens = tuple((t.sha256.encode(), t) for t in loaded.tokens)  # one assignment
        return len(self._tokens)

    def _match(self, token: str) -> Token | None:
        """The entry whose hash is the token's; every entry is compared, in constant time."""
        candidate = digest(token).encode()
        found: Token | None = None
        for stored, entry in self._tokens:
            if hmac.compare_digest(stored, candidate):
                found = entry
        return found

    def __call__(self, context: Any, scope: str) -> str:
        """The gRPC hook: the bearer token of the call's metadata, else (without an auth
        file) the mTLS subject."""
        if self.path is None:
            subject = peer_subject(context) if self.client_certificates else None
            return subject or ANONYMOUS
        return self.check_token(_token_of(context.invocation_metadata()), scope)

    def check_token(self, token: str | None, scope: str, how: str = BEARER) -> str:
        """The caller a token names, if it has `scope`; for any transport (`how`: how to
        send one, for the refusal's message). Without an auth file: anonymous."""
        if self.path is None:
            return ANONYMOUS
        if token is None:
            raise Unauthenticated(f"this call needs a token with the {scope!r} scope: send {how}")
        entry = self._match(token)
        if entry is None:
            raise Unauthenticated(f"unknown token (this call needs the {scope!r} scope)")
        if scope not in entry.scopes:
            raise PermissionDenied(f"token {entry.name!r} lacks the {scope!r} scope")
        return entry.name
