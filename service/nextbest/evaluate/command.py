"""`nextbest evaluate LOG...`: flags, the progress bar, the report and its files.

Every input problem (a bad line, a bad spec, bad VW arguments, a missing file) ends the
command with one line on stderr naming the file and line where there is one, and exit
status 2; nothing is written then. Heavy imports (rich's progress, VW, matplotlib) happen
when the command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nextbest.evaluate.specs import SPECS_HELP, Spec, parse

if TYPE_CHECKING:
    from rich.console import Console

    from nextbest.evaluate.evaluation import Evaluation, Options

DEFAULT_POLICIES = ("logged", "uniform")
DEFAULT_FEATURES = 10
PROGRESS_BYTES = 8 << 20  # logs smaller than this are read in well under a second


def _spec(text: str) -> Spec:
    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _time(text: str) -> float:
    from nextbest.evaluate.reader import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc}: use e.g. 2026-01-31 or 2026-01-31T08:00Z"
        ) from None


def _top(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not ≥ 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "logs",
        nargs="+",
        type=Path,
        metavar="LOG",
        help="DSJSON files, folders of them, or a nextbest data dir",
    )
    parser.add_argument(
        "--policy",
        dest="policies",
        action="append",
        type=_spec,
        metavar="SPEC",
        help=f"a policy to estimate, repeatable: {SPECS_HELP} [logged, uniform]",
    )
    parser.add_argument(
        "--reward-spec",
        type=Path,
        metavar="FILE",
        help="also estimate under this reward (a policy's `reward:` block), from the "
        "logged raw signals",
    )
    parser.add_argument(
        "--features",
        type=_top,
        nargs="?",
        const=DEFAULT_FEATURES,
        default=0,
        metavar="N",
        help=f"show the N largest weights of each vw:/model: policy [{DEFAULT_FEATURES}]",
    )
    parser.add_argument(
        "--since", type=_time, metavar="TIME", help="only events at or after (ISO 8601, UTC)"
    )
    parser.add_argument("--until", type=_time, metavar="TIME", help="only events before")
    parser.add_argument(
        "--policy-name", metavar="NAME", help="the policy to read in a multi-policy data dir"
    )
    parser.add_argument(
        "--reward-model",
        metavar="ARGS",
        help='VW arguments of DR\'s reward model (write --reward-model="…") [--cb_adf -q ::]',
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the estimates as JSON")
    parser.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="plot the estimates (needs matplotlib)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """The command: 0 when it estimated, 2 when the input or the flags were wrong."""
    from rich.console import Console

    from nextbest.evaluate import learners
    from nextbest.evaluate.evaluation import Options
    from nextbest.evaluate.reader import LogError, Window, resolve
    from nextbest.evaluate.report import print_report, write_json, write_plot

    def fail(message: str) -> int:
        print(f"nextbest evaluate: {message}", file=sys.stderr)
        return 2

    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        return fail("--plot needs matplotlib: pip install 'nextbest[simulate]'")
    if args.since is not None and args.until is not None and args.since >= args.until:
        return fail("--since must be before --until")
    specs: list[Spec] = args.policies or [parse(p) for p in DEFAULT_POLICIES]
    reward_model = args.reward_model or learners.REWARD_MODEL_ARGS
    try:
        for spec in specs:
            if spec.kind == "vw":
                learners.check_args(spec.argument, spec.text)
        learners.check_args(reward_model, "--reward-model")
        files = resolve(args.logs, args.policy_name)
        options = Options(
            specs=specs,
            window=Window(args.since, args.until, args.policy_name),
            reward_spec=args.reward_spec,
            reward_model=reward_model,
            features=args.features,
        )
        evaluation = _with_progress(files, options, args, Console(stderr=True))
    except (LogError, ValueError) as exc:
        return fail(str(exc))
    console = Console()
    print_report(evaluation, console)
    try:
        if args.json is not None:
            write_json(evaluation, args.json)
            console.print(f"estimates written to {args.json}", highlight=False, soft_wrap=True)
        if args.plot is not None:
            write_plot(evaluation, args.plot)
            console.print(f"plot written to {args.plot}", highlight=False, soft_wrap=True)
    except (OSError, RuntimeError) as exc:
        return fail(str(exc))
    return 0


def _with_progress(
    files: list[Path], options: Options, args: argparse.Namespace, console: Console
) -> Evaluation:
    from rich.progress import (
        BarColumn,
        Progress,
        TaskID,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from nextbest.evaluate.evaluation import evaluate

    size = sum(f.stat().st_size for f in files if f.is_file())
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=args.no_progress or size < PROGRESS_BYTES,
    )
    tasks: dict[str, TaskID] = {}

    def on_progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(phase, total=total)
        progress.update(tasks[phase], completed=done, total=total)

    with progress:
        return evaluate(files, options, on_progress)
