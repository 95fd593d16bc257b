"""Model checkpoints: versioned, atomic, the last K kept.

Checkpoints are named and ordered by a generation number that grows with every save, not
by learned count: a model started afresh (new vw_args) learns from zero, and its first
checkpoint is still the newest.

A checkpoint is a VW model file (with its learning state) and a manifest naming the
policy's vw_args, the events learned, the position in the decision log it includes, and
the file's sha256. Both are written to a temporary name, fsynced and renamed, so a crash
leaves either the whole checkpoint or none; a checkpoint whose file does not match its
manifest is passed over (and reported) in favour of the next older one.

Taking a checkpoint is split for the event loop: `Checkpoints.take` copies the model's
bytes (on the thread that owns the VW workspace, quickly), `Checkpoints.write` does the
file work (on any thread).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from nextbest.policy.model import Model
from nextbest.store.files import write_atomic


@dataclass(frozen=True, slots=True)
class Manifest:
    policy: str
    vw_args: str
    learned: int
    log_seq: int  # decision-log lines [0, log_seq) are in this model
    sha256: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A model's bytes as `Model.save` writes them, and its learned count then."""

    vw_args: str
    learned: int
    data: bytes


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Checkpoints:
    """The checkpoints of one policy, in `directory`."""

    def __init__(self, directory: Path, keep: int = 3) -> None:
        self.directory = directory
        self.keep = keep

    def save(self, policy: str, model: Model, log_seq: int) -> Manifest:
        """Write a checkpoint of `model` as the newest, all on this thread; OSError (also
        for VW's own save error) leaves no temporary file behind."""
        return self.write(policy, self.take(model), log_seq)

    def take(self, model: Model) -> Snapshot:
        """The model's bytes, now: the only part of a checkpoint that needs the thread
        owning the model (VW workspaces are not thread-safe). OSError if VW cannot save."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return Snapshot(model.vw_args, model.learned, model.snapshot(self.directory))

    def write(self, policy: str, snapshot: Snapshot, log_seq: int) -> Manifest:
        """Write `snapshot` as the newest checkpoint, then prune. Only files are touched, so
        any thread may do it, one checkpoint at a time. OSError leaves no temporary file
        behind."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = f"g{self._generation() + 1:012d}-{snapshot.learned:012d}-{log_seq:012d}"
        try:
            write_atomic(self.directory / f"{stem}.vw", snapshot.data)
            digest = hashlib.sha256(snapshot.data).hexdigest()
            manifest = Manifest(
                policy, snapshot.vw_args, snapshot.learned, log_seq, digest, time.time()
            )
            write_atomic(self.directory / f"{stem}.json", orjson.dumps(manifest))
        except OSError:
            if not (self.directory / f"{stem}.json").exists():  # else it is whole
                for leftover in self.directory.glob(f"{stem}.*"):
                    leftover.unlink(missing_ok=True)
            raise
        self._prune()
        return manifest

    def manifests(self) -> list[tuple[Path, Manifest | None]]:
        """(model path, manifest or None when unreadable), newest first: by generation
        (``g<generation>-<learned>-<log position>``), then older names
        (``<learned>-<log position>``) by learned count."""
        out: list[tuple[Path, Manifest | None]] = []
        for path in sorted(self.directory.glob("*.json"), key=_order, reverse=True):
            try:
                manifest: Manifest | None = Manifest(**orjson.loads(path.read_bytes()))
            except (orjson.JSONDecodeError, TypeError, OSError):
                manifest = None
            if manifest is not None and not _whole(manifest):
                manifest = None
            out.append((path.with_suffix(".vw"), manifest))
        return out

    def _generation(self) -> int:
        names = [p.stem for p in self.directory.glob("g*.json")]
        return max((_order(Path(name))[0] for name in names), default=0)

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
        for tmp in [*self.directory.glob("*.tmp"), *self.directory.glob("*.tmp.writing")]:
            tmp.unlink(missing_ok=True)


def _order(path: Path) -> tuple[int, str]:
    """Newest last: (generation, name); names from before generations count as 0."""
    stem = path.name.split(".")[0]
    if stem.startswith("g") and stem[1:13].isdigit():
        return int(stem[1:13]), stem
    return 0, stem


def _whole(m: Manifest) -> bool:
    """A manifest whose fields have the types recovery relies on."""
    texts = all(isinstance(x, str) for x in (m.policy, m.vw_args, m.sha256))
    counts = all(isinstance(x, int) and not isinstance(x, bool) for x in (m.learned, m.log_seq))
    return texts and counts and isinstance(m.created_at, int | float)
