"""The streaming job end to end: API Gateway → Kinesis → Spark → Delta.

Posts go through the API Gateway's ``/streams`` resources, as the emulator's do; the
expected tables are the batch path's cleaning of exactly the rows that were posted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from emulator.kinesis_client import KinesisApiClient
from emulator.sampler import Event, RowSampler
from services.core.settings import PROJECT_ROOT, TABLES, Settings
from services.source_db.database import make_engine
from spark.jobs.streaming_job import StreamOptions, start, stop
from spark.sinks.tables import table_uri
from spark.sources.loading import CORRUPT, SOURCE, load_raw_tables
from spark.transformations.cleaning import CLEANERS
from spark.transformations.payloads import REJECT_MALFORMED, REJECT_NOT_BASE64
from spark.transformations.schemas import RAW_SCHEMAS
from tests.spark.conftest import (
    api_put,
    arrow_rows,
    delta_rows,
    tables_hold,
    wait_until,
)

pytestmark = pytest.mark.integration

KEY = {"pin": "index", "geo": "ind", "user": "ind"}


def sample(settings: Settings, n: int, seed: int) -> list[Event]:
    engine = make_engine(settings.db)
    try:
        return RowSampler(engine, seed).sample(n)
    finally:
        engine.dispose()


def rows_by_table(events: list[Event]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    for event in events:
        for table, row in event.by_table().items():
            if row is not None:
                out[table].append(row)
    return out


def post(settings: Settings, events: list[Event], base64_data: bool = False) -> None:
    """The events' rows through the API, one PutRecords request per stream."""
    client = KinesisApiClient(str(settings.resolved_api_invoke_url()), base64_data=base64_data)
    try:
        for table, rows in rows_by_table(events).items():
            records = [(str(row[KEY[table]]), row) for row in rows]
            result = client.put_records(settings.streams[table], records)
            assert result.acknowledged == len(records), result.errors
    finally:
        client.close()


def inds(events: list[Event]) -> dict[str, set[int]]:
    return {t: {int(r[KEY[t]]) for r in rows} for t, rows in rows_by_table(events).items()}


def cleaned(spark: SparkSession, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch path's cleaning of raw rows, as the sinks deliver them (JSON lines)."""
    lines = spark.createDataFrame([(json.dumps(r, default=str),) for r in rows], "value string")
    raw = lines.select(F.from_json("value", RAW_SCHEMAS[table]).alias("r")).select("r.*")
    return arrow_rows(CLEANERS[table](raw).toArrow())


@pytest.fixture
def running_query(spark: SparkSession, stream_settings: Settings) -> Iterator[Any]:
    query, _ = start(spark, stream_settings, StreamOptions(trigger_seconds=1.0))
    yield query
    stop(query, grace=10)


def test_malformed_payloads_are_quarantined_and_the_stream_goes_on(
    spark: SparkSession, stream_settings: Settings, running_query: Any
) -> None:
    settings = stream_settings
    before, after = sample(settings, 6, seed=21)[:3], sample(settings, 6, seed=22)[3:]
    post(settings, before)
    bad: list[tuple[str, Any]] = [
        ("b1", "not base64!"),
        ("b2", [1, 2]),
        ("b3", {"title": "a pin without its index"}),
        ("b4", {"index": "twelve"}),
    ]
    api_put(settings, settings.streams["pin"], bad)
    post(settings, after, base64_data=True)

    wait_until(tables_hold(settings, inds(before + after)), 180, "the good rows")
    wait_until(
        lambda: len(delta_rows(settings, settings.quarantine_table)) >= 4, 60, "the quarantine"
    )
    assert running_query.isActive
    quarantine = delta_rows(settings, settings.quarantine_table)
    assert sorted((r["partitionKey"], r["reason"]) for r in quarantine) == [
        ("b1", REJECT_NOT_BASE64),
        ("b2", REJECT_MALFORMED),
        ("b3", "missing ind"),
        ("b4", "ind is not an integer"),
    ]
    assert {r["table"] for r in quarantine} == {"pin"}
    assert all(r["data"] and r["sequenceNumber"] for r in quarantine)


def write_sink_layout(settings: Settings, events: list[Event], per_object: int = 25) -> None:
    """The events' rows in S3 exactly as the Confluent S3 sink lays them out."""
    s3 = boto3.client("s3", **settings.boto3_kwargs())
    s3.create_bucket(Bucket=settings.bucket)
    for table, rows in rows_by_table(events).items():
        topic = settings.topics[table]
        for offset in range(0, len(rows), per_object):
            lines = [json.dumps(r, default=str) for r in rows[offset : offset + per_object]]
            key = f"topics/{topic}/partition=0/{topic}+0+{offset:010d}.json"
            s3.put_object(Bucket=settings.bucket, Key=key, Body="\n".join(lines).encode())


def test_batch_and_streaming_paths_clean_the_same_input_to_the_same_rows(
    spark: SparkSession, stream_settings: Settings, running_query: Any
) -> None:
    settings = stream_settings
    events = sample(settings, 120, seed=5)  # draws with replacement: some posts twice
    assert len({e.ind for e in events}) < len(events)
    write_sink_layout(settings, events)
    post(settings, events[:60])
    post(settings, events[60:], base64_data=True)

    batch: dict[str, list[dict[str, Any]]] = {}
    raw_tables = load_raw_tables(spark, settings)
    for table in TABLES:
        raw = raw_tables[table]
        wellformed = raw.filter(F.col(CORRUPT).isNull()).drop(CORRUPT, SOURCE)
        batch[table] = arrow_rows(CLEANERS[table](wellformed).toArrow())

    wait_until(tables_hold(settings, inds(events)), 180, "the streamed rows")
    for table in TABLES:
        streamed = delta_rows(settings, settings.delta_tables[table])
        assert streamed == batch[table], table
        assert len(streamed) == len({e.ind for e in events})
    assert delta_rows(settings, settings.quarantine_table) == []


# ---- kill -9 ---------------------------------------------------------------------------
class Job:
    """``python -m spark.jobs.streaming_job`` in its own process group, logging to a file."""

    def __init__(self, settings: Settings, log: Path) -> None:
        env = {
            **os.environ,
            "PINPIPE_USER_ID": settings.user_id,
            "PINPIPE_WAREHOUSE_URI": settings.warehouse_uri,
            "PINPIPE_STREAM_CHECKPOINT_ROOT": settings.checkpoint_root,
            "PINPIPE_STREAM_TRIGGER_SECONDS": "1",
            "PINPIPE_TABLE_WRITER": settings.table_writer,
        }
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "spark.jobs.streaming_job", "--json"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def interrupt(self) -> str:
        """Ctrl-C: the job stops between batches and prints its summary."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=90)
        finally:
            if self.proc.poll() is None:
                self.kill_9()
        return self.log.read_text()

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the job exited:\n{self.log.read_text()[-3000:]}")
        return True


def version(settings: Settings, table: str) -> int:
    uri = table_uri(settings, settings.delta_tables[table])
    return DeltaTable(uri).version() if DeltaTable.is_deltatable(uri) else -1


@pytest.mark.parametrize("writer", ["delta-rs", "spark-delta"])
def test_kill_9_mid_run_then_restart_holds_exactly_the_posted_rows(
    spark: SparkSession, stream_settings: Settings, tmp_path: Path, writer: str
) -> None:
    settings = stream_settings.model_copy(update={"table_writer": writer})
    events = sample(settings, 150, seed=9)
    waves = [events[:50], events[50:100], events[100:]]
    log = tmp_path / "job.log"

    first = Job(settings, log)
    try:
        post(settings, waves[0])
        wait_until(lambda: first.alive() and version(settings, "pin") >= 0, 240, "a first batch")
        written = version(settings, "pin")
        post(settings, waves[1])
        # Killed right after the next batch's first commit: geo and user of that batch are
        # most likely not written yet, so the restart must finish the batch, not redo it.
        wait_until(lambda: first.alive() and version(settings, "pin") > written, 120, "a batch")
    finally:
        first.kill_9()
    post(settings, waves[2])

    second = Job(settings, log)
    try:
        wait_until(
            lambda: second.alive() and tables_hold(settings, inds(events))(), 240, "all rows"
        )
        time.sleep(3)  # a few more triggers: nothing may arrive twice
    finally:
        output = second.interrupt()
    summary = json.loads(next(x for x in reversed(output.splitlines()) if x.startswith("{")))
    assert summary["batches"] >= 1

    posted = rows_by_table(events)
    for table in TABLES:
        assert delta_rows(settings, settings.delta_tables[table]) == cleaned(
            spark, table, posted[table]
        ), table
    assert delta_rows(settings, settings.quarantine_table) == []
