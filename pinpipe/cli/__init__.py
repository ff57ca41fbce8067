"""``pinpipe``: one command line for everything the Makefile does, one module per group."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pinpipe.cli import (
    airflow,
    batch,
    bench,
    db,
    demo,
    deploy,
    emulate,
    kafka,
    stack,
    stream,
    trace,
)

app = typer.Typer(
    help="A local-first replica of Pinterest's data pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Read by spark.session: without it, Spark's JVM writes to <state dir>/logs/spark.log.
VERBOSE_ENV = "PINPIPE_VERBOSE"


@app.callback()
def main(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Show Spark's and Java's own log lines (else in .pinpipe/logs)."
        ),
    ] = False,
) -> None:
    """A local-first replica of Pinterest's data pipeline."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


app.add_typer(stack.app, name="stack")
app.add_typer(db.app, name="db")
app.add_typer(emulate.app, name="emulate")
app.add_typer(batch.app, name="batch")
app.add_typer(stream.app, name="stream")
app.add_typer(kafka.app, name="kafka")
app.add_typer(deploy.app, name="deploy")
app.add_typer(airflow.app, name="airflow")
app.command("bench")(bench.bench)
app.command("trace")(trace.trace)
app.command("demo")(demo.demo)
