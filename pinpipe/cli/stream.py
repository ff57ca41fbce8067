"""`pinpipe stream`: the Spark Structured Streaming job and its demo."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pinpipe.cli.output import console, err_console, friendly_errors
from services.core.settings import get_settings

app = typer.Typer(
    help="The Spark Structured Streaming job: Kinesis to Delta, exactly once.", no_args_is_help=True
)


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly_errors
def stream_run(ctx: typer.Context) -> None:
    """Run the streaming job (flags as spark/jobs/streaming_job.py: --duration, --json …)."""
    from spark.jobs.streaming_job import main

    main(list(ctx.args))


@app.command("demo")
@friendly_errors
def stream_demo(
    count: Annotated[int, typer.Option(help="Events to post through the API.")] = 300,
    rate: Annotated[float, typer.Option(help="Events per second.")] = 20.0,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait, after posting, for the tables to catch up.")
    ] = 60.0,
    trigger_seconds: Annotated[float, typer.Option(help="Micro-batch interval.")] = 2.0,
) -> None:
    """Post events through API Gateway while the streaming job runs; watch the tables fill."""
    from emulator.streaming_mode import StreamEmulationOptions
    from pinpipe.stream_demo import run_demo
    from spark.jobs.streaming_job import print_batch
    from spark.session import get_spark

    settings = get_settings().model_copy(update={"stream_trigger_seconds": trigger_seconds})
    console.print(
        f"streaming {count} events at {rate:g}/s: API Gateway → Kinesis → Spark → Delta "
        f"([dim]{settings.warehouse_uri}[/])"
    )
    with err_console.status("starting Spark…"):
        spark = get_spark(settings, "pinpipe-stream")
    result = run_demo(
        spark, settings, StreamEmulationOptions(count=count, rate=rate), wait, print_batch
    )
    table = Table(title="posted vs. Delta", title_justify="left")
    for col in ("table", "inds posted", "rows in Delta", "missing", "duplicates"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for c in result.checks:
        table.add_row(c.table, f"{c.posted:,}", f"{c.rows:,}", str(c.missing), str(c.duplicates))
    console.print(table)
    if not result.ok:
        err_console.print("[bold red]the tables don't hold exactly what was posted[/]")
        raise typer.Exit(1)
