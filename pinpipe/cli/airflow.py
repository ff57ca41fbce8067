"""`pinpipe airflow`: Airflow standalone running the pipeline's DAG."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from pinpipe.cli.output import JsonOpt, ShowSecretsOpt, console, err_console, friendly_errors
from services.core.settings import get_settings

app = typer.Typer(
    help="Airflow standalone running the pipeline's DAG (opt-in: 20-45 s to start, ~1.5 GB).",
    no_args_is_help=True,
)


@app.command("up")
@friendly_errors
def airflow_up(show_secrets: ShowSecretsOpt = False) -> None:
    """Start Airflow standalone on 127.0.0.1 with the project's DAG folder (idempotent)."""
    from services.stack.airflow_standalone import ADMIN_USER, AirflowService

    settings = get_settings()
    service = AirflowService(settings)
    with console.status("starting Airflow standalone (20-45 s)…"):
        outcome = service.up()
    console.print(f"[green]✓[/] airflow {outcome}")
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_row("URL", service.endpoint())
    if show_secrets:
        table.add_row("login", f"{ADMIN_USER} / {service.password()}")
    else:
        table.add_row("login", f"{ADMIN_USER}, password in {service.password_file}")
    table.add_row("DAG", f"{settings.dag_id} ({settings.airflow_dags_folder / settings.dag_file})")
    table.add_row("log", str(service.proc.log_file))
    console.print(table)


@app.command("down")
@friendly_errors
def airflow_down() -> None:
    """Stop Airflow standalone (only the one this project started)."""
    from services.stack.airflow_standalone import AirflowService

    stopped = AirflowService(get_settings()).down()
    console.print(f"airflow {'stopped' if stopped else 'was not running (or not ours)'}")


@app.command("trigger")
@friendly_errors
def airflow_trigger(
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the run until it finishes.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 1800,
    as_json: JsonOpt = False,
) -> None:
    """Start one run of the DAG through Airflow's REST API; with --wait, show its task states."""
    from services.core.errors import PrerequisiteError
    from services.stack.airflow_standalone import AirflowService

    settings = get_settings()
    service = AirflowService(settings)
    if service.status().state != "up":
        raise PrerequisiteError("Airflow is not running: start it with `make airflow`.")
    client = service.client()
    dag = client.wait_for_dag(settings.dag_id, settings.dag_file, timeout=120)
    if dag["is_paused"]:
        # The scheduler leaves a paused DAG's runs queued forever.
        client.unpause(settings.dag_id)
        err_console.print(f"unpaused {settings.dag_id}", highlight=False)
    run_id = client.trigger(settings.dag_id)
    url = f"{service.endpoint()}/dags/{settings.dag_id}/runs/{run_id}"
    if not wait:
        if as_json:
            sys.stdout.write(json.dumps({"dag_id": settings.dag_id, "run_id": run_id}) + "\n")
        else:
            console.print(f"triggered {run_id}: {url}", highlight=False)
        return
    with err_console.status(f"{settings.dag_id}: {run_id} queued…") as progress:
        result = client.wait_for_run(
            settings.dag_id,
            run_id,
            timeout,
            on_poll=lambda r: progress.update(
                f"{r.dag_id}: {r.state} · "
                + ", ".join(f"{t.task_id} {t.state or 'none'}" for t in r.tasks)
            ),
        )
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict()) + "\n")
    else:
        colors = {"success": "green", "failed": "red", "upstream_failed": "red"}
        table = Table(title=f"{result.dag_id} · {run_id}", title_justify="left")
        for col, justify in (
            ("task", "left"),
            ("state", "left"),
            ("try", "right"),
            ("seconds", "right"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for t in result.tasks:
            color = colors.get(t.state or "", "yellow")
            seconds = f"{t.seconds:.1f}" if t.seconds is not None else "-"
            table.add_row(t.task_id, f"[{color}]{t.state}[/]", str(t.try_number), seconds)
        console.print(table)
        console.print(f"run {result.state}: {url}", highlight=False)
    if result.state != "success":
        raise typer.Exit(1)
