"""`pinpipe batch`: the Spark batch job."""

from __future__ import annotations

import typer

from pinpipe.cli.output import friendly_errors

app = typer.Typer(help="The Spark batch job: clean, query, publish.", no_args_is_help=True)


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly_errors
def batch_run(ctx: typer.Context) -> None:
    """Run the batch job locally (flags as spark/jobs/batch_job.py: --reader, --warehouse, --json …)."""
    from spark.jobs.batch_job import main

    main(list(ctx.args))
