"""The tables every bench prints: rich (PASS green, MISS red), plain text, or markdown.

A figure is one row of the suite: a value, the floor it is read against (measured in the
same run), their ratio and the target where an issue sets one. Reported, never enforced.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

# The suite's sections, in print order (tables are sorted by title).
FLOORS = "1. Floors (same machine, same run)"
NEXTBEST = "2. nextbest"
DURABILITY = "3. Durability: fsync=always against fsync=interval"
MEMORY = "4. Memory (server RSS, VmRSS)"
QUALITY = "5. Learning quality (progressive reward = mean reward over all rounds)"


@dataclass
class TableData:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Figure:
    section: str
    name: str
    value: float
    unit: str
    floor: float | None = None
    floor_name: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.floor is None or not self.floor or math.isnan(self.floor):
            return None
        return self.value / self.floor

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def shown(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "MB":
        return f"{value / 1e6:,.1f} MB"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "reward":
        return f"{value:.4f}"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.0f} {unit}"


def figure_tables(figures: Sequence[Figure]) -> list[TableData]:
    """One table per section, rows in the order the figures were added."""
    tables: dict[str, TableData] = {}
    for f in figures:
        table = tables.get(f.section)
        if table is None:
            table = tables[f.section] = TableData(
                f.section, ["figure", "value", "floor", "ratio", "target", "result"]
            )
        ratio = f.ratio
        floor = shown(f.floor, f.unit) if f.floor is not None else ""
        if f.floor_name and floor:
            floor = f"{floor} ({f.floor_name})"
        table.rows.append(
            [
                f.name + (f" [{f.note}]" if f.note else ""),
                shown(f.value, f.unit),
                floor,
                "" if ratio is None else f"{ratio:.2f}",
                f.target,
                "" if f.passed is None else "PASS" if f.passed else "MISS",
            ]
        )
    return list(tables.values())


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"


def phase_table(summary: dict[str, dict[str, Any]], title: str) -> TableData:
    """One row per phase key: rates, latencies, CPU, the server's longest GC pause."""
    headers = ["phase", "calls/s", "decisions/s", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    headers += ["client CPU", "server CPU", "srv GC max ms", "errors"]
    table = TableData(title, headers)
    for key, row in summary.items():
        table.rows.append(
            [
                key + (" (ran out)" if row.get("exhausted") else ""),
                f"{row['calls_per_s']:,.0f}",
                f"{row['decisions_per_s']:,.0f}",
                f"{row['p50_ms']:.3f}",
                f"{row['p90_ms']:.3f}",
                f"{row['p99_ms']:.3f}",
                f"{row['max_ms']:.2f}",
                pct(row["client_cpu"]),
                pct(row["server_cpu"]),
                "n/a" if row["gc_pause_max_ms"] is None else f"{row['gc_pause_max_ms']:.1f}",
                str(row["errors"]),
            ]
        )
    return table


def render_plain(tables: Sequence[TableData], out: TextIO) -> None:
    for t in tables:
        widths = [
            max(len(h), *(len(r[i]) for r in t.rows)) if t.rows else len(h)
            for i, h in enumerate(t.headers)
        ]

        def line(cells: Sequence[str], w: list[int] = widths) -> str:
            first = cells[0].ljust(w[0])
            rest = [c.rjust(w[i + 1]) for i, c in enumerate(cells[1:])]
            return "  ".join([first, *rest]).rstrip()

        print(t.title, file=out)
        print(line(t.headers), file=out)
        print(line(["-" * n for n in widths]), file=out)
        for r in t.rows:
            print(line(r), file=out)
        print(file=out)


def render_markdown(tables: Sequence[TableData], out: TextIO) -> None:
    for t in tables:
        print(f"**{t.title}**\n", file=out)
        print("| " + " | ".join(t.headers) + " |", file=out)
        print("|" + "|".join(["---"] + ["---:"] * (len(t.headers) - 1)) + "|", file=out)
        for r in t.rows:
            print("| " + " | ".join(r) + " |", file=out)
        print(file=out)


def render(tables: Sequence[TableData], plain: bool) -> None:
    """Rich tables (PASS green, MISS red), or plain text without rich or with plain=True."""
    if not plain:
        try:
            _render_rich(tables)
        except ImportError:
            pass
        else:
            return
    render_plain(tables, sys.stdout)


def _render_rich(tables: Sequence[TableData]) -> None:
    """ImportError, before printing anything, where rich is not installed."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or redirected: do not squeeze to 80 columns
        console = Console(width=200)
    styles = {"PASS": "[bold green]PASS[/]", "MISS": "[bold red]MISS[/]"}
    for t in tables:
        table = Table(title=escape(t.title), title_justify="left")
        for i, h in enumerate(t.headers):
            table.add_column(escape(h), justify="left" if i == 0 else "right")
        for r in t.rows:
            table.add_row(*(styles.get(c) or escape(c) for c in r))
        console.print(table)


def per_round(values: Sequence[float], fmt: str) -> str:
    """Each round's own value (phases of one round ran back to back), when there are
    several: how much the machine moved the verdict."""
    return "per round " + ", ".join(format(v, fmt) for v in values) if len(values) > 1 else ""
