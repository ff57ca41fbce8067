"""``pinpipe``: one command line for everything the Makefile does, one module per group."""

from __future__ import annotations

import typer

from pinpipe.cli import airflow, batch, bench, db, deploy, emulate, kafka, stack, stream

app = typer.Typer(
    help="A local-first replica of Pinterest's data pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(db.app, name="db")
app.add_typer(emulate.app, name="emulate")
app.add_typer(batch.app, name="batch")
app.add_typer(stream.app, name="stream")
app.add_typer(kafka.app, name="kafka")
app.add_typer(deploy.app, name="deploy")
app.add_typer(airflow.app, name="airflow")
app.command("bench")(bench.bench)
