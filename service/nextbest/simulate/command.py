"""`nextbest simulate`: flags, the progress bar, and the report.

Heavy imports (gRPC server, rich, matplotlib) happen when the command runs, so that
`nextbest serve` does not pay for them. matplotlib comes with the ``simulate`` extra, which
the server image leaves out: without it the command says so in one line (exit 2). rich is a
server dependency (`nextbest evaluate` reports with it; the CEL package needs it too).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nextbest.simulate.scenarios import SCENARIOS, get

if TYPE_CHECKING:
    from rich.console import Console

    from nextbest.simulate.scenario import Scenario
    from nextbest.simulate.simulation import Options, Result

EXTRA_MODULES = ("matplotlib",)  # the simulate extra, pyproject.toml
EXTRA_HINT = "nextbest simulate needs the simulate extra: pip install 'nextbest[simulate]'"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not ≥ 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not ≥ 0")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 1]")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", choices=sorted(SCENARIOS), default="support", help="[support]"
    )
    parser.add_argument(
        "--rounds", type=_positive, help="decisions to simulate [support 10000, news 5000]"
    )
    parser.add_argument("--seed", type=int, default=0, help="fixes the whole run [0]")
    parser.add_argument(
        "--epsilon",
        type=_probability,
        help="exploration ε, also its cap (max_epsilon) [0.2]",
    )
    parser.add_argument(
        "--algorithm",
        choices=["epsilon_greedy", "squarecb"],
        help="exploration algorithm; squarecb keeps under the ε cap [squarecb]",
    )
    parser.add_argument(
        "--delay",
        type=_non_negative,
        help="send each reward this many decisions after its own [support 20, news 0]",
    )
    parser.add_argument(
        "--target",
        metavar="HOST:PORT",
        help="drive a running service (loaded with --print-config) instead of an embedded one",
    )
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="write the learning curve")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write the curve as CSV")
    parser.add_argument(
        "--window", type=_positive, help="moving-average window of the curve [rounds/20, ≥ 50]"
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the scenario's policy file (for `nextbest serve`) and exit",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="the embedded server's logs, on stderr [warning]",
    )


def run(args: argparse.Namespace) -> int:
    """The command: 0 when the run kept every invariant, 1 when not, 2 when it could not run."""
    if any(importlib.util.find_spec(module) is None for module in EXTRA_MODULES):
        print(EXTRA_HINT, file=sys.stderr)
        return 2
    import grpc
    import yaml
    from rich.console import Console

    from nextbest.observability.logging import configure
    from nextbest.policy.errors import ConfigError
    from nextbest.simulate.report import healthy, print_report
    from nextbest.simulate.scenario import Exploring
    from nextbest.simulate.simulation import Options

    scenario = get(args.scenario)
    exploring = None
    if args.epsilon is not None or args.algorithm is not None:
        default = scenario.default_exploring
        exploring = Exploring(
            args.algorithm or default.algorithm,
            default.epsilon if args.epsilon is None else args.epsilon,
        )
    if args.print_config:
        print(yaml.safe_dump(scenario.config(exploring), sort_keys=False), end="")
        return 0
    if args.target and exploring is not None:
        print(
            "nextbest simulate: --epsilon and --algorithm configure the embedded service; "
            "a --target explores as its own policy says (see --print-config)",
            file=sys.stderr,
        )
        return 2
    configure(args.log_level, sys.stderr.buffer)
    options = Options(
        rounds=args.rounds,
        seed=args.seed,
        delay=args.delay,
        exploring=exploring,
        target=args.target,
    )
    console = Console()
    try:
        result = _simulate_with_progress(scenario, options, args, Console(stderr=True))
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        print(f"nextbest simulate: the service answered {code}: {details}", file=sys.stderr)
        return 2
    except grpc.FutureTimeoutError:
        where = args.target or "the embedded server"
        print(f"nextbest simulate: cannot reach {where}", file=sys.stderr)
        return 2
    except (ConfigError, OSError) as exc:
        print(f"nextbest simulate: {exc}", file=sys.stderr)
        return 2
    print_report(result, console)
    try:
        _write_files(result, args, console)
    except (OSError, RuntimeError) as exc:
        print(f"nextbest simulate: {exc}", file=sys.stderr)
        return 2
    return 0 if healthy(result) else 1


def _simulate_with_progress(
    scenario: Scenario, options: Options, args: argparse.Namespace, console: Console
) -> Result:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from nextbest.simulate.report import default_window
    from nextbest.simulate.simulation import simulate

    name = scenario.name
    total = options.rounds or scenario.default_rounds
    window = args.window or default_window(total)
    recent: deque[float] = deque(maxlen=window)
    sums = {"all": 0.0, "recent": 0.0}
    progress = Progress(
        TextColumn(f"[bold]{name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("reward {task.fields[mean]:.3f} · last {task.fields[window]}: "),
        TextColumn("[bold]{task.fields[recent]:.3f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=args.no_progress,
    )
    task = progress.add_task(name, total=total, mean=0.0, recent=0.0, window=window)

    def on_round(index: int, reward: float) -> None:
        sums["all"] += reward
        if len(recent) == window:
            sums["recent"] -= recent[0]
        recent.append(reward)
        sums["recent"] += reward
        fields: dict[str, Any] = {
            "mean": sums["all"] / (index + 1),
            "recent": sums["recent"] / len(recent),
        }
        progress.update(task, completed=index + 1, **fields)

    with progress:
        return simulate(scenario, options, on_round)


def _write_files(result: Result, args: argparse.Namespace, console: Console) -> None:
    from nextbest.simulate.report import default_window, write_csv, write_plot

    window = args.window or default_window(result.rounds)
    if args.csv is not None:
        write_csv(result, args.csv, window)
        console.print(f"curve written to {args.csv} (moving average over {window} rounds)")
    if args.plot is not None:
        write_plot(result, args.plot, window)
        console.print(f"plot written to {args.plot}")
