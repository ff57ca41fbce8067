"""``pinpipe``: one command line for everything the Makefile does."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.errors import PinpipeError, ServiceStartError
from services.settings import get_settings

app = typer.Typer(
    help="A local-first replica of Pinterest's data pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(
    help="Start, stop and inspect the native service stack.", no_args_is_help=True
)
db_app = typer.Typer(help="The MySQL source database: seed and profile.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")
emulate_app = typer.Typer(help="Post sampled source rows into the pipeline.", no_args_is_help=True)
app.add_typer(emulate_app, name="emulate")

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Turn the project's errors into one clear line (plus a log tail) and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PinpipeError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            if isinstance(exc, ServiceStartError) and exc.log_tail:
                err_console.print(f"[dim]last lines of the {exc.service} log:[/]")
                err_console.print(exc.log_tail, markup=False, highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


# ---- stack --------------------------------------------------------------------------------
@stack_app.command("up")
@friendly_errors
def stack_up() -> None:
    """Start, health-check and provision every native service (idempotent)."""
    from services.stack.stack import NativeStack

    stack = NativeStack(get_settings())
    with console.status("starting the native stack…"):
        stack.up(
            on_step=lambda r: console.print(
                f"[green]✓[/] {r.service:<12} {r.outcome} [dim]({r.seconds:.1f}s)[/]"
            )
        )
    _print_status(stack)


@stack_app.command("down")
@friendly_errors
def stack_down() -> None:
    """Stop exactly the processes the stack started."""
    from services.stack.stack import NativeStack

    for name, stopped in NativeStack(get_settings()).down().items():
        console.print(f"{name:<12} {'stopped' if stopped else 'was not running (or not ours)'}")


@stack_app.command("status")
@friendly_errors
def stack_status(as_json: JsonOpt = False) -> None:
    """Each service's state, endpoint and pid."""
    from services.stack.stack import NativeStack

    stack = NativeStack(get_settings())
    if as_json:
        statuses = stack.status()
        settings = get_settings()
        payload = {
            "user_id": settings.user_id,
            "state_dir": str(settings.state_dir),
            "services": [s.as_dict() for s in statuses],
        }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    _print_status(stack)


def _print_status(stack: Any) -> None:
    table = Table(title="native stack", title_justify="left")
    table.add_column("service")
    table.add_column("state")
    table.add_column("endpoint", overflow="fold")
    table.add_column("pid")
    table.add_column("note")
    for s in stack.status():
        state = "[green]up[/]" if s.state == "up" else "[red]down[/]"
        table.add_row(s.name, state, s.endpoint, str(s.pid or "-"), s.detail)
    console.print(table)


# ---- db ---------------------------------------------------------------------------------
@db_app.command("seed")
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
    with Progress(
        TextColumn("seeding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("posts", total=posts)
        result = db.seed(posts, seed, progress=lambda n: progress.advance(task, n))
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


@db_app.command("profile")
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
    dirt = Table(title="dirty values", title_justify="left")
    for col, justify in (
        ("table", "left"),
        ("column", "left"),
        ("value", "left"),
        ("rows", "right"),
        ("rate", "right"),
    ):
        dirt.add_column(col, justify=justify)  # type: ignore[arg-type]
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


# ---- emulate ----------------------------------------------------------------------------
@emulate_app.command("batch")
@friendly_errors
def emulate_batch(
    count: Annotated[
        int | None, typer.Option(help="Events to post (each is a pin, a geo and a user row).")
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds (count unlimited unless given)."),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Events per second (default: as fast as possible).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 4,
    batch_size: Annotated[int, typer.Option(help="Records per request (per topic).")] = 100,
    seed: Annotated[
        int | None, typer.Option(help="Sampling seed (same seed, same events).")
    ] = None,
    direct: Annotated[
        bool, typer.Option(help="Post to the REST proxy, bypassing API Gateway.")
    ] = False,
    classic: Annotated[
        bool,
        typer.Option(help="Behave like the original script: one record per request, 0-1 s sleeps."),
    ] = False,
    retries: Annotated[int, typer.Option(help="Attempts per request for transient failures.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Sample rows (with replacement) and post them to the Kafka topics through the API."""
    from emulator.batch import EmulationOptions, run_batch

    if count is None and duration is None:
        count = 1_000
    opts = EmulationOptions(
        count=count,
        duration=duration,
        rate=rate,
        concurrency=concurrency,
        batch_size=1 if classic else batch_size,
        seed=seed,
        direct=direct,
        classic=classic,
        max_attempts=retries,
    )
    total = count * 3 if count else None
    with Progress(
        TextColumn("posting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("records", total=total)
        summary = run_batch(get_settings(), opts, on_records=lambda n: progress.advance(task, n))
    _print_summary(summary.as_dict(), as_json)
    if summary.failed:
        raise typer.Exit(3)


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    table = Table(title=f"emulator → {summary['target']}", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("events", "sent", "acknowledged", "failed", "missing_rows", "requests", "retries"):
        table.add_row(key.replace("_", " "), f"{summary[key]:,}")
    table.add_row("seconds", f"{summary['seconds']:.2f}")
    table.add_row("events/s", f"{summary['events_per_second']:,.1f}")
    console.print(table)
    for reason, n in summary.get("errors", {}).items():
        err_console.print(f"[red]{n:,} records failed:[/] {reason}", highlight=False)


# ---- bench ------------------------------------------------------------------------------
@app.command("bench")
@friendly_errors
def bench(
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these benchmarks (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure the pipeline's speeds on this machine and print the numbers."""
    from services.bench import BENCHMARKS

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


if __name__ == "__main__":
    app()
