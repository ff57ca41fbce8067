"""`pinpipe stack`: start, stop and inspect the native service stack."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.table import Table

from pinpipe.cli.output import JsonOpt, console, friendly_errors
from services.core.settings import get_settings

app = typer.Typer(help="Start, stop and inspect the native service stack.", no_args_is_help=True)


@app.command("up")
@friendly_errors
def stack_up() -> None:
    """Start, health-check and provision every native service (idempotent)."""
    from services.stack.native_stack import NativeStack

    stack = NativeStack(get_settings())
    with console.status("starting the native stack…"):
        stack.up(
            on_step=lambda r: console.print(
                f"[green]✓[/] {r.service:<12} {r.outcome} [dim]({r.seconds:.1f}s)[/]"
            )
        )
    _print_status(stack)


@app.command("down")
@friendly_errors
def stack_down() -> None:
    """Stop exactly the processes the stack started."""
    from services.stack.native_stack import NativeStack

    for name, stopped in NativeStack(get_settings()).down().items():
        console.print(f"{name:<12} {'stopped' if stopped else 'was not running (or not ours)'}")


@app.command("status")
@friendly_errors
def stack_status(as_json: JsonOpt = False) -> None:
    """Each service's state, endpoint and pid."""
    from services.stack.native_stack import NativeStack

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
