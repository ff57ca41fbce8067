"""`pinpipe kafka`: Kafka's own command-line tools against the stack's broker."""

from __future__ import annotations

from collections.abc import Callable

import typer

from pinpipe.cli.output import friendly_errors
from services.core.settings import get_settings

app = typer.Typer(
    help="Kafka's own command-line tools (from .jars/kafka). Options are passed on unchanged "
    "(`pinpipe kafka topics --help` lists the tool's); --bootstrap-server defaults to the "
    "stack's broker.",
    no_args_is_help=True,
)

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _kafka_tool(tool: str) -> Callable[[typer.Context], None]:
    def run(ctx: typer.Context) -> None:
        import subprocess

        from services.stack.kafka_jars import tool_command

        argv = tool_command(get_settings(), tool, list(ctx.args))
        raise typer.Exit(subprocess.run(argv, check=False).returncode)

    run.__doc__ = f"kafka-{tool}.sh"
    return run


def _register_kafka_tools() -> None:
    from services.stack.kafka_jars import TOOLS

    for tool in TOOLS:
        app.command(tool, context_settings=PASS_THROUGH)(friendly_errors(_kafka_tool(tool)))


_register_kafka_tools()
