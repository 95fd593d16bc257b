"""DSJSON decision logs → compact numpy arrays, and back to lines VW can learn from.

An event is what off-policy estimators need and nothing more: how many actions were
eligible, which one was chosen, with what probability, and the reward it earned
(``−_label_cost``). Those live in flat arrays (one slot per event, or one per eligible
action with ``offsets`` marking each event's slice), so the estimators are vectorised and
a million events cost tens of MB rather than a million Python dicts.

VW's own DSJSON parser reads the features (``vw --dsjson`` is the reference for what a line
means), so the first pass keeps no features at all: when a VW learner needs them, ``replay``
reads the used lines again and rebuilds each as a canonical DSJSON line (labels, ``a``,
``p``, ``c``). Rebuilding rather than passing the line through matters: VW silently reads a
line without ``a`` as an example with no actions, it has no use for the ``_nextbest`` record
(often most of the bytes), and an alternative reward needs another ``_label_cost``.

Every malformed line stops the read with a `LogError` naming the file and the line: an
estimate silently computed on part of a log is worse than none.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from nextbest.policy.features import escape

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SUFFIXES = (".dsjson", ".json", ".jsonl")
PROGRESS_EVERY = 4096  # lines between progress callbacks
# Rescores one event from its `_nextbest` record (None for foreign lines) and logged reward.
Rescorer = Callable[[dict[str, Any] | None, float], float]
Progress = Callable[[str, int, int], None]  # (phase, done, total)


class LogError(Exception):
    """Input that cannot be evaluated; names the file and the line when there is one."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


@dataclass(frozen=True, slots=True)
class Window:
    """Which events to read: a time window (epoch seconds) and a policy name."""

    since: float | None = None
    until: float | None = None
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """One file and the 1-based numbers of its lines that became events, in order."""

    path: Path
    lines: IntArray


@dataclass(slots=True)
class Log:
    """The events used, as arrays; ``offsets[i]:offsets[i + 1]`` are event i's action slots."""

    sources: list[Source]
    offsets: IntArray  # n + 1
    chosen: IntArray  # n: 0-based index of the logged action in `_multi`
    probability: FloatArray  # n: the logged probability of that action
    logged_pmf: FloatArray  # Σ sizes: the logging pmf from `a`/`p`; NaN where not logged
    reward: FloatArray  # n: −_label_cost
    alt_reward: FloatArray | None = None  # n: under --reward-spec
    action_codes: IntArray | None = None  # Σ sizes: vocabulary code of each action, −1 unknown
    baseline_codes: IntArray | None = None  # n: the caller's baseline action, −1 none
    vocabulary: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # `_skipLearn` events, left out
    unlabelled: int = 0  # lines without `_label_cost`, left out
    outside_window: int = 0  # before --since, from --until on, or without a time
    other_policies: int = 0  # `_nextbest.policy` is not --policy-name
    modes: Counter[str] = field(default_factory=Counter)  # events per `_nextbest.mode`

    @property
    def n(self) -> int:
        return len(self.chosen)

    @property
    def sizes(self) -> IntArray:
        return np.diff(self.offsets)

    @property
    def chosen_slots(self) -> IntArray:
        """The flat slot of each event's logged action."""
        return self.offsets[:-1] + self.chosen

    @property
    def deterministic(self) -> int:
        """Events logged with probability 1: no exploration, so no other choice is learnable."""
        return int(np.count_nonzero(self.probability >= 1.0))

    def where(self, event: int) -> tuple[Path, int]:
        """The file and line an event was read from."""
        for source in self.sources:
            if event < len(source.lines):
                return source.path, int(source.lines[event])
            event -= len(source.lines)
        raise IndexError(event)

    def code(self, action_id: str) -> int:
        """The vocabulary code of an action id (or of its escaped form, as nextbest writes
        it in `id=` features); −1 when no event has it."""
        found = self.vocabulary.get(action_id)
        if found is None:
            found = self.vocabulary.get(escape(action_id))
        return -1 if found is None else found


# -- finding the files ---------------------------------------------------------------------


def resolve(paths: Sequence[Path], policy: str | None) -> list[Path]:
    """The DSJSON files named by LOG arguments: files as given; a folder's ``*.dsjson`` /
    ``*.json`` / ``*.jsonl`` in name order (segments are numbered); a nextbest data dir (or
    its ``policies/`` folder) → that policy's ``decisions/``, chosen by `policy` when the
    dir holds several."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(_folder(path, policy))
        else:
            raise LogError("no such file or folder", path)
    if not files:
        raise LogError("no DSJSON files (*.dsjson, *.json, *.jsonl) found", paths[0])
    return files


def _folder(path: Path, policy: str | None) -> list[Path]:
    policies = path / "policies" if (path / "policies").is_dir() else path
    names = sorted(p.name for p in policies.iterdir() if (p / "decisions").is_dir())
    if (path / "decisions").is_dir():
        return _files(path / "decisions")
    if names:
        if policy is None:
            if len(names) > 1:
                raise LogError(
                    f"holds the logs of several policies ({', '.join(names)}): "
                    "choose one with --policy-name",
                    path,
                )
            policy = names[0]
        if policy not in names:
            raise LogError(f"has no policy {policy!r}; it has: {', '.join(names)}", path)
        return _files(policies / policy / "decisions")
    return _files(path)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES)


# -- reading -------------------------------------------------------------------------------


def read(
    files: Sequence[Path],
    window: Window | None = None,
    *,
    ids: bool = False,
    rescorer: Rescorer | None = None,
    progress: Progress | None = None,
) -> Log:
    """Read the events of `files` (in order). `ids`: also the action ids and baselines
    (for ``constant:ID`` and ``baseline``); `rescorer`: also each event's alternative reward."""
    builder = _Builder(window or Window(), ids, rescorer)
    total = sum(f.stat().st_size for f in files)
    done = 0
    for path in files:
        lines: list[int] = []
        try:
            with path.open("rb") as handle:
                for number, raw in enumerate(handle, 1):
                    done += len(raw)
                    if progress is not None and number % PROGRESS_EVERY == 0:
                        progress("read", done, total)
                    if raw.isspace():
                        continue
                    try:
                        if builder.add(raw):
                            lines.append(number)
                    except (ValueError, TypeError, KeyError, IndexError) as exc:
                        raise LogError(_message(exc), path, number) from None
        except OSError as exc:
            raise LogError(f"cannot read: {exc.strerror or exc}", path) from None
        builder.sources.append(Source(path, np.asarray(lines, dtype=np.int64)))
    if progress is not None:
        progress("read", total, total)
    log = builder.log()
    if log.n == 0:
        raise LogError(_nothing(log), files[0] if len(files) == 1 else None)
    return log


def _message(exc: Exception) -> str:
    if isinstance(exc, orjson.JSONDecodeError):
        return f"not valid JSON (a truncated or torn line?): {exc}"
    return str(exc)


def _nothing(log: Log) -> str:
    reasons = [
        f"{count} {what}"
        for count, what in (
            (log.skipped, "with _skipLearn"),
            (log.unlabelled, "without _label_cost"),
            (log.outside_window, "outside --since/--until"),
            (log.other_policies, "of other policies than --policy-name"),
        )
        if count
    ]
    left = f" (left out: {', '.join(reasons)})" if reasons else ""
    return "no events to evaluate" + left


class _Builder:
    """Accumulates events line by line into Python lists (cheap appends), then arrays."""

    def __init__(self, window: Window, ids: bool, rescorer: Rescorer | None) -> None:
        self.window = window
        self.ids = ids
        self.rescorer = rescorer
        self.sources: list[Source] = []
        self.sizes: list[int] = []
        self.chosen: list[int] = []
        self.probability: list[float] = []
        self.pmf: list[float] = []
        self.reward: list[float] = []
        self.alt: list[float] = []
        self.codes: list[int] = []
        self.baselines: list[int] = []
        self.vocabulary: dict[str, int] = {}
        self.id_codes: dict[tuple[str | None, ...], list[int]] = {}
        self.counts: Counter[str] = Counter()
        self.modes: list[Any] = []
        self.timed = self.window.since is not None or self.window.until is not None

    def add(self, raw: bytes) -> bool:
        """Parse one line; True when it became an event. ValueError etc. say what is wrong."""
        record = orjson.loads(raw)
        if not isinstance(record, dict):
            raise ValueError("not a DSJSON event: a JSON object is expected")
        actions = _actions(record)
        size = len(actions)
        chosen = _chosen(record, size)
        probability = _probability(record)
        pmf = _pmf(record, size)
        if record.get("_skipLearn") is True:
            self.counts["skipped"] += 1
            return False
        cost = record.get("_label_cost")
        if cost is None:
            self.counts["unlabelled"] += 1
            return False
        if (type(cost) is not float and type(cost) is not int) or not math.isfinite(cost):
            raise ValueError(f"_label_cost {cost!r} is not a finite number")
        inner = record.get("_nextbest")
        nb = inner if isinstance(inner, dict) else None
        window = self.window
        if window.policy is not None and nb is not None and nb.get("policy") != window.policy:
            self.counts["other_policies"] += 1
            return False
        if self.timed:
            at = _time(record, nb)
            if (
                at is None
                or (window.since is not None and at < window.since)
                or (window.until is not None and at >= window.until)
            ):
                self.counts["outside_window"] += 1
                return False
        reward = -float(cost)
        if self.rescorer is not None:
            self.alt.append(self.rescorer(nb, reward))
        if self.ids:
            self._ids(actions, nb)
        if nb is not None:
            self.modes.append(nb.get("mode"))
        self.sizes.append(size)
        self.chosen.append(chosen)
        self.probability.append(probability)
        self.pmf.extend(pmf)
        self.reward.append(reward)
        return True

    def _ids(self, actions: list[Any], nb: dict[str, Any] | None) -> None:
        # nextbest's own record holds each action's raw id (the `id=` feature holds it
        # escaped; `Log.code` matches either): reading it is cheaper than the features.
        eligible = nb.get("eligible") if nb is not None else None
        names: tuple[str | None, ...]
        if isinstance(eligible, list) and len(eligible) == len(actions):
            names = tuple(e.get("id") if isinstance(e, dict) else None for e in eligible)
        else:
            names = tuple(_action_id(a) for a in actions)
        codes = self.id_codes.get(names)  # a catalog repeats the same few id lists
        if codes is None:
            vocabulary = self.vocabulary
            codes = [
                -1 if not isinstance(n, str) else vocabulary.setdefault(n, len(vocabulary))
                for n in names
            ]
            self.id_codes[names] = codes
        self.codes.extend(codes)
        baseline = nb.get("baseline_action_id") if nb is not None else None
        if isinstance(baseline, str) and baseline:
            vocabulary = self.vocabulary
            code = vocabulary.get(baseline)
            if code is None:  # the raw id; the features carry it escaped, as nextbest writes
                code = vocabulary.setdefault(escape(baseline), len(vocabulary))
            self.baselines.append(code)
        else:
            self.baselines.append(-1)

    def log(self) -> Log:
        offsets = np.zeros(len(self.sizes) + 1, dtype=np.int64)
        np.cumsum(np.asarray(self.sizes, dtype=np.int64), out=offsets[1:])
        return Log(
            sources=self.sources,
            offsets=offsets,
            chosen=np.asarray(self.chosen, dtype=np.int64),
            probability=np.asarray(self.probability, dtype=np.float64),
            logged_pmf=np.asarray(self.pmf, dtype=np.float64),
            reward=np.asarray(self.reward, dtype=np.float64),
            alt_reward=np.asarray(self.alt, dtype=np.float64) if self.rescorer else None,
            action_codes=np.asarray(self.codes, dtype=np.int64) if self.ids else None,
            baseline_codes=np.asarray(self.baselines, dtype=np.int64) if self.ids else None,
            vocabulary=self.vocabulary,
            skipped=self.counts["skipped"],
            unlabelled=self.counts["unlabelled"],
            outside_window=self.counts["outside_window"],
            other_policies=self.counts["other_policies"],
            modes=Counter(str(mode) for mode in self.modes),
        )


def _actions(record: dict[str, Any]) -> list[Any]:
    shared = record.get("c")
    actions = shared.get("_multi") if isinstance(shared, dict) else None
    if not isinstance(actions, list):
        raise ValueError("not a contextual-bandit event: no c._multi list of actions")
    if not actions:
        raise ValueError("c._multi is empty: an event needs at least one action")
    return actions


def _chosen(record: dict[str, Any], size: int) -> int:
    index = record.get("_labelIndex")
    action = record.get("_label_Action")
    if type(index) is int and type(action) is int and index == action - 1 and 0 <= index < size:
        return index  # the common case, checked first
    if index is None and action is None:
        logged = record.get("a")
        if not isinstance(logged, list) or not logged:
            raise ValueError("no chosen action: _labelIndex, _label_Action and a are missing")
        action = logged[0]
    chosen = _integer(index, "_labelIndex") if index is not None else None
    if action is not None:
        from_action = _integer(action, "_label_Action") - 1
        if chosen is not None and chosen != from_action:
            raise ValueError(
                f"_labelIndex {chosen} and _label_Action {from_action + 1} disagree "
                "(_label_Action is 1-based)"
            )
        chosen = from_action
    assert chosen is not None
    if not 0 <= chosen < size:
        raise ValueError(f"the chosen action {chosen + 1} (1-based) is not among {size} actions")
    return chosen


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} {value!r} is not an integer")
    return value


def _probability(record: dict[str, Any]) -> float:
    value = record.get("_label_probability")
    if type(value) is float and 0.0 < value <= 1.0:  # the common case, checked first
        return value
    if value is None:
        logged = record.get("p")
        value = logged[0] if isinstance(logged, list) and logged else None
    if value is None:
        raise ValueError("no _label_probability: the logged probability is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"_label_probability {value!r} is not a number")
    if value <= 0.0:
        raise ValueError(
            f"_label_probability is {value}: an action logged with probability 0 "
            "cannot be importance-weighted"
        )
    if value > 1.0:
        raise ValueError(f"_label_probability is {value}, above 1")
    return float(value)


_UNKNOWN = float("nan")


def _pmf(record: dict[str, Any], size: int) -> list[float]:
    """The logging pmf over `_multi` from `a` and `p` (NaN where they do not say); checks
    them: as many, `a` 1-based within `_multi`, `p` within [0, 1]."""
    logged, pmf = record.get("a"), record.get("p")
    if logged is None and pmf is None:
        return [_UNKNOWN] * size
    if not isinstance(logged, list) or not isinstance(pmf, list) or len(logged) != len(pmf):
        raise ValueError("a and p must be lists of the same length")
    out = [_UNKNOWN] * size  # an action `a` does not list: its probability is not known
    try:  # the fast path: comparisons raise TypeError on anything but numbers
        for index, value in zip(logged, pmf, strict=True):
            if not (0 < index <= size and 0 <= value <= 1) or index is True or value is True:
                raise TypeError
            out[index - 1] = float(value)
        return out
    except TypeError:
        pass
    for index, value in zip(logged, pmf, strict=True):  # which one, and why
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= size:
            raise ValueError(f"a holds {index!r}, not a 1-based index of the {size} actions")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"p holds {value!r}, not a probability in [0, 1]")
    raise AssertionError("unreachable: the fast path found a fault the slow one did not")


def _action_id(action: Any) -> str | None:
    """An action's id from its features: a key ``id=ID`` (nextbest and most producers), or
    a feature ``"id": "ID"`` (a string feature), in any namespace of the action."""
    if not isinstance(action, dict):
        return None
    found = action.get("id")
    if isinstance(found, str):
        return found
    for namespace in action.values():
        if isinstance(namespace, dict):
            for key, value in namespace.items():
                if key.startswith("id="):
                    return str(key[3:])
                if key == "id" and isinstance(value, str):
                    return value
    return None


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _time(record: dict[str, Any], nb: dict[str, Any] | None) -> float | None:
    stamp = record.get("Timestamp")
    if isinstance(stamp, str):
        return parse_time(stamp)
    decided = nb.get("decided_at") if nb is not None else None
    return float(decided) if isinstance(decided, int | float) else None


def parse_time(text: str) -> float:
    """ISO 8601 (a date, or a date and time; no zone means UTC) → epoch seconds.
    Fractions beyond microseconds (Personalizer writes 7 digits) are cut."""
    try:
        when = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


# -- replaying the lines for VW ------------------------------------------------------------


_MARK = b',"_nextbest":'


def replay(log: Log) -> Iterator[dict[str, Any]]:
    """The used events' records again, in order (for `vw_line`), checked against the log.

    VW needs none of the ``_nextbest`` record, usually most of a line's bytes, and the line
    was checked whole by `read`: only what comes before the record is parsed when that is
    a JSON object by itself, which it is exactly when the record is a top-level key (as
    nextbest writes it: last)."""
    event = 0
    sizes, chosen = log.sizes.tolist(), log.chosen.tolist()
    loads = orjson.loads
    for source in log.sources:
        for number, raw in _numbered(source):
            try:
                record = None
                cut = raw.find(_MARK)
                if cut > 0:
                    try:
                        record = loads(raw[:cut] + b"}")
                    except orjson.JSONDecodeError:
                        record = None
                if not isinstance(record, dict) or "c" not in record:
                    record = loads(raw)
                size = len(_actions(record))
                if size != sizes[event] or _chosen(record, size) != chosen[event]:
                    raise ValueError("another event is on this line now")
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise LogError(f"changed while being read: {exc}", source.path, number) from None
            yield record
            event += 1
    if event != log.n:
        raise LogError(f"changed while being read: {event} of {log.n} events found again")


def _numbered(source: Source) -> Iterable[tuple[int, bytes]]:
    wanted = source.lines
    if len(wanted) == 0:
        return
    k = 0
    with source.path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == wanted[k]:
                yield number, raw
                k += 1
                if k == len(wanted):
                    return


def vw_line(
    record: dict[str, Any], chosen: int, cost: float, probability: float | None = None
) -> str:
    """The event as VW's DSJSON reader wants it: labels, ``a`` (chosen first) and ``p`` as
    logged (or the chosen one's probability and the rest spread evenly), and ``c`` as is.
    `cost` replaces the logged ``_label_cost``; `probability` (1 for a plain regression)
    the logged probability."""
    shared = record["c"]
    size = len(shared["_multi"])
    logged_probability = _probability(record)
    order = [chosen + 1, *(k + 1 for k in range(size) if k != chosen)]
    if size == 1:
        pmf = [1.0]
    else:
        rest = (1.0 - logged_probability) / (size - 1)
        pmf = [logged_probability] + [rest] * (size - 1)
    logged, logged_p = record.get("a"), record.get("p")
    if isinstance(logged, list) and isinstance(logged_p, list) and len(logged) == size:
        by_action = dict(zip(logged, logged_p, strict=True))
        pmf = [float(by_action.get(a, 0.0)) for a in order]
        pmf[0] = logged_probability
    if probability is not None:
        pmf = [probability] + [0.0] * (size - 1)
    line = {
        "_label_cost": cost,
        "_label_probability": logged_probability if probability is None else probability,
        "_label_Action": chosen + 1,
        "_labelIndex": chosen,
        "a": order,
        "p": pmf,
        "c": shared,
    }
    return orjson.dumps(line).decode()
