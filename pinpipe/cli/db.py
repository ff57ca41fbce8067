"""`pinpipe db`: seed and profile the source database."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from pinpipe.cli.output import JsonOpt, console, friendly_errors, progress, titled_table
from services.core.settings import get_settings

app = typer.Typer(help="The MySQL source database: seed and profile.", no_args_is_help=True)


@app.command("seed")
@friendly_errors
def db_seed(
    posts: Annotated[
        int, typer.Option(help="Number of posts (each has a geo and a user row).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same rows.")] = -1,
    as_json: JsonOpt = False,
) -> None:
    """Replace the source tables with generated rows (default: settings' size and seed)."""
    from services.source_db.database import SourceDatabase

    settings = get_settings()
    posts = posts or settings.seed_posts
    seed = settings.seed if seed < 0 else seed
    db = SourceDatabase.connect(settings.db)
    with progress("seeding", posts, quiet=as_json) as advance:
        result = db.seed(posts, seed, progress=advance)
    summary = {
        "posts": result.posts,
        "rows": result.rows,
        "seconds": round(result.seconds, 3),
        "rows_per_second": round(result.rows_per_second),
    }
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        console.print(
            f"seeded {result.posts:,} posts ({result.rows:,} rows) in {result.seconds:.1f}s "
            f"= {result.rows_per_second:,.0f} rows/s"
        )


@app.command("profile")
@friendly_errors
def db_profile(as_json: JsonOpt = False) -> None:
    """Row counts, and the rate of each dirty value per column."""
    from services.source_db.database import SourceDatabase

    counts, rows = SourceDatabase.connect(get_settings().db).profile()
    if as_json:
        sys.stdout.write(json.dumps({"counts": counts, "dirt": [r.__dict__ for r in rows]}) + "\n")
        return
    table = Table(title="source tables", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    dirt = titled_table(
        "dirty values",
        (
            ("table", "left"),
            ("column", "left"),
            ("value", "left"),
            ("rows", "right"),
            ("rate", "right"),
        ),
    )
    for r in rows:
        dirt.add_row(
            r.table,
            r.column,
            repr(r.value) if r.value.strip() != r.value else r.value,
            f"{r.count:,}",
            f"{r.rate:.2%}",
        )
    console.print(dirt)
    console.print(
        "[dim]Duplicates are not in the tables: the emulator samples rows with replacement, "
        "so the same row reaches the pipeline more than once.[/]"
    )
