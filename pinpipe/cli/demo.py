"""`pinpipe demo`: the whole pipeline on the native stack, step by step, each step timed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pinpipe.cli.output import console, err_console
from services.core.settings import Settings, get_settings


@dataclass(frozen=True)
class Step:
    args: tuple[str, ...]
    what: str

    @property
    def name(self) -> str:
        return " ".join(a for a in self.args if not a.startswith("-") and not a.isdigit())


@dataclass
class Ran:
    step: Step
    seconds: float
    returncode: int


def steps(events: int, stream_events: int, airflow: bool) -> list[Step]:
    """The demo's commands, in the order data flows."""
    ran = [
        Step(("stack", "up"), "start MariaDB, Kafka, LocalStack, the REST proxy, the S3 sink"),
        Step(("db", "seed"), "fill the three source tables with dirty synthetic rows"),
        Step(("db", "profile"), "count the rows and the dirt in each column"),
        Step(
            ("emulate", "batch", "--count", str(events), "--seed", "1", "--hops"),
            "post events through API Gateway → REST proxy → Kafka → S3; count every hop",
        ),
        Step(
            ("batch", "run"), "Spark: clean, answer the eight queries, write Delta and the report"
        ),
        Step(
            ("stream", "demo", "--count", str(stream_events), "--rate", "20"),
            "API Gateway → Kinesis → Spark Structured Streaming → Delta, checked",
        ),
    ]
    if airflow:
        ran += [
            Step(("airflow", "up"), "start Airflow standalone with the project's DAG"),
            Step(
                ("airflow", "trigger", "--wait"), "one run of the DAG: fresh data → batch → report"
            ),
        ]
    return ran


def run_step(step: Step, number: int, total: int) -> Ran:
    """Run one step as its own `pinpipe` process (its own Spark JVM), output on the terminal."""
    console.rule(f"[bold]{number}/{total} pinpipe {' '.join(step.args)}[/]", align="left")
    console.print(f"[dim]{step.what}[/]", highlight=False)
    started = time.monotonic()
    code = subprocess.run([sys.executable, "-m", "pinpipe.cli", *step.args], check=False).returncode
    seconds = time.monotonic() - started
    mark = "[green]✓[/]" if code == 0 else f"[red]✗ exit {code}[/]"
    console.print(f"{mark} {step.name} [dim]{seconds:.1f} s[/]", highlight=False)
    return Ran(step, seconds, code)


def warehouse_tables(settings: Settings) -> list[str]:
    """The user's tables in a local warehouse folder (none listed for s3:// warehouses)."""
    root = Path(settings.warehouse_uri)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.name.startswith(f"{settings.user_id}_"))


def example_ind(settings: Settings) -> int | None:
    """A post to trace: one both jobs wrote, else one the batch job cleaned (None before)."""
    from pinpipe.trace import CLEAN_KEY
    from spark.sinks.tables import read_warehouse_table

    found: list[set[int]] = []
    for name in (settings.clean_tables["pin"], settings.delta_tables["pin"]):
        table = read_warehouse_table(settings, name, columns=[CLEAN_KEY])
        if table is not None:
            found.append(set(table.column(CLEAN_KEY).to_pylist()))
    if not found or not found[0]:
        return None
    both = found[0] & found[-1]
    return min(both or found[0])


def print_summary(settings: Settings, ran: list[Ran], airflow: bool) -> None:
    """What ran and how long it took; where the results are and how to look at them."""
    table = Table(title="demo", title_justify="left")
    for col, justify in (("step", "left"), ("seconds", "right"), ("", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in ran:
        table.add_row(
            f"pinpipe {' '.join(r.step.args)}",
            f"{r.seconds:.1f}",
            "[green]ok[/]" if r.returncode == 0 else f"[red]failed ({r.returncode})[/]",
        )
    table.add_row("[bold]total[/]", f"[bold]{sum(r.seconds for r in ran):.1f}[/]", "")
    console.print(table)

    report = settings.reports_dir / "batch-report.html"
    tables = warehouse_tables(settings)
    where = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    where.add_row("report", f"{report.resolve().as_uri()}  (open it in a browser)")
    where.add_row(
        "tables",
        f"{settings.warehouse_uri}: {len(tables)} Delta tables, e.g. {', '.join(tables[:3])}",
    )
    ind = example_ind(settings)
    where.add_row("one post", f"pinpipe trace {ind if ind is not None else '<ind>'}  (every hop)")
    where.add_row(
        "a topic",
        f"pinpipe kafka console-consumer --topic {settings.topics['pin']} "
        "--from-beginning --max-messages 3",
    )
    where.add_row("services", "pinpipe stack status  (passwords: add --show-secrets)")
    if airflow:
        from services.stack.airflow_standalone import ADMIN_USER, AirflowService

        service = AirflowService(settings)
        where.add_row(
            "Airflow",
            f"{service.endpoint()}/dags/{settings.dag_id} "
            f"(login {ADMIN_USER}, password in {service.password_file})",
        )
    where.add_row("logs", f"{settings.logs_dir} (Spark's own: spark.log; --verbose shows them)")
    where.add_row("stop", "pinpipe stack down; pinpipe airflow down")
    console.print(where)


def demo(
    events: Annotated[int, typer.Option(help="Events the batch emulator posts.")] = 1000,
    stream_events: Annotated[int, typer.Option(help="Events the streaming demo posts.")] = 300,
    airflow: Annotated[
        bool, typer.Option("--airflow/--no-airflow", help="Start Airflow and run the DAG once.")
    ] = True,
) -> None:
    """Run the whole pipeline on the native stack: each step, its time, then where to look."""
    settings = get_settings()
    todo = steps(events, stream_events, airflow)
    console.print(
        f"[bold]pinpipe demo[/]: {len(todo)} steps on the native stack, user {settings.user_id}"
        + (
            ""
            if os.environ.get("PINPIPE_VERBOSE") == "1"
            else f" (Spark's own log: {settings.logs_dir / 'spark.log'})"
        ),
        highlight=False,
    )
    ran: list[Ran] = []
    for number, step in enumerate(todo, 1):
        ran.append(run_step(step, number, len(todo)))
        if ran[-1].returncode != 0:
            print_summary(settings, ran, airflow)
            err_console.print(
                f"[bold red]the demo stopped at `pinpipe {' '.join(step.args)}`[/]; "
                f"its services' logs are in {settings.logs_dir}",
                highlight=False,
            )
            raise typer.Exit(ran[-1].returncode)
    console.rule("[bold]done[/]", align="left")
    print_summary(settings, ran, airflow)
