"""The control files of a data dir: live overrides, the audit trail, and the model
checkpoints ops may roll back to (the :class:`~nextbest.policy.control.ControlStore` of
embedded mode).

``overrides.json`` is replaced atomically (written aside, fsynced, renamed) on each change;
``audit.jsonl`` gets one fsynced JSON line per change. Both are small and written only when
ops change something.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from nextbest.policy.control import AuditRecord, Checkpoint
from nextbest.policy.errors import ConfigError, FailedPrecondition, NotFound, Unavailable
from nextbest.policy.model import Model
from nextbest.policy.overrides import Override, Overrides, override_from
from nextbest.store.durable import DurableStore
from nextbest.store.files import write_atomic

OVERRIDES = "overrides.json"
AUDIT = "audit.jsonl"


class ControlFiles:
    def __init__(self, data_dir: Path, store: DurableStore | None) -> None:
        """`store`: the data dir's store, whose checkpoints a rollback serves; None in
        Redis mode, where models come from the learner and rollback is refused."""
        self.data_dir = data_dir
        self._store = store

    @property
    def store(self) -> DurableStore:
        if self._store is None:
            raise FailedPrecondition(
                "rollback is not available in Redis mode: serving replicas take the "
                "learner's published models"
            )
        return self._store

    # -- overrides -----------------------------------------------------------------------------

    def load_overrides(self) -> dict[str, Overrides]:
        """The overrides kept by the last run; ConfigError names a file that cannot be read
        (serving without them would silently undo what ops set)."""
        path = self.data_dir / OVERRIDES
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the live overrides: {exc}") from None
        try:
            return overrides_from_json(data)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def save_overrides(self, overrides: Mapping[str, Overrides]) -> None:
        text = overrides_json(overrides)
        try:
            write_atomic(self.data_dir / OVERRIDES, text)
        except OSError as exc:
            raise Unavailable(f"cannot keep the overrides: {exc.strerror or exc}") from None

    def audit(self, record: AuditRecord) -> None:
        line = orjson.dumps(asdict(record)) + b"\n"
        try:
            fd = os.open(self.data_dir / AUDIT, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                if os.write(fd, line) != len(line):
                    raise OSError(28, "short write: no space left on device")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise Unavailable(f"cannot write the audit trail: {exc.strerror or exc}") from None

    # -- models --------------------------------------------------------------------------------

    def checkpoints(self, policy: str) -> list[Checkpoint]:
        if self._store is None:
            return []
        found: list[Checkpoint] = []
        seen: set[str] = set()
        for _, manifest in self.store.checkpoints(policy).manifests():
            if manifest is None or str(manifest.learned) in seen:
                continue  # the newest checkpoint of a version is the one it names
            seen.add(str(manifest.learned))
            found.append(
                Checkpoint(
                    str(manifest.learned), manifest.learned, manifest.created_at, manifest.vw_args
                )
            )
        return found

    def load(self, policy: str, version: str, vw_args: str) -> Model:
        for path, manifest in self.store.checkpoints(policy).manifests():
            if manifest is None or str(manifest.learned) != version:
                continue
            if manifest.vw_args != vw_args:
                raise FailedPrecondition(
                    f"checkpoint {version!r} was made with other vw_args "
                    f"({manifest.vw_args!r}) than the policy's ({vw_args!r})",
                    "version",
                )
            try:
                return Model(vw_args, initial=path, learned=manifest.learned)
            except ConfigError as exc:
                raise FailedPrecondition(f"checkpoint {version!r}: {exc}", "version") from None
        raise NotFound(f"policy {policy!r} has no checkpoint of version {version!r}", "version")

    def keep(self, policy: str, model: Model) -> None:
        try:
            self.store.keep_model(policy, model)
        except OSError as exc:
            raise Unavailable(f"cannot save the model: {exc.strerror or exc}") from None


def overrides_json(overrides: Mapping[str, Overrides]) -> bytes:
    """Every policy's overrides as the overrides file holds them (also what Redis mode
    shares between replicas)."""
    data = {
        policy: {setting: _fields(o) for setting, o in settings.items()}
        for policy, settings in overrides.items()
    }
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def overrides_from_json(data: bytes) -> dict[str, Overrides]:
    """What `overrides_json` wrote; ValueError saying why when it is not that."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"cannot read the live overrides: {exc}") from None
    try:
        return {
            policy: {setting: override_from(setting, o) for setting, o in settings.items()}
            for policy, settings in doc.items()
        }
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"not an overrides file: {exc}") from None


def _fields(o: Override) -> dict[str, Any]:
    fields = asdict(o)
    del fields["setting"]
    return fields
