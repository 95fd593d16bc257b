"""What a run shows: the comparison table, the checks, the learning curve (CSV and PNG).

The table answers "did it learn, and how close to the best possible": each policy's average
reward over the whole run (learning included) and over the last rounds (what it learned),
with nextbest's lead over each baseline. The checks answer "did it stay inside its bounds":
exploration against ε, the largest non-greedy mass against the cap, actions the safety rule
forbids (must be 0), and rewards the server valued differently from the scenario.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nextbest.simulate.baselines import BEST_FIXED, ORACLE, RANDOM, RULE
from nextbest.simulate.simulation import NEXTBEST, POLICIES, Result

TAIL = 1000  # "last rounds": long enough to average out noise, late enough to show learning


def labels(result: Result) -> dict[str, str]:
    return {
        NEXTBEST: "nextbest",
        RANDOM: "random",
        BEST_FIXED: f"best fixed: {result.best_fixed_action}",
        RULE: "rule baseline",
        ORACLE: "oracle",
    }


def tail_length(rounds: int) -> int:
    return min(TAIL, rounds)


def default_window(rounds: int) -> int:
    """The moving-average window: about a twentieth of the run, at least 50 rounds."""
    return max(1, min(rounds, max(50, rounds // 20)))


def healthy(result: Result) -> bool:
    """The invariants a run must keep, whatever it learned: the exit status reflects them."""
    s = result.stats
    return (
        s.violations == 0
        and s.over_cap == 0
        and s.reward_mismatches == 0
        and s.rewards_not_accepted == 0
    )


def explore_rate_consistent(result: Result) -> bool:
    """The share of explored answers matches the pmfs' non-greedy mass within 4 σ.

    Each answer explores with probability m (its non-greedy mass), so the count of explored
    answers has mean Σm and variance Σm(1 − m) ≤ Σm: a server that explored more (or less)
    than its answers claim shows up here.
    """
    s = result.stats
    if s.decisions == 0:
        return True
    slack = 4 * math.sqrt(max(s.non_greedy_mean, 1 / s.decisions) / s.decisions)
    return abs(s.explore_rate - s.non_greedy_mean) <= slack


def comparison_table(result: Result) -> Table:
    tail = tail_length(result.rounds)
    table = Table(
        title=f"{result.scenario.name}: {result.rounds} rounds, seed {result.seed}, "
        f"rewards {result.delay} rounds late",
        caption="random: among allowed actions · best fixed: in hindsight · "
        "oracle: knows the hidden truth",
    )
    table.add_column("policy")
    table.add_column("avg reward", justify="right")
    table.add_column(f"last {tail}", justify="right")
    table.add_column("nextbest lead", justify="right")
    ours, ours_tail = result.mean(NEXTBEST), result.mean(NEXTBEST, tail)
    names = labels(result)
    for policy in POLICIES:
        mean, mean_tail = result.mean(policy), result.mean(policy, tail)
        lead = "" if policy == NEXTBEST else f"{ours - mean:+.3f} / {ours_tail - mean_tail:+.3f}"
        table.add_row(
            names[policy],
            f"{mean:.3f}",
            f"{mean_tail:.3f}",
            lead,
            style="bold" if policy == NEXTBEST else None,
        )
    return table


def _mark(ok: bool) -> str:
    return "[green]ok[/green]" if ok else "[red]FAILED[/red]"


def checks_table(result: Result) -> Table:
    s = result.stats
    table = Table(title="checks", show_header=False)
    table.add_column("check")
    table.add_column("value")
    table.add_column("", justify="center")
    if result.exploring is not None:
        exploring = f"{result.exploring.algorithm}, ε cap {result.exploring.epsilon:g}"
        cap = result.exploring.epsilon
    else:
        exploring = f"the target's policy (largest ε answered: {s.epsilon_max:g})"
        cap = s.epsilon_max
    table.add_row("exploration", exploring, "")
    table.add_row(
        "explored",
        f"{s.explore_rate:.2%} of decisions (the pmfs expect {s.non_greedy_mean:.2%}; ε {cap:g})",
        _mark(explore_rate_consistent(result)),
    )
    table.add_row(
        "max non-greedy mass",
        f"{s.non_greedy_max:.4f} ≤ cap {cap:g} ({s.over_cap} answers over)",
        _mark(s.over_cap == 0),
    )
    table.add_row(
        "masked-action violations",
        f"{s.violations} (safety rules masked in {s.masked_by_rules} decisions)",
        _mark(s.violations == 0),
    )
    table.add_row(
        "rewards",
        f"{s.rewards_sent} sent, {s.rewards_not_accepted} late/duplicate, "
        f"{s.reward_mismatches} valued otherwise",
        _mark(s.rewards_not_accepted == 0 and s.reward_mismatches == 0),
    )
    rate = s.decisions / result.seconds if result.seconds > 0 else 0.0
    table.add_row(
        "speed",
        f"{result.seconds:.1f} s, {rate:.0f} decisions/s, {result.target or 'embedded server'}",
        "",
    )
    return table


def print_report(result: Result, console: Console) -> None:
    console.print(comparison_table(result))
    console.print(checks_table(result))


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over up to `window` rounds ending at each round."""
    out: list[float] = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def curves(result: Result, window: int) -> dict[str, list[float]]:
    return {p: moving_average(result.rewards[p], window) for p in POLICIES}


def write_csv(result: Result, path: Path, window: int) -> None:
    """One row per round: the moving-average reward of every policy."""
    series = curves(result, window)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["round", *POLICIES])
        for i in range(result.rounds):
            writer.writerow([i + 1, *(f"{series[p][i]:.6f}" for p in POLICIES)])


def write_plot(result: Result, path: Path, window: int) -> None:
    """The learning curve as a PNG, drawn with matplotlib's Agg backend (no display)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib: pip install 'nextbest[simulate]'") from exc
    series = curves(result, window)
    names = labels(result)
    figure = Figure(figsize=(11, 5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    # The first few averages cover a handful of rounds and swing wildly: start a bit later.
    skip = min(window // 10, result.rounds - 1)
    rounds = range(skip + 1, result.rounds + 1)
    for policy in POLICIES:
        ax.plot(
            rounds,
            series[policy][skip:],
            label=names[policy],
            linewidth=2.2 if policy == NEXTBEST else 1.2,
            linestyle="--" if policy == ORACLE else "-",
        )
    exploring = (
        f"{result.exploring.algorithm}, ε cap {result.exploring.epsilon:g}"
        if result.exploring is not None
        else "target's policy"
    )
    ax.set_title(
        f"nextbest simulate --scenario {result.scenario.name} "
        f"(seed {result.seed}, {exploring}, rewards {result.delay} rounds late)"
    )
    ax.set_xlabel("round")
    ax.set_ylabel(f"reward, moving average over {window} rounds")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: curves cross anywhere
    figure.savefig(path, dpi=110)
