"""`pinpipe stack`: start, stop and inspect the native service stack."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.table import Table

from pinpipe.cli.output import (
    JsonOpt,
    ShowSecretsOpt,
    console,
    friendly_errors,
    known_secrets,
    redact,
)
from services.core.settings import Settings, get_settings

app = typer.Typer(help="Start, stop and inspect the native service stack.", no_args_is_help=True)


@app.command("up")
@friendly_errors
def stack_up(show_secrets: ShowSecretsOpt = False) -> None:
    """Start, health-check and provision every native service (idempotent)."""
    from services.stack.native_stack import NativeStack

    stack = NativeStack(get_settings())
    with console.status("starting the native stack…"):
        stack.up(
            on_step=lambda r: console.print(
                f"[green]✓[/] {r.service:<12} {r.outcome} [dim]({r.seconds:.1f}s)[/]"
            )
        )
    _print_status(stack, show_secrets)


@app.command("down")
@friendly_errors
def stack_down() -> None:
    """Stop exactly the processes the stack started."""
    from services.stack.native_stack import NativeStack

    for name, stopped in NativeStack(get_settings()).down().items():
        console.print(f"{name:<12} {'stopped' if stopped else 'was not running (or not ours)'}")


@app.command("status")
@friendly_errors
def stack_status(as_json: JsonOpt = False, show_secrets: ShowSecretsOpt = False) -> None:
    """Each service's state, endpoint and pid (passwords only with --show-secrets)."""
    from services.stack.native_stack import NativeStack

    settings = get_settings()
    stack = NativeStack(settings)
    if as_json:
        payload = {
            "user_id": settings.user_id,
            "state_dir": str(settings.state_dir),
            "services": service_rows(stack, settings, show_secrets),
        }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    _print_status(stack, show_secrets)


def service_rows(stack: Any, settings: Settings, show_secrets: bool) -> list[dict[str, Any]]:
    """Each service's status; the Airflow login's password only when asked for."""
    from services.stack.airflow_standalone import ADMIN_USER, AirflowService

    rows = [s.as_dict() for s in stack.status()]
    if show_secrets:
        airflow = AirflowService(settings)
        for row in rows:
            if row["name"] == airflow.name and row["state"] == "up":
                row["detail"] = f"login {ADMIN_USER} / {airflow.password()}"
        return rows
    return redact(rows, known_secrets(settings))


def _print_status(stack: Any, show_secrets: bool = False) -> None:
    table = Table(title="native stack", title_justify="left")
    table.add_column("service")
    table.add_column("state")
    table.add_column("endpoint", overflow="fold")
    table.add_column("pid")
    table.add_column("note")
    for s in service_rows(stack, stack.settings, show_secrets):
        state = "[green]up[/]" if s["state"] == "up" else "[red]down[/]"
        table.add_row(s["name"], state, s["endpoint"], str(s["pid"] or "-"), s["detail"])
    console.print(table)
