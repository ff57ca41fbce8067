"""`pinpipe trace <ind>`: one post at every hop of the pipeline."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from pinpipe.cli.output import JsonOpt, console, err_console, friendly_errors
from services.core.settings import settings_with

LABELS = {
    "source": "source row",
    "topic": "Kafka record",
    "s3": "S3 object",
    "clean": "batch clean row",
    "delta": "streaming Delta row",
    "quarantine": "quarantined",
}
SHOWN_FIELDS = 4


def _summary(record: dict[str, Any] | None) -> str:
    if not record:
        return ""
    shown = [f"{k}={v}" for k, v in record.items() if k not in ("raw", "data", "payload")]
    text = ", ".join(str(s)[:40] for s in shown[:SHOWN_FIELDS])
    return text + (", …" if len(shown) > SHOWN_FIELDS else "")


@friendly_errors
def trace(
    ind: Annotated[int, typer.Argument(help="The post's ind (pinterest_data's index).")],
    user_id: Annotated[str | None, typer.Option(help="The user id (default: settings).")] = None,
    warehouse: Annotated[
        str | None, typer.Option(help="Where the jobs wrote their tables (default: settings).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Where one post is at every hop, from its source rows to Delta, with any quarantine."""
    from pinpipe.trace import HOPS
    from pinpipe.trace import trace as run_trace

    settings = settings_with({"user_id": user_id, "warehouse_uri": warehouse})
    with err_console.status(f"tracing post {ind} through every hop…"):
        result = run_trace(settings, ind)
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), default=str) + "\n")
        return
    table = Table(title=f"post {ind} at every hop", title_justify="left")
    for col in ("hop", "table", "", "where", "note", "record"):
        table.add_column(col, overflow="fold", no_wrap=col in ("hop", "table"))
    for hop in HOPS:
        for s in result.at(hop):
            mark = "[green]✓[/]" if s.found else "[red]✗[/]"
            if hop == "quarantine":
                mark = "[yellow]![/]"
            table.add_row(LABELS[hop], s.table, mark, s.where, s.note, _summary(s.record))
    if not result.at("quarantine"):
        table.add_row(LABELS["quarantine"], "-", "[green]✓[/]", "none", "nothing quarantined", "")
    console.print(table)
