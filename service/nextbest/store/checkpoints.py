"""Model checkpoints: versioned, atomic, the last K kept.

A checkpoint is a VW model file (with its learning state) and a manifest naming the
policy's vw_args, the events learned, the position in the decision log it includes, and
the file's sha256. Both are written to a temporary name, fsynced and renamed, so a crash
leaves either the whole checkpoint or none; a checkpoint whose file does not match its
manifest is passed over (and reported) in favour of the next older one.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from nextbest.policy.model import Model
from nextbest.store.files import fsync_dir


@dataclass(frozen=True, slots=True)
class Manifest:
    policy: str
    vw_args: str
    learned: int
    log_seq: int  # decision-log lines [0, log_seq) are in this model
    sha256: str
    created_at: float


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class Checkpoints:
    """The checkpoints of one policy, in `directory`."""

    def __init__(self, directory: Path, keep: int = 3) -> None:
        self.directory = directory
        self.keep = keep

    def save(self, policy: str, model: Model, log_seq: int) -> Manifest:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = f"{model.learned:012d}-{log_seq:012d}"
        model_path = self.directory / f"{stem}.vw"
        tmp = self.directory / f"{stem}.vw.tmp"
        model.save(tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(model_path)
        manifest = Manifest(
            policy, model.vw_args, model.learned, log_seq, _sha256(model_path), time.time()
        )
        _write_atomic(self.directory / f"{stem}.json", orjson.dumps(manifest))
        fsync_dir(self.directory)
        self._prune()
        return manifest

    def manifests(self) -> list[tuple[Path, Manifest | None]]:
        """(model path, manifest or None when unreadable), newest first."""
        out: list[tuple[Path, Manifest | None]] = []
        for path in sorted(self.directory.glob("*.json"), reverse=True):
            try:
                manifest = Manifest(**orjson.loads(path.read_bytes()))
            except (orjson.JSONDecodeError, TypeError, OSError):
                manifest = None
            out.append((path.with_suffix(".vw"), manifest))
        return out

    def newest(self, vw_args: str, problems: list[str]) -> tuple[Path, Manifest] | None:
        """The newest checkpoint that is whole and made with these vw_args."""
        for model_path, manifest in self.manifests():
            if manifest is None:
                problems.append(f"{model_path.with_suffix('.json')}: unreadable manifest")
            elif not model_path.exists() or _sha256(model_path) != manifest.sha256:
                problems.append(f"{model_path}: missing or does not match its manifest")
            elif manifest.vw_args != vw_args:
                problems.append(f"{model_path}: made with other vw_args ({manifest.vw_args!r})")
            else:
                return model_path, manifest
        return None

    def _prune(self) -> None:
        for model_path, _ in self.manifests()[self.keep :]:
            model_path.with_suffix(".json").unlink(missing_ok=True)
            model_path.unlink(missing_ok=True)
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
