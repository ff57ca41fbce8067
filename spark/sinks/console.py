"""The batch answers as rich tables in the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from spark.sinks.report import TITLES

MAX_ROWS = 15


def print_answers(result: Any, console: Console | None = None) -> None:
    """Each answer as a table (long ones cut to their first rows), then the report path."""
    console = console or Console()
    for name, df in result.answers.items():
        table = Table(title=TITLES.get(name, name), title_justify="left")
        for col in df.columns:
            table.add_column(str(col), justify="right" if df[col].dtype.kind in "iuf" else "left")
        for row in df.head(MAX_ROWS).itertuples(index=False):
            table.add_row(*("null" if v is None or v != v else str(v) for v in row))
        if len(df) > MAX_ROWS:
            table.caption = f"{MAX_ROWS} of {len(df)} rows; all of them in the report"
        console.print(table)
    read, clean = result.rows_read, result.rows_clean
    console.print(
        "rows read "
        + ", ".join(f"{t} {n:,}" for t, n in read.items())
        + " · clean "
        + ", ".join(f"{t} {n:,}" for t, n in clean.items())
        + (" · quarantined " + str(result.quarantined) if result.quarantined else "")
        + f" · {result.seconds:.1f}s"
    )
    console.print(f"[bold]report:[/] {result.report}")
