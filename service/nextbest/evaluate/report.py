"""What an evaluation shows: a table for people, ``--json`` for scripts, ``--plot`` for slides.

The JSON has one stable shape (documented in the README and in issue 12), whatever the
options: ``{"events", "skipped", "policies": [{"policy", "estimates": {"ips", "snips",
"dr": {"value", "ci": [low, high]}}, "effective_sample_size"}]}``; a value the log cannot
give is null. Estimates under ``--reward-spec`` are further entries of ``policies``, named
``"<policy> [reward: <file name>]"``, so the shape does not change with the options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from nextbest.evaluate.estimators import LEVEL, Estimate
from nextbest.evaluate.evaluation import Evaluation, PolicyResult

ESTIMATORS = ("ips", "snips", "dr")


def alternative_name(policy: str, spec: Path) -> str:
    return f"{policy} [reward: {spec.name}]"


def as_json(evaluation: Evaluation) -> dict[str, Any]:
    entries = [_entry(r.policy, r) for r in evaluation.results]
    if evaluation.alternative is not None and evaluation.reward_spec is not None:
        spec = evaluation.reward_spec
        entries += [_entry(alternative_name(r.policy, spec), r) for r in evaluation.alternative]
    return {"events": evaluation.log.n, "skipped": evaluation.log.skipped, "policies": entries}


def _entry(name: str, result: PolicyResult) -> dict[str, Any]:
    return {
        "policy": name,
        "estimates": {
            "ips": _estimate(result.ips),
            "snips": _estimate(result.snips),
            "dr": _estimate(result.dr),
        },
        "effective_sample_size": round(result.effective_sample_size, 1),
    }


def _estimate(estimate: Estimate) -> dict[str, Any]:
    return {"value": estimate.value, "ci": [estimate.low, estimate.high]}


def write_json(evaluation: Evaluation, path: Path) -> None:
    path.write_bytes(orjson.dumps(as_json(evaluation), option=orjson.OPT_INDENT_2) + b"\n")


def _cell(estimate: Estimate) -> str:
    """``0.382 ±0.017``: every interval here is symmetric (normal approximation)."""
    if estimate.value is None:
        return "n/a"
    if estimate.low is None or estimate.high is None:
        return f"{estimate.value:.3f}"
    return f"{estimate.value:.3f} ±{(estimate.high - estimate.low) / 2:.3f}"


def table(title: str, results: list[PolicyResult], events: int) -> Table:
    out = Table(
        title=title,
        caption=f"mean reward per event ± half its {LEVEL:.0%} interval; ⚠: see the notes",
    )
    out.add_column("policy", overflow="fold")
    out.add_column("events", justify="right", no_wrap=True)
    for name in ("IPS", "SNIPS", "DR"):
        out.add_column(name, justify="right", no_wrap=True)
    out.add_column("eff. n", justify="right", no_wrap=True)
    for r in results:
        used = f"{r.events:,}" if r.events == events else f"{r.events:,}/{events:,}"
        warn = " ⚠" if r.warning else ""
        out.add_row(
            r.policy,
            used,
            _cell(r.ips),
            _cell(r.snips),
            _cell(r.dr),
            f"{r.effective_sample_size:,.0f}{warn}",
        )
    return out


def summary(evaluation: Evaluation) -> str:
    log = evaluation.log
    files = len(evaluation.files)
    parts = [
        f"{log.n:,} events from {files} file{'s' if files != 1 else ''}",
        f"{log.skipped:,} skipped (_skipLearn)",
    ]
    for count, what in (
        (log.unlabelled, "without _label_cost"),
        (log.outside_window, "outside the time window"),
        (log.other_policies, "of other policies"),
    ):
        if count:
            parts.append(f"{count:,} {what}")
    rate = log.n / evaluation.seconds if evaluation.seconds > 0 else 0.0
    parts.append(f"{evaluation.seconds:.1f} s ({rate:,.0f} events/s)")
    return " · ".join(parts)


def notes(evaluation: Evaluation) -> list[str]:
    """Warnings and facts a reader needs to trust (or not) the numbers."""
    log = evaluation.log
    out: list[str] = []
    if log.deterministic:
        out.append(
            f"{log.deterministic:,} events were logged with probability 1 (no exploration: "
            "apprentice or frozen mode, or ε = 0): a policy that chooses otherwise there "
            "gets no weight from them"
        )
    if log.modes and set(log.modes) != {"online"}:
        modes = ", ".join(f"{mode} {count:,}" for mode, count in sorted(log.modes.items()))
        out.append(f"events by mode: {modes}")
    results = list(evaluation.results)
    results += evaluation.alternative or []
    seen: set[str] = set()
    for r in results:
        if r.warning and r.policy not in seen:
            seen.add(r.policy)
            out.append(f"{r.policy}: {r.warning}")
    rescorer = evaluation.rescorer
    if rescorer is not None:
        line = f"reward spec: {rescorer.rescored:,} events rescored from their signals"
        if rescorer.without_signals:
            line += f"; {rescorer.without_signals:,} without raw signals kept their logged reward"
        if rescorer.refused:
            line += f"; {rescorer.refused:,} with values the spec refuses kept theirs"
        if rescorer.ignored:
            names = ", ".join(sorted(rescorer.ignored))
            line += f"; signals the spec does not name count 0: {names}"
        out.append(line)
    return out


def features_table(policy: str, weights: list[tuple[str, float]]) -> Table:
    out = Table(
        title=f"top {len(weights)} weights: {policy}",
        caption="VW weights predict cost (−reward): negative raises an action",
    )
    out.add_column("feature")
    out.add_column("weight", justify="right")
    for name, weight in weights:
        out.add_row(name, f"{weight:+.4f}")
    return out


def print_report(evaluation: Evaluation, console: Console) -> None:
    n = evaluation.log.n
    console.print(table("off-policy estimates, logged reward", evaluation.results, n))
    if evaluation.alternative is not None and evaluation.reward_spec is not None:
        title = f"off-policy estimates, reward from {evaluation.reward_spec}"
        console.print(table(title, evaluation.alternative, n))
    console.print(summary(evaluation), markup=False, highlight=False, soft_wrap=True)
    for note in notes(evaluation):
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    for policy, weights in evaluation.features.items():
        console.print(features_table(policy, weights))


def write_plot(evaluation: Evaluation, path: Path) -> None:
    """Each policy's three estimates with their intervals (matplotlib's Agg backend)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib: pip install 'nextbest[simulate]'") from exc
    rows = [(r.policy, r) for r in evaluation.results]
    if evaluation.alternative is not None and evaluation.reward_spec is not None:
        rows += [
            (alternative_name(r.policy, evaluation.reward_spec), r) for r in evaluation.alternative
        ]
    figure = Figure(figsize=(9, 1.2 + 0.6 * len(rows)), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for k, name in enumerate(ESTIMATORS):
        ys, xs, lows, highs = [], [], [], []
        for y, (_, r) in enumerate(rows):
            est: Estimate = getattr(r, name)
            if est.value is None:
                continue
            ys.append(y + (k - 1) * 0.22)
            xs.append(est.value)
            lows.append(est.value - (est.low if est.low is not None else est.value))
            highs.append((est.high if est.high is not None else est.value) - est.value)
        ax.errorbar(xs, ys, xerr=[lows, highs], fmt="o", capsize=3, label=name.upper())
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"estimated mean reward per event ({LEVEL:.0%} interval)")
    ax.set_title(f"nextbest evaluate: {evaluation.log.n:,} events")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="best")
    figure.savefig(path, dpi=110)
