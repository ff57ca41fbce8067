"""`pinpipe emulate`: post sampled source rows into the pipeline."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from pinpipe.cli.output import JsonOpt, console, err_console, friendly_errors, progress
from services.core.settings import get_settings

if TYPE_CHECKING:
    from emulator.posting import EmulationOptions

app = typer.Typer(help="Post sampled source rows into the pipeline.", no_args_is_help=True)

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


Opts = TypeVar("Opts", bound="EmulationOptions")


def options(
    cls: type[Opts],
    count: int | None,
    duration: float | None,
    rate: float | None,
    concurrency: int,
    batch_size: int,
    seed: int | None,
    direct: bool,
    classic: bool,
) -> Opts:
    """The options both modes share; 1,000 events when neither a count nor a duration is given."""
    return cls(
        count=1_000 if count is None and duration is None else count,
        duration=duration,
        rate=rate,
        concurrency=concurrency,
        batch_size=1 if classic else batch_size,
        seed=seed,
        direct=direct,
        classic=classic,
    )


def records(opts: EmulationOptions) -> int | None:
    """How many records a run posts (a pin, a geo and a user row per event), if known."""
    return opts.count * 3 if opts.count else None


@app.command("batch")
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
    from emulator.batch_mode import EmulationOptions, run_batch
    from pinpipe import hops as hop_counts

    settings = get_settings()
    before = None
    if hops:
        with err_console.status("counting what the topics and the bucket already hold…"):
            before = (hop_counts.topic_message_counts(settings), hop_counts.bucket_counts(settings))

    opts = options(
        EmulationOptions, count, duration, rate, concurrency, batch_size, seed, direct, classic
    )
    opts.max_attempts = retries
    with progress("posting", records(opts), quiet=as_json) as advance:
        summary = run_batch(settings, opts, on_records=advance)
    _print_summary(summary.as_dict(), as_json)
    if before is not None:
        _print_hops(settings, summary, before, as_json)
    if summary.failed:
        raise typer.Exit(3)


def _print_hops(settings: Any, summary: Any, before: tuple[Any, Any], as_json: bool) -> None:
    """Records per topic at every hop, counting only what this run added."""
    from pinpipe import hops as hop_counts

    topics_before, bucket_before = before
    expected = {
        t: bucket_before.records.get(t, 0) + summary.acknowledged_by_topic.get(t, 0)
        for t in settings.topics.values()
    }
    with err_console.status("waiting for the S3 sink…"):
        bucket = hop_counts.wait_for_bucket(settings, expected)
        topics = hop_counts.topic_message_counts(settings)
    write_hops(settings, summary, topics, bucket)
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


# Read by the batch report (spark/sinks/report.py, HOPS_FILE) from the reports folder.
HOPS_FILE = "hops.json"


def write_hops(settings: Any, summary: Any, topics: dict[str, int], bucket: Any) -> None:
    """Leave this run's acknowledgements and the topics' and bucket's totals for the report."""
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    counts = {
        "events": summary.events,
        "acknowledged": summary.acknowledged_by_topic,
        "in_topic": topics,
        "s3_records": bucket.records,
    }
    (settings.reports_dir / HOPS_FILE).write_text(json.dumps(counts, indent=2) + "\n")


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


@app.command("stream")
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
    from emulator.streaming_mode import StreamEmulationOptions, run_stream

    opts = options(
        StreamEmulationOptions,
        count,
        duration,
        rate,
        concurrency,
        batch_size,
        seed,
        direct,
        classic,
    )
    opts.max_attempts = retries
    opts.base64_data = base64_data
    with progress("putting", records(opts), quiet=as_json) as advance:
        summary = run_stream(get_settings(), opts, on_records=advance)
    _print_summary(summary.as_dict(), as_json)
    if summary.failed:
        raise typer.Exit(3)
