"""The streaming job: the three Kinesis streams into the three Delta tables, exactly once.

Each micro-batch is decoded with explicit schemas, cleaned by the batch path's own
functions, and merged into ``<uid>_pin_table``, ``<uid>_geo_table`` and ``<uid>_user_table``
(records that can't be decoded go to ``<uid>_quarantine_table``); see
spark/sinks/delta_stream.py for how a replayed batch is kept from writing twice.

Runs unchanged under ``pinpipe stream run``, ``spark-submit spark/jobs/streaming_job.py`` and as
a Databricks ``spark_python_task``: the source (``native``, the project's own Kinesis
reader, or ``databricks``, the runtime's ``kinesis`` format), the starting position, the
trigger, the checkpoint root and the table writer are settings (``PINPIPE_*``) that the
command-line flags override.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from services.core.errors import ConfigError, TerminalError
from services.core.settings import TABLES, Settings, settings_with
from spark.sinks.delta_stream import BatchOutcome, DeltaStreamSink, table_writer
from spark.sources.kinesis_source import KINESIS_SCHEMA, KinesisDataSource

log = logging.getLogger(__name__)

# How long a stop waits for the running micro-batch to finish before interrupting it.
STOP_GRACE_S = 30.0
# The main thread wakes this often to notice a stop request or the end of the duration.
AWAIT_STEP_S = 1
# Spark's default checkpoint manager goes through Hadoop's FileContext, which took about
# 35 ms per log entry on a local disk, and every micro-batch writes two (its offsets, then
# its commit); the FileSystem one took about 8 ms. Both write a temporary file and rename
# it into place, and a rename within a local disk is atomic, which is all the checkpoint
# asks of it. Elsewhere (dbfs:, s3:) the default stays.
CHECKPOINT_FILE_MANAGER_CONF = "spark.sql.streaming.checkpointFileManagerClass"
LOCAL_CHECKPOINT_FILE_MANAGER = (
    "org.apache.spark.sql.execution.streaming.FileSystemBasedCheckpointFileManager"
)


@dataclass
class StreamOptions:
    """How one run of the query behaves."""

    trigger_seconds: float = 2.0
    starting_position: str = "TRIM_HORIZON"
    duration: float | None = None
    checkpoint: str = ""


@dataclass
class StreamResult:
    """What one run did, summed over its micro-batches, and what the tables hold at its end."""

    source: str
    checkpoint: str
    batches: int = 0
    replayed_batches: int = 0
    records: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    merged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    quarantined: int = 0
    table_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, outcome: BatchOutcome) -> None:
        self.batches += 1
        self.replayed_batches += bool(outcome.replayed)
        for table, n in outcome.records.items():
            self.records[table] = self.records.get(table, 0) + n
        for table, n in outcome.merged.items():
            self.merged[table] = self.merged.get(table, 0) + n
        self.quarantined += outcome.quarantined
        self.table_rows = outcome.table_rows

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 2)}


def local_checkpoint(checkpoint: str) -> Path | None:
    """The folder of a checkpoint on the local disk (a path, or a ``file:`` URI); None for a
    checkpoint anywhere else (``dbfs:``, ``s3:``)."""
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", checkpoint)
    if scheme is None:
        return Path(checkpoint)
    if scheme.group(1).lower() == "file":
        return Path(urlparse(checkpoint).path)
    return None


def resume_hint(checkpoint: str) -> str:
    """The newest offsets a local checkpoint logged, as JSON ("" if none).

    Spark 4.0 doesn't tell a Python source where a restarted query stands; without this
    hint the source's first peek would read every shard from TRIM_HORIZON.
    """
    folder = local_checkpoint(checkpoint)
    offsets = folder / "offsets" if folder else None
    if offsets is None or not offsets.is_dir():
        return ""
    batches = [int(p.name) for p in offsets.iterdir() if p.name.isdigit()]
    if not batches:
        return ""
    # Spark's offset log: a version line, the batch metadata, then one line per source.
    lines = (offsets / str(max(batches))).read_text().splitlines()
    return lines[2] if len(lines) == 3 else ""


def read_streams(
    spark: SparkSession, settings: Settings, starting_position: str, checkpoint: str = ""
) -> DataFrame:
    """The three streams as one streaming DataFrame with the ``kinesis`` source's columns."""
    names = ",".join(settings.streams.values())
    if settings.stream_source == "databricks":
        reader = (
            spark.readStream.format("kinesis")
            .option("streamName", names)
            .option("region", settings.aws_region)
            .option("initialPosition", starting_position.lower())
        )
    else:
        spark.dataSource.register(KinesisDataSource)
        aws = settings.boto3_kwargs()
        options = {
            "streamName": names,
            "initialPosition": starting_position.lower(),
            "region": settings.aws_region,
            "endpoint": aws.get("endpoint_url", ""),
            "awsAccessKey": aws.get("aws_access_key_id", ""),
            "awsSecretKey": aws.get("aws_secret_access_key", ""),
            "resumeFrom": resume_hint(checkpoint) if checkpoint else "",
        }
        reader = spark.readStream.format(KinesisDataSource.name()).options(**options)
    return reader.load().select(*KINESIS_SCHEMA.fieldNames())


def checkpoint_location(settings: Settings) -> str:
    """The query's checkpoint under the root, one per generation of the streams.

    A checkpoint holds sequence numbers, which mean nothing in a stream deleted and created
    again (LocalStack's streams don't outlive it): natively the folder name carries the
    streams' creation times, so a new stack starts a new checkpoint instead of failing.
    """
    root = settings.checkpoint_root.rstrip("/")
    name = settings.stream_query_name
    if settings.stream_source == "databricks":
        return f"{root}/{name}"
    import boto3
    from botocore.exceptions import ClientError

    kinesis = boto3.client("kinesis", **settings.boto3_kwargs())
    created = []
    for stream in sorted(settings.streams.values()):
        try:
            summary = kinesis.describe_stream_summary(StreamName=stream)
        except kinesis.exceptions.ResourceNotFoundException:
            raise ConfigError(
                f"Kinesis stream {stream} not found: run `pinpipe stack up`"
            ) from None
        except ClientError as exc:
            raise TerminalError(f"describing Kinesis stream {stream}: {exc}") from exc
        created.append(f"{stream}@{summary['StreamDescriptionSummary']['StreamCreationTimestamp']}")
    generation = hashlib.sha1("|".join(created).encode()).hexdigest()[:10]
    return f"{root}/{name}-{generation}"


def follows_recreated_streams(checkpoint: str) -> bool:
    """True for a new local checkpoint of a query that has one for earlier streams."""
    path = local_checkpoint(checkpoint)
    if path is None or (path / "offsets").is_dir():
        return False
    query = path.name.rsplit("-", 1)[0]
    return path.parent.is_dir() and any(
        p != path and p.name.rsplit("-", 1)[0] == query and (p / "offsets").is_dir()
        for p in path.parent.iterdir()
    )


def checkpoint_file_manager(checkpoint: str) -> str | None:
    """The checkpoint file manager a query with this checkpoint uses: the FileSystem one on a
    local disk, Spark's default (None) anywhere else."""
    return LOCAL_CHECKPOINT_FILE_MANAGER if local_checkpoint(checkpoint) else None


def use_checkpoint_file_manager(spark: SparkSession, checkpoint: str) -> None:
    """Set the session's checkpoint file manager for a query at ``checkpoint`` (before it
    starts), unless the session names one already."""
    manager = checkpoint_file_manager(checkpoint)
    if manager and spark.conf.get(CHECKPOINT_FILE_MANAGER_CONF, None) is None:
        spark.conf.set(CHECKPOINT_FILE_MANAGER_CONF, manager)


def start(
    spark: SparkSession,
    settings: Settings,
    opts: StreamOptions,
    on_batch: Callable[[BatchOutcome], None] | None = None,
) -> tuple[StreamingQuery, DeltaStreamSink]:
    """Start the query (non-blocking); its checkpoint is ``opts.checkpoint`` or the default."""
    checkpoint = opts.checkpoint or checkpoint_location(settings)
    query_name = settings.stream_query_name
    position = opts.starting_position
    if position != "TRIM_HORIZON" and follows_recreated_streams(checkpoint):
        # Streams created again (a restarted LocalStack) hold only records posted since:
        # none of them was read yet, so the new generation starts at their beginning.
        log.info("streams were created again since the last checkpoint: reading from TRIM_HORIZON")
        position = "TRIM_HORIZON"
    use_checkpoint_file_manager(spark, checkpoint)
    sink = DeltaStreamSink(settings, table_writer(settings, spark), query_name, on_batch)
    query = (
        read_streams(spark, settings, position, checkpoint)
        .writeStream.queryName(query_name)
        .foreachBatch(sink)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=f"{round(opts.trigger_seconds * 1000)} milliseconds")
        .start()
    )
    log.info("query %s (id %s) started, checkpoint %s", query_name, query.id, checkpoint)
    return query, sink


def stop(query: StreamingQuery, grace: float = STOP_GRACE_S) -> None:
    """Stop between micro-batches when one ends within ``grace`` seconds, else interrupt it.

    Interrupting is safe (the batch is replayed and its finished tables skipped); waiting
    just spares the replay.
    """
    deadline = time.monotonic() + grace
    while query.isActive and query.status["isTriggerActive"] and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


@contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (main thread only).

    PySpark's own SIGINT handler calls into the JVM, which breaks the py4j connection when
    the signal lands during a JVM call such as ``awaitTermination``; a flag can't.
    """
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: requested.set())
    try:
        yield requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(
    spark: SparkSession,
    settings: Settings,
    opts: StreamOptions,
    on_batch: Callable[[BatchOutcome], None] | None = None,
) -> StreamResult:
    """Run the query for ``opts.duration`` seconds, or until SIGINT/SIGTERM; return the summary."""
    started = time.monotonic()
    opts = replace(opts, checkpoint=opts.checkpoint or checkpoint_location(settings))
    result = StreamResult(source=settings.stream_source, checkpoint=opts.checkpoint)

    def on_outcome(outcome: BatchOutcome) -> None:
        result.add(outcome)
        if on_batch:
            on_batch(outcome)

    deadline = None if opts.duration is None else started + opts.duration
    with stop_signals() as requested:
        query, sink = start(spark, settings, opts, on_outcome)
        try:
            while not requested.is_set() and query.isActive:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                query.awaitTermination(AWAIT_STEP_S)
        except StreamingQueryException as exc:
            raise TerminalError(f"streaming query failed: {exc}") from exc
        finally:
            if requested.is_set():
                log.info("stop requested: stopping the query between micro-batches")
            stop(query)
            result.seconds = time.monotonic() - started
    if not result.table_rows:
        result.table_rows = sink.table_rows()
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="streaming", description=__doc__)
    parser.add_argument("--trigger-seconds", type=float, help="micro-batch interval")
    parser.add_argument(
        "--starting-position",
        choices=["TRIM_HORIZON", "LATEST"],
        type=str.upper,
        help="where a new checkpoint starts reading (a restart resumes from its checkpoint)",
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--source", choices=["native", "databricks"], help="Kinesis reader")
    parser.add_argument("--checkpoint-root", help="folder (or URI) holding query checkpoints")
    parser.add_argument("--checkpoint", help="this query's checkpoint, exactly (overrides root)")
    parser.add_argument("--warehouse", help="where the Delta tables live (folder, s3://, volume)")
    parser.add_argument("--writer", choices=["delta-rs", "spark-delta"])
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON line per micro-batch and the summary as the last line",
    )
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings, with the flags given on the command line."""
    return settings_with(
        {
            "stream_source": args.source,
            "stream_starting_position": args.starting_position,
            "stream_trigger_seconds": args.trigger_seconds,
            "stream_checkpoint_root": args.checkpoint_root,
            "warehouse_uri": args.warehouse,
            "table_writer": args.writer,
        }
    )


def main(
    argv: list[str] | None = None, on_batch: Callable[[BatchOutcome], None] | None = None
) -> StreamResult:
    """spark-submit / Databricks entry point."""
    from spark.session import get_spark

    args = parse_args(argv)
    settings = settings_from_args(args)
    opts = StreamOptions(
        trigger_seconds=settings.stream_trigger_seconds,
        starting_position=settings.stream_starting_position,
        duration=args.duration,
        checkpoint=args.checkpoint or "",
    )
    if on_batch is None:
        on_batch = print_batch_json if args.json else print_batch
    result = run(get_spark(settings, "pinpipe-stream"), settings, opts, on_batch)
    if args.json:
        sys.stdout.write(json.dumps(result.summary()) + "\n")
    else:
        print_result(result)
    return result


def print_batch_json(outcome: BatchOutcome) -> None:
    """One JSON line per micro-batch, ``{"batch": ...}``; the run's summary is the last line."""
    sys.stdout.write(json.dumps({"batch": asdict(outcome)}) + "\n")
    sys.stdout.flush()


def print_batch(outcome: BatchOutcome) -> None:
    """One line per micro-batch: what came in, and how full each table is now."""
    from rich.console import Console

    rows = outcome.table_rows
    replay = (
        f" [yellow](replay: {', '.join(outcome.replayed)} already written)[/]"
        if outcome.replayed
        else ""
    )
    Console().print(
        f"batch {outcome.batch_id:>4}  records {sum(outcome.records.values()):>5}  ·  "
        + "  ".join(f"{t} [bold]{rows.get(t, 0):,}[/]" for t in TABLES)
        + f"  quarantine {rows.get('quarantine', 0):,}  [dim]{outcome.seconds:.1f}s[/]{replay}",
        highlight=False,
    )


def print_result(result: StreamResult) -> None:
    """The run's totals and the tables' sizes as a table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"streaming job ({result.source}, {result.batches} batches, {result.seconds:.0f}s)",
        title_justify="left",
    )
    for col in ("table", "records read", "rows merged", "rows in Delta"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for t in TABLES:
        table.add_row(
            t,
            f"{result.records.get(t, 0):,}",
            f"{result.merged.get(t, 0):,}",
            f"{result.table_rows.get(t, 0):,}",
        )
    table.add_row(
        "quarantine", "", f"{result.quarantined:,}", f"{result.table_rows.get('quarantine', 0):,}"
    )
    console = Console()
    console.print(table)
    console.print(f"[dim]checkpoint {result.checkpoint}[/]")


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    main()
