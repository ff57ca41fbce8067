"""`pinpipe bench`: measure the pipeline's speeds and print them."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pinpipe.cli.output import JsonOpt, console, err_console, friendly_errors, titled_table

if TYPE_CHECKING:
    from pinpipe.benchmarks.measurement import Goal


@friendly_errors
def bench(
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these benchmarks (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure the pipeline's speeds on this machine and print the numbers."""
    from pinpipe.benchmarks import BENCHMARKS

    names = only or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise typer.BadParameter(
            f"unknown benchmark {unknown[0]}; choose from {', '.join(BENCHMARKS)}"
        )
    from pinpipe.benchmarks.measurement import Goal, Measurement

    found: list[Measurement | Goal] = []
    for name in names:
        with err_console.status(f"bench: {name}…"):
            found += BENCHMARKS[name]()
    results = [r for r in found if isinstance(r, Measurement)]
    goals = [r for r in found if isinstance(r, Goal)]
    if as_json:
        out = [r.__dict__ for r in results] + [{"goal": True, **g.as_dict()} for g in goals]
        sys.stdout.write(json.dumps(out) + "\n")
        return
    table = titled_table(
        "pinpipe bench",
        (("measurement", "left"), ("value", "right"), ("unit", "left"), ("note", "left")),
    )
    for r in results:
        table.add_row(r.name, _number(r.value), r.unit, r.note)
    if results:
        console.print(table)
    if goals:
        console.print(goal_table(goals))


def _number(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def goal_table(goals: list[Goal]) -> Table:
    """Each goal's two sides, their ratio, the limit and whether it holds."""
    table = titled_table(
        "speed goals (both sides from this run)",
        (
            ("goal", "left"),
            ("measured", "right"),
            ("reference", "right"),
            ("ratio", "right"),
            ("limit", "right"),
            ("holds", "center"),
        ),
    )
    for g in goals:
        table.add_row(
            g.name,
            f"{_number(g.measured)} {g.unit}\n[dim]{g.measured_what}[/]",
            f"{_number(g.reference)} {g.unit}\n[dim]{g.reference_what}[/]",
            f"{g.ratio:.2f}",
            f"≤ {g.limit:g}",
            "[green]yes[/]" if g.holds else "[red]no[/]",
        )
    return table
