"""`pinpipe bench`: measure the pipeline's speeds and print them."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from pinpipe.cli.output import JsonOpt, console, err_console, friendly_errors


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
    results = []
    for name in names:
        with err_console.status(f"bench: {name}…"):
            results += BENCHMARKS[name]()
    if as_json:
        sys.stdout.write(json.dumps([r.__dict__ for r in results]) + "\n")
        return
    table = Table(title="pinpipe bench", title_justify="left")
    for col, justify in (
        ("measurement", "left"),
        ("value", "right"),
        ("unit", "left"),
        ("note", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(
            r.name, f"{r.value:,.2f}" if r.value < 100 else f"{r.value:,.0f}", r.unit, r.note
        )
    console.print(table)
