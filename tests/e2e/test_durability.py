"""Nothing lost when things stop: a broker killed under load, a whole stack restarted.

These tests kill and restart services, so they run a native stack of their own (own ports,
state directory and user id; the session's MySQL server and database), never the session's.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pyspark.sql import SparkSession

from emulator.batch_mode import EmulationOptions, Summary, run_batch
from emulator.sampler import RowSampler
from emulator.streaming_mode import StreamEmulationOptions, run_stream
from pinpipe.hops import topic_message_counts, wait_for_bucket
from services.core.settings import TABLES, Settings
from services.core.sink_keys import SinkKeys
from services.core.waiting import free_port
from services.s3_sink.converter import JsonLineConverter
from services.source_db.database import make_engine
from services.stack.kafka_broker import BrokerService
from services.stack.native_stack import NativeStack
from spark.jobs.batch_job import run as run_batch_job
from spark.jobs.streaming_job import StreamOptions, start, stop
from spark.sinks.delta_stream import delta_inds
from tests.conftest import unique_name

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_stack(
    native_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A second native stack: its own broker, LocalStack, REST proxy, sink and API."""
    settings = Settings(
        user_id=unique_name("dur"),
        state_dir=tmp_path_factory.mktemp("durable-state"),
        db_creds_file=native_stack.db_creds_file,
        broker_port=free_port(),
        broker_controller_port=free_port(),
        localstack_port=free_port(),
        rest_proxy_port=free_port(),
        stream_trigger_seconds=1.0,
    )
    stack = NativeStack(settings)
    stack.up()
    yield settings
    stack.down()


def objects(settings: Settings, topic: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", **settings.boto3_kwargs())
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.bucket, Prefix=f"topics/{topic}/"
        )
        for o in page.get("Contents", [])
    ]
    return {k: s3.get_object(Bucket=settings.bucket, Key=k)["Body"].read() for k in keys}


def topic_values(settings: Settings, topic: str, count: int) -> dict[int, bytes]:
    """Offset → value of a one-partition topic, read from its beginning."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": unique_name("r")}
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values: dict[int, bytes] = {}
    deadline = time.monotonic() + 60
    try:
        while len(values) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values[int(msg.offset())] = bytes(msg.value())  # type: ignore[arg-type]
    finally:
        consumer.close()
    return values


def test_a_broker_killed_under_load_loses_nothing_acknowledged(own_stack: Settings) -> None:
    """kill -9 the broker while records go through API Gateway → REST proxy, restart it."""
    settings = own_stack
    broker = BrokerService(settings)
    before = topic_message_counts(settings)
    opts = EmulationOptions(
        count=600, rate=40, batch_size=10, concurrency=2, seed=11, keep_offsets=True
    )
    done: list[Summary] = []
    poster = threading.Thread(target=lambda: done.append(run_batch(settings, opts)))
    poster.start()
    time.sleep(4)
    pid = broker.proc.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(3)
    assert broker.up() == "started"
    poster.join(timeout=300)
    (summary,) = done

    # The emulator's counts say what was acknowledged and what failed, with reasons.
    assert summary.sent == 3 * summary.events
    assert summary.acknowledged + summary.failed == summary.sent
    assert sum(summary.errors.values()) == summary.failed
    assert summary.acknowledged >= 0.9 * summary.sent, summary.errors
    converter = JsonLineConverter()
    keys = SinkKeys()
    for topic in settings.topics.values():
        acked = summary.offsets.get(topic, [])
        assert len(acked) == len(set(acked)) == summary.acknowledged_by_topic[topic]
        # Only a request retried after a lost answer can write a record twice.
        in_topic = topic_message_counts(settings)[topic] - before[topic]
        assert summary.acknowledged_by_topic[topic] <= in_topic
        assert in_topic - summary.acknowledged_by_topic[topic] <= 10 * summary.retries
        stored = wait_for_bucket(settings, {topic: before[topic] + in_topic}, timeout=180)
        assert stored.records[topic] == before[topic] + in_topic
        values = topic_values(settings, topic, before[topic] + in_topic)
        by_offset: dict[int, list[bytes]] = {}
        for key, body in objects(settings, topic).items():
            parsed = keys.parse(key)
            assert parsed is not None, key
            by_offset.setdefault(parsed[2], []).append(body)
        for _, offset in acked:
            assert offset in values, f"{topic}@{offset} acknowledged but not in the topic"
            json.loads(values[offset])
            # In S3 once, with the record's own bytes (flush.size=1: one object per offset).
            assert by_offset.get(offset) == [converter.convert(values[offset]) + b"\n"], offset


def posted_inds(settings: Settings, count: int, seed: int) -> dict[str, set[int]]:
    """The inds the emulator posted with this seed, per table (a row the source lacks isn't)."""
    engine = make_engine(settings.db)
    try:
        events = RowSampler(engine, seed).sample(count)
    finally:
        engine.dispose()
    return {t: {e.ind for e in events if e.by_table()[t] is not None} for t in TABLES}


def stream_until(spark: SparkSession, settings: Settings, inds: dict[str, set[int]]) -> None:
    """Run the streaming job until every table holds ``inds``."""
    query, _ = start(spark, settings, StreamOptions(trigger_seconds=1.0))
    try:
        deadline = time.monotonic() + 240
        while not all(inds[t] <= set(delta_inds(settings, t)) for t in TABLES):
            assert query.isActive, query.exception()
            assert time.monotonic() < deadline, "the streamed rows did not arrive"
            time.sleep(1)
    finally:
        stop(query, grace=20)


def answers(settings: Settings, spark: SparkSession, warehouse: Path) -> dict[str, Any]:
    run_settings = settings.model_copy(update={"warehouse_uri": str(warehouse)})
    result = run_batch_job(spark, run_settings, warehouse / "report.html")
    tables = {name: df.to_dict("records") for name, df in result.answers.items()}
    return {"read": result.rows_read, "clean": result.rows_clean, **tables}


def test_a_restarted_stack_rebuilds_the_bucket_and_the_stream_resumes(
    own_stack: Settings, spark: SparkSession, tmp_path: Path
) -> None:
    settings = own_stack
    summary = run_batch(settings, EmulationOptions(count=150, seed=21, batch_size=50))
    assert summary.failed == 0, summary.errors
    wait_for_bucket(settings, topic_message_counts(settings), timeout=180)
    bucket = {t: objects(settings, t) for t in settings.topics.values()}
    before = answers(settings, spark, tmp_path / "before")

    first = run_stream(settings, StreamEmulationOptions(count=60, seed=31, batch_size=30))
    assert first.failed == 0, first.errors
    wave_one = posted_inds(settings, 60, 31)
    stream_until(spark, settings, wave_one)

    stack = NativeStack(settings)
    stack.down()
    outcomes = {r.service: r.outcome for r in stack.up()}
    assert "again from the log" in outcomes["s3-sink"], outcomes
    # Topics, records and committed offsets were kept; the new, empty bucket is written
    # again with the same keys and the same bytes.
    counts = topic_message_counts(settings)
    assert counts == {t: len(objs) for t, objs in bucket.items()}
    wait_for_bucket(settings, counts, timeout=180)
    assert {t: objects(settings, t) for t in settings.topics.values()} == bucket
    assert answers(settings, spark, tmp_path / "after") == before

    # LocalStack's streams are new and empty: the job starts them from their beginning,
    # without an error, and merges into the tables it filled before.
    second = run_stream(settings, StreamEmulationOptions(count=40, seed=32, batch_size=20))
    assert second.failed == 0, second.errors
    wave_two = posted_inds(settings, 40, 32)
    stream_until(spark, settings, wave_two)
    for table in TABLES:
        held = delta_inds(settings, table)
        assert len(held) == len(set(held)), f"{table}: a row twice"
        assert set(held) == wave_one[table] | wave_two[table], table
