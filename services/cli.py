"""``pinpipe``: one command line for everything the Makefile does."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.errors import PinpipeError, ServiceStartError
from services.settings import get_settings

app = typer.Typer(
    help="A local-first replica of Pinterest's data pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(
    help="Start, stop and inspect the native service stack.", no_args_is_help=True
)
db_app = typer.Typer(help="The MySQL source database: seed and profile.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")
emulate_app = typer.Typer(help="Post sampled source rows into the pipeline.", no_args_is_help=True)
app.add_typer(emulate_app, name="emulate")
batch_app = typer.Typer(help="The Spark batch job: clean, query, publish.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Turn the project's errors into one clear line (plus a log tail) and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PinpipeError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            if isinstance(exc, ServiceStartError) and exc.log_tail:
                err_console.print(f"[dim]last lines of the {exc.service} log:[/]")
                err_console.print(exc.log_tail, markup=False, highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
# Options both emulator modes share.
CountOpt = Annotated[
    int | None, typer.Option(help="Events to post (each is a pin, a geo and a user row).")
]
DurationOpt = Annotated[
    float | None, typer.Option(help="Stop after this many seconds (count unlimited unless given).")
]
RateOpt = Annotated[
    float | None, typer.Option(help="Events per second (default: as fast as possible).")
]
ConcurrencyOpt = Annotated[int, typer.Option(help="Requests in flight at once.")]
SeedOpt = Annotated[int | None, typer.Option(help="Sampling seed (same seed, same events).")]
RetriesOpt = Annotated[int, typer.Option(help="Attempts per request for transient failures.")]


# ---- stack --------------------------------------------------------------------------------
@stack_app.command("up")
@friendly_errors
def stack_up() -> None:
    """Start, health-check and provision every native service (idempotent)."""
    from services.stack.stack import NativeStack

    stack = NativeStack(get_settings())
    with console.status("starting the native stack…"):
        stack.up(
            on_step=lambda r: console.print(
                f"[green]✓[/] {r.service:<12} {r.outcome} [dim]({r.seconds:.1f}s)[/]"
            )
        )
    _print_status(stack)


@stack_app.command("down")
@friendly_errors
def stack_down() -> None:
    """Stop exactly the processes the stack started."""
    from services.stack.stack import NativeStack

    for name, stopped in NativeStack(get_settings()).down().items():
        console.print(f"{name:<12} {'stopped' if stopped else 'was not running (or not ours)'}")


@stack_app.command("status")
@friendly_errors
def stack_status(as_json: JsonOpt = False) -> None:
    """Each service's state, endpoint and pid."""
    from services.stack.stack import NativeStack

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


# ---- db ---------------------------------------------------------------------------------
@db_app.command("seed")
@friendly_errors
def db_seed(
    posts: Annotated[
        int, typer.Option(help="Number of posts (each has a geo and a user row).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same rows.")] = -1,
    as_json: JsonOpt = False,
) -> None:
    """Replace the source tables with generated rows (default: settings' size and seed)."""
    from services.source_db.database import SourceDatabase

    settings = get_settings()
    posts = posts or settings.seed_posts
    seed = settings.seed if seed < 0 else seed
    db = SourceDatabase.connect(settings.db)
    with Progress(
        TextColumn("seeding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("posts", total=posts)
        result = db.seed(posts, seed, progress=lambda n: progress.advance(task, n))
    summary = {
        "posts": result.posts,
        "rows": result.rows,
        "seconds": round(result.seconds, 3),
        "rows_per_second": round(result.rows_per_second),
    }
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        console.print(
            f"seeded {result.posts:,} posts ({result.rows:,} rows) in {result.seconds:.1f}s "
            f"= {result.rows_per_second:,.0f} rows/s"
        )


@db_app.command("profile")
@friendly_errors
def db_profile(as_json: JsonOpt = False) -> None:
    """Row counts, and the rate of each dirty value per column."""
    from services.source_db.database import SourceDatabase

    counts, rows = SourceDatabase.connect(get_settings().db).profile()
    if as_json:
        sys.stdout.write(json.dumps({"counts": counts, "dirt": [r.__dict__ for r in rows]}) + "\n")
        return
    table = Table(title="source tables", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    dirt = Table(title="dirty values", title_justify="left")
    for col, justify in (
        ("table", "left"),
        ("column", "left"),
        ("value", "left"),
        ("rows", "right"),
        ("rate", "right"),
    ):
        dirt.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        dirt.add_row(
            r.table,
            r.column,
            repr(r.value) if r.value.strip() != r.value else r.value,
            f"{r.count:,}",
            f"{r.rate:.2%}",
        )
    console.print(dirt)
    console.print(
        "[dim]Duplicates are not in the tables: the emulator samples rows with replacement, "
        "so the same row reaches the pipeline more than once.[/]"
    )


# ---- emulate ----------------------------------------------------------------------------
@emulate_app.command("batch")
@friendly_errors
def emulate_batch(
    count: CountOpt = None,
    duration: DurationOpt = None,
    rate: RateOpt = None,
    concurrency: ConcurrencyOpt = 4,
    batch_size: Annotated[int, typer.Option(help="Records per request (per topic).")] = 100,
    seed: SeedOpt = None,
    direct: Annotated[
        bool, typer.Option(help="Post to the REST proxy, bypassing API Gateway.")
    ] = False,
    classic: Annotated[
        bool,
        typer.Option(help="Behave like the original script: one record per request, 0-1 s sleeps."),
    ] = False,
    retries: RetriesOpt = 5,
    hops: Annotated[
        bool,
        typer.Option(help="Afterwards, wait for the S3 sink and count records at every hop."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sample rows (with replacement) and post them to the Kafka topics through the API."""
    from emulator.batch import EmulationOptions, run_batch
    from services import hops as hop_counts

    settings = get_settings()
    before = None
    if hops:
        with err_console.status("counting what the topics and the bucket already hold…"):
            before = (hop_counts.topic_message_counts(settings), hop_counts.bucket_counts(settings))

    if count is None and duration is None:
        count = 1_000
    opts = EmulationOptions(
        count=count,
        duration=duration,
        rate=rate,
        concurrency=concurrency,
        batch_size=1 if classic else batch_size,
        seed=seed,
        direct=direct,
        classic=classic,
        max_attempts=retries,
    )
    total = count * 3 if count else None
    with Progress(
        TextColumn("posting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("records", total=total)
        summary = run_batch(settings, opts, on_records=lambda n: progress.advance(task, n))
    _print_summary(summary.as_dict(), as_json)
    if before is not None:
        _print_hops(settings, summary, before, as_json)
    if summary.failed:
        raise typer.Exit(3)


def _print_hops(settings: Any, summary: Any, before: tuple[Any, Any], as_json: bool) -> None:
    """Records per topic at every hop, counting only what this run added."""
    from services import hops as hop_counts

    topics_before, bucket_before = before
    expected = {
        t: bucket_before.records.get(t, 0) + summary.acknowledged_by_topic.get(t, 0)
        for t in settings.topics.values()
    }
    with err_console.status("waiting for the S3 sink…"):
        bucket = hop_counts.wait_for_bucket(settings, expected)
        topics = hop_counts.topic_message_counts(settings)
    rows = []
    for topic in settings.topics.values():
        rows.append(
            {
                "topic": topic,
                "sampled": summary.events,
                "acknowledged": summary.acknowledged_by_topic.get(topic, 0),
                "in_topic": topics.get(topic, 0) - topics_before.get(topic, 0),
                "s3_objects": bucket.objects.get(topic, 0) - bucket_before.objects.get(topic, 0),
                "s3_records": bucket.records.get(topic, 0) - bucket_before.records.get(topic, 0),
            }
        )
    if as_json:
        sys.stdout.write(json.dumps({"hops": rows}) + "\n")
        return
    table = Table(title="records at every hop (this run)", title_justify="left")
    for col in ("topic", "sampled", "acknowledged", "in_topic", "s3_objects", "s3_records"):
        table.add_column(
            col.replace("_", " "),
            justify="left" if col == "topic" else "right",
            no_wrap=col == "topic",
        )
    for r in rows:
        ok = r["acknowledged"] == r["in_topic"] == r["s3_records"]
        mark = "[green]" if ok else "[red]"
        table.add_row(*(f"{mark}{r[c]:,}" if c != "topic" else r[c] for c in r))
    console.print(table)


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    table = Table(title=f"emulator → {summary['target']}", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("events", "sent", "acknowledged", "failed", "missing_rows", "requests", "retries"):
        table.add_row(key.replace("_", " "), f"{summary[key]:,}")
    table.add_row("seconds", f"{summary['seconds']:.2f}")
    table.add_row("events/s", f"{summary['events_per_second']:,.1f}")
    console.print(table)
    for reason, n in summary.get("errors", {}).items():
        err_console.print(f"[red]{n:,} records failed:[/] {reason}", highlight=False)


# ---- batch ------------------------------------------------------------------------------
@batch_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
@friendly_errors
def batch_run(ctx: typer.Context) -> None:
    """Run the batch job locally (flags as spark/jobs/batch.py: --reader, --warehouse, --json …)."""
    from spark.jobs.batch import main

    main(list(ctx.args))


# ---- stream -------------------------------------------------------------------------------
stream_app = typer.Typer(
    help="The Spark Structured Streaming job: Kinesis to Delta, exactly once.",
    no_args_is_help=True,
)
app.add_typer(stream_app, name="stream")


@emulate_app.command("stream")
@friendly_errors
def emulate_stream(
    count: CountOpt = None,
    duration: DurationOpt = None,
    rate: RateOpt = None,
    concurrency: ConcurrencyOpt = 4,
    batch_size: Annotated[
        int, typer.Option(help="Records per PutRecords request (per stream, at most 500).")
    ] = 100,
    seed: SeedOpt = None,
    direct: Annotated[
        bool, typer.Option(help="Put records with boto3, bypassing API Gateway.")
    ] = False,
    classic: Annotated[
        bool,
        typer.Option(help="Behave like the original script: one PutRecord per row, 0-1 s sleeps."),
    ] = False,
    base64_data: Annotated[
        bool,
        typer.Option("--base64", help="Send Data base64-encoded, as some clients do."),
    ] = False,
    retries: RetriesOpt = 5,
    as_json: JsonOpt = False,
) -> None:
    """Sample rows (with replacement) and put them to the Kinesis streams through the API."""
    from emulator.streaming import StreamEmulationOptions, run_stream

    if count is None and duration is None:
        count = 1_000
    opts = StreamEmulationOptions(
        count=count,
        duration=duration,
        rate=rate,
        concurrency=concurrency,
        batch_size=1 if classic else batch_size,
        seed=seed,
        direct=direct,
        classic=classic,
        max_attempts=retries,
        base64_data=base64_data,
    )
    with Progress(
        TextColumn("putting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("records", total=count * 3 if count else None)
        summary = run_stream(get_settings(), opts, on_records=lambda n: progress.advance(task, n))
    _print_summary(summary.as_dict(), as_json)
    if summary.failed:
        raise typer.Exit(3)


@stream_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
@friendly_errors
def stream_run(ctx: typer.Context) -> None:
    """Run the streaming job (flags as spark/jobs/streaming.py: --duration, --json …)."""
    from spark.jobs.streaming import main

    main(list(ctx.args))


@stream_app.command("demo")
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
    from emulator.streaming import StreamEmulationOptions
    from spark.jobs.stream_demo import run_demo
    from spark.jobs.streaming import print_batch
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


# ---- bench ------------------------------------------------------------------------------
@app.command("bench")
@friendly_errors
def bench(
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these benchmarks (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure the pipeline's speeds on this machine and print the numbers."""
    from services.bench import BENCHMARKS

    names = only or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise typer.BadParameter(
            f"unknown benchmark {unknown[0]}; choose from {', '.join(BENCHMARKS)}"
        )
    results = []
    for name in names:
        with err_console.status(f"bench: {name}…"):
            results += BENCHMARKS[name]()
    if as_json:
        sys.stdout.write(json.dumps([r.__dict__ for r in results]) + "\n")
        return
    table = Table(title="pinpipe bench", title_justify="left")
    for col, justify in (
        ("measurement", "left"),
        ("value", "right"),
        ("unit", "left"),
        ("note", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(
            r.name, f"{r.value:,.2f}" if r.value < 100 else f"{r.value:,.0f}", r.unit, r.note
        )
    console.print(table)


# ---- deploy -----------------------------------------------------------------------------
deploy_app = typer.Typer(
    help="Promote the same configs to AWS and Databricks: plan, apply, destroy (like Terraform).",
    no_args_is_help=True,
)
app.add_typer(deploy_app, name="deploy")

TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target", help="Target settings (default aws-target.yaml; PINPIPE_AWS_* override it)."
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        help="Dry run: send the S3, IAM, Kinesis and API Gateway steps to this LocalStack URL "
        "('local': the native stack's).",
    ),
]
OnlyOpt = Annotated[
    list[str] | None,
    typer.Option("--only", help="Run only this step (repeatable): s3, iam, msk, msk_connect, …"),
]


def _deployment(target: str | None, endpoint: str | None, only: list[str] | None, **kw: Any) -> Any:
    from pathlib import Path

    from aws_deploy.runner import Deployment

    path = Path(target) if target else None
    return Deployment.prepare(path, endpoint=endpoint, only=only or (), **kw)


@deploy_app.command("plan")
@friendly_errors
def deploy_plan(
    target: TargetOpt = None,
    endpoint: EndpointOpt = None,
    only: OnlyOpt = None,
    destroy: Annotated[bool, typer.Option("--destroy", help="Plan a destroy instead.")] = False,
) -> None:
    """Show what apply would create, update or leave as it is; reads only, changes nothing."""
    from aws_deploy.plan import render_change, summary

    deployment = _deployment(target, endpoint, only)
    if not destroy:
        deployment.plan(console)
        return
    changes = [change for _, change in deployment.destroy_plan()]
    for change in changes:
        render_change(console, change)
    console.print(f"\n[bold]Destroy plan:[/] {summary(changes)}", highlight=False)


@deploy_app.command("apply")
@friendly_errors
def deploy_apply(
    target: TargetOpt = None,
    endpoint: EndpointOpt = None,
    only: OnlyOpt = None,
    trigger_dag: Annotated[
        bool, typer.Option("--trigger-dag", help="Afterwards, start a run of the DAG on MWAA.")
    ] = False,
) -> None:
    """Converge every step (idempotent: a second run changes nothing)."""
    _deployment(target, endpoint, only, trigger_dag=trigger_dag).apply(console)


@deploy_app.command("destroy")
@friendly_errors
def deploy_destroy(
    target: TargetOpt = None,
    endpoint: EndpointOpt = None,
    only: OnlyOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Don't ask for confirmation.")] = False,
) -> None:
    """Remove what apply created, and nothing it found in place."""

    def confirm(changes: list[Any]) -> bool:
        return yes or typer.confirm(f"Delete {sum(c.pending for c in changes)} resources?")

    _deployment(target, endpoint, only).destroy(console, confirm)


@deploy_app.command("policy")
@friendly_errors
def deploy_policy(target: TargetOpt = None, only: OnlyOpt = None) -> None:
    """Print the deployer's least-privilege IAM policy, filled in for the target."""
    from aws_deploy.iam import deploy_policy as render_policy

    sys.stdout.write(render_policy(_deployment(target, None, only).ctx) + "\n")


# ---- kafka -------------------------------------------------------------------------------
kafka_app = typer.Typer(
    help="Kafka's own command-line tools (from .jars/kafka). Options are passed on unchanged "
    "(`pinpipe kafka topics --help` lists the tool's); --bootstrap-server defaults to the "
    "stack's broker.",
    no_args_is_help=True,
)
app.add_typer(kafka_app, name="kafka")
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
        kafka_app.command(tool, context_settings=PASS_THROUGH)(friendly_errors(_kafka_tool(tool)))


_register_kafka_tools()


# ---- airflow ----------------------------------------------------------------------------
airflow_app = typer.Typer(
    help="Airflow standalone running the pipeline's DAG (opt-in: 20-45 s to start, ~1.5 GB).",
    no_args_is_help=True,
)
app.add_typer(airflow_app, name="airflow")


@airflow_app.command("up")
@friendly_errors
def airflow_up() -> None:
    """Start Airflow standalone on 127.0.0.1 with the project's DAG folder (idempotent)."""
    from services.stack.airflow import ADMIN_USER, AirflowService

    settings = get_settings()
    service = AirflowService(settings)
    with console.status("starting Airflow standalone (20-45 s)…"):
        outcome = service.up()
    console.print(f"[green]✓[/] airflow {outcome}")
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_row("URL", service.endpoint())
    table.add_row("login", f"{ADMIN_USER} / {service.password()}")
    table.add_row("DAG", f"{settings.dag_id} ({settings.airflow_dags_folder / settings.dag_file})")
    table.add_row("log", str(service.proc.log_file))
    console.print(table)


@airflow_app.command("down")
@friendly_errors
def airflow_down() -> None:
    """Stop Airflow standalone (only the one this project started)."""
    from services.stack.airflow import AirflowService

    stopped = AirflowService(get_settings()).down()
    console.print(f"airflow {'stopped' if stopped else 'was not running (or not ours)'}")


@airflow_app.command("trigger")
@friendly_errors
def airflow_trigger(
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the run until it finishes.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 1800,
    as_json: JsonOpt = False,
) -> None:
    """Start one run of the DAG through Airflow's REST API; with --wait, show its task states."""
    from services.errors import PrerequisiteError
    from services.stack.airflow import AirflowService

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


if __name__ == "__main__":
    app()
