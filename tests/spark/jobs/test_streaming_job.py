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
from spark.jobs.streaming_job import StreamOptions, checkpoint_location, start, stop
from spark.sinks.tables import table_uri
from spark.sources.loading import CORRUPT, SOURCE, load_raw_tables, raw_spool
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
    spark: SparkSession, stream_settings: Settings, running_query: Any, tmp_path: Path
) -> None:
    settings = stream_settings
    events = sample(settings, 120, seed=5)  # draws with replacement: some posts twice
    assert len({e.ind for e in events}) < len(events)
    write_sink_layout(settings, events)
    post(settings, events[:60])
    post(settings, events[60:], base64_data=True)

    batch: dict[str, list[dict[str, Any]]] = {}
    raw_tables = load_raw_tables(spark, settings, raw_spool(settings, tmp_path))
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


def test_batch_and_streaming_keep_the_same_row_of_conflicting_duplicates_in_either_order(
    spark: SparkSession, stream_settings: Settings, running_query: Any, tmp_path: Path
) -> None:
    """Per ind, the first record by source position wins on both paths."""
    settings = stream_settings
    x, y, marker = (e.pin for e in sample(settings, 3, seed=31))
    assert len({x["index"], y["index"], marker["index"]}) == 3
    versions = [
        {**x, "title": "alpha"},  # x: alpha first
        {**x, "title": "omega"},
        {**y, "title": "omega"},  # y: omega first
        {**y, "title": "alpha"},
    ]
    # Batch: x's two versions are lines of one object, y's are two objects.
    s3 = boto3.client("s3", **settings.boto3_kwargs())
    s3.create_bucket(Bucket=settings.bucket)
    topic = settings.topics["pin"]
    for offset, rows in ((0, versions[:2]), (2, versions[2:3]), (3, versions[3:])):
        s3.put_object(
            Bucket=settings.bucket,
            Key=f"topics/{topic}/partition=0/{topic}+0+{offset:010d}.json",
            Body="\n".join(json.dumps(r, default=str) for r in rows).encode(),
        )
    raw = load_raw_tables(spark, settings, raw_spool(settings, tmp_path))["pin"]
    batch = CLEANERS["pin"](raw.filter(F.col(CORRUPT).isNull()).drop(CORRUPT, SOURCE))
    kept = {r["ind"]: r["title"] for r in batch.collect()}
    assert kept == {x["index"]: "alpha", y["index"]: "omega"}

    # Streaming: x's versions in one micro-batch; y's in two, its second after its first
    # is in the table; the marker, posted last, says when everything before it was read.
    client = KinesisApiClient(str(settings.resolved_api_invoke_url()))
    stream = settings.streams["pin"]

    def titles() -> dict[int, str]:
        return {r["ind"]: r["title"] for r in delta_rows(settings, settings.delta_tables["pin"])}

    try:
        client.put_records(stream, [(str(r["index"]), r) for r in versions[:3]])
        wait_until(lambda: y["index"] in titles(), 180, "the first versions")
        client.put_records(stream, [(str(r["index"]), r) for r in (versions[3], marker)])
        wait_until(lambda: marker["index"] in titles(), 180, "the marker")
    finally:
        client.close()
    streamed = titles()
    assert {ind: streamed[ind] for ind in kept} == kept


# ---- kill -9 ---------------------------------------------------------------------------
class Job:
    """The streaming job (``--json``) in its own process group, logging to a file."""

    def __init__(self, settings: Settings, log: Path, module: str = "spark.jobs.streaming_job"):
        env = {
            **os.environ,
            "PINPIPE_USER_ID": settings.user_id,
            "PINPIPE_WAREHOUSE_URI": settings.warehouse_uri,
            "PINPIPE_STREAM_CHECKPOINT_ROOT": settings.checkpoint_root,
            "PINPIPE_STREAM_TRIGGER_SECONDS": "1",
            "PINPIPE_TABLE_WRITER": settings.table_writer,
        }
        self.log = log
        self.start = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, "--json"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def lines(self) -> list[str]:
        """What this run printed (the log holds every run's output)."""
        return self.log.read_bytes()[self.start :].decode(errors="replace").splitlines()

    def batches(self) -> list[dict[str, Any]]:
        """The micro-batches this run reported, in order."""
        return [json.loads(x)["batch"] for x in self.lines() if x.startswith('{"batch"')]

    def held(self) -> int | None:
        """The id of the batch the held job stopped in, once it printed it."""
        return next((int(x.split()[1]) for x in self.lines() if x.startswith("HELD ")), None)

    def kill_9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def interrupt(self) -> dict[str, Any]:
        """Ctrl-C: the job stops between batches and prints its summary, the last line."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=90)
        finally:
            if self.proc.poll() is None:
                self.kill_9()
        return json.loads(next(x for x in reversed(self.lines()) if x.startswith("{")))

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the job exited:\n{self.log.read_text()[-3000:]}")
        return True


def version(settings: Settings, table: str) -> int:
    uri = table_uri(settings, settings.delta_tables[table])
    return DeltaTable(uri).version() if DeltaTable.is_deltatable(uri) else -1


def transactions(settings: Settings, name: str) -> list[tuple[str, int]]:
    """Every app transaction the table's commits carry, ``(app id, batch id)``, in order."""
    log = Path(table_uri(settings, name)) / "_delta_log"
    if not log.is_dir():
        return []
    return [
        (action["txn"]["appId"], int(action["txn"]["version"]))
        for commit in sorted(log.glob("*.json"))
        for line in commit.read_text().splitlines()
        if "txn" in (action := json.loads(line))
    ]


@pytest.mark.parametrize("writer", ["delta-rs", "spark-delta"])
def test_kill_9_mid_batch_then_restart_replays_the_batch_and_writes_nothing_twice(
    spark: SparkSession, stream_settings: Settings, tmp_path: Path, writer: str
) -> None:
    settings = stream_settings.model_copy(update={"table_writer": writer})
    events = sample(settings, 150, seed=9)
    waves = [events[:50], events[50:100], events[100:]]
    marker = next(e for e in sample(settings, 40, seed=10) if e.ind not in inds(events)["pin"])
    log = tmp_path / "job.log"

    first = Job(settings, log, module="tests.spark.jobs.held_stream_job")
    try:
        post(settings, waves[0])
        wait_until(lambda: first.alive() and version(settings, "pin") >= 0, 240, "a first batch")
        post(settings, waves[1])
        wait_until(lambda: first.alive() and first.held() is not None, 120, "a held batch")
    finally:
        first.kill_9()
    held = first.held()
    assert held is not None
    checkpoint = Path(checkpoint_location(settings))
    # The batch had begun (its offsets are logged) and had not ended (no commit entry).
    assert (checkpoint / "offsets" / str(held)).exists()
    assert not (checkpoint / "commits" / str(held)).exists()
    pin_before = transactions(settings, settings.delta_tables["pin"])
    assert pin_before[-1][1] == held  # pin had committed the held batch

    post(settings, waves[2] + [marker])
    second = Job(settings, log)
    try:
        # Read until the marker, posted last, is in every table: all before it was read.
        wait_until(
            lambda: second.alive() and tables_hold(settings, inds([marker]))(), 240, "the marker"
        )
    finally:
        summary = second.interrupt()

    batches = second.batches()
    assert batches and batches[0]["batch_id"] == held, batches[:1]
    assert "pin" in batches[0]["replayed"] and "pin" not in batches[0]["merged"]
    assert summary["replayed_batches"] == 1 and summary["batches"] == len(batches)
    for table in [*TABLES, "quarantine"]:
        name = settings.quarantine_table if table == "quarantine" else settings.delta_tables[table]
        txns = transactions(settings, name)
        assert len({app for app, _ in txns}) <= 1, txns  # one query, one app id
        versions = [v for _, v in txns]
        # No batch was committed twice to a table: the replay added nothing it had.
        assert versions == sorted(set(versions)), (table, versions)
    pin_after = transactions(settings, settings.delta_tables["pin"])
    assert pin_after[: len(pin_before)] == pin_before
    assert [v for _, v in pin_after].count(held) == 1

    posted = rows_by_table([*events, marker])
    for table in TABLES:
        assert delta_rows(settings, settings.delta_tables[table]) == cleaned(
            spark, table, posted[table]
        ), table
    assert delta_rows(settings, settings.quarantine_table) == []
