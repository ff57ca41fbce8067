"""The Kinesis streaming source against LocalStack: positions, restarts and resharding."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from services.core.settings import Settings
from spark.sources.kinesis_source import KINESIS_SCHEMA, KinesisDataSource
from tests.conftest import unique_name
from tests.spark.conftest import create_streams, delete_streams, kinesis, wait_until

pytestmark = pytest.mark.integration


class Collector:
    """A query reading one stream with the source, its rows gathered on the driver."""

    def __init__(self, spark: SparkSession, settings: Settings, stream: str, checkpoint: Path):
        self.spark, self.settings, self.stream, self.checkpoint = (
            spark,
            settings,
            stream,
            checkpoint,
        )
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.query: StreamingQuery | None = None
        self.last_batch = -1

    def start(self, position: str = "trim_horizon") -> None:
        aws = self.settings.boto3_kwargs()
        self.spark.dataSource.register(KinesisDataSource)
        self.query = (
            self.spark.readStream.format("pinpipe_kinesis")
            .option("streamName", self.stream)
            .option("initialPosition", position)
            .option("region", self.settings.aws_region)
            .option("endpoint", aws["endpoint_url"])
            .option("awsAccessKey", aws["aws_access_key_id"])
            .option("awsSecretKey", aws["aws_secret_access_key"])
            .load()
            .writeStream.foreachBatch(self._collect)
            .option("checkpointLocation", str(self.checkpoint))
            .trigger(processingTime="1 second")
            .start()
        )

    def _collect(self, df: DataFrame, batch_id: int) -> None:
        rows = [r.asDict() for r in df.collect()]
        with self.lock:
            self.rows += rows
            self.last_batch = batch_id

    def committed(self) -> bool:
        """The last batch collected is in the checkpoint's commit log (progress follows it)."""
        progress = self.query.lastProgress if self.query else None
        return progress is not None and progress["batchId"] >= self.last_batch

    def stop(self) -> None:
        assert self.query is not None
        self.query.stop()

    def values(self) -> list[int]:
        with self.lock:
            return [json.loads(bytes(r["data"]))["i"] for r in self.rows]

    def wait_for(self, n: int, timeout: float = 90) -> None:
        wait_until(lambda: len(self.values()) >= n, timeout, f"{n} records from {self.stream}")


MARKER = -1


def put_markers(settings: Settings, stream: str) -> int:
    """One marker record (``i`` = -1) into every open shard, after all that was put there.

    Records of a shard are read in order, so once a reader holds every marker it has read
    everything put before them, and a record read twice would be among what it holds.
    """
    client = kinesis(settings)
    shards = client.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]
    open_shards = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    for shard in open_shards:
        client.put_record(
            StreamName=stream,
            Data=json.dumps({"i": MARKER}).encode(),
            PartitionKey="marker",
            ExplicitHashKey=shard["HashKeyRange"]["StartingHashKey"],
        )
    return len(open_shards)


def read_to_markers(reader: Collector, settings: Settings) -> list[int]:
    """Put the markers, read until all of them are in, and return the values before them."""
    markers = put_markers(settings, reader.stream)
    wait_until(lambda: reader.values().count(MARKER) >= markers, 90, "the markers")
    wait_until(reader.committed, 60, "the markers' batch committed")
    values = reader.values()
    assert values.count(MARKER) == markers, values
    return [v for v in values if v != MARKER]


def resumed(
    spark: SparkSession, settings: Settings, stream: str, checkpoint: Path, values: range
) -> list[int]:
    """Put ``values``, then what a new query from the same checkpoint reads up to the markers."""
    put(settings, stream, values)
    again = Collector(spark, settings, stream, checkpoint)
    again.start()
    try:
        return read_to_markers(again, settings)
    finally:
        again.stop()


def put(settings: Settings, stream: str, values: range) -> None:
    kinesis(settings).put_records(
        StreamName=stream,
        Records=[{"Data": json.dumps({"i": i}).encode(), "PartitionKey": f"k{i}"} for i in values],
    )


@pytest.fixture
def stream(native_stack: Settings) -> Iterator[str]:
    name = unique_name("src-")
    create_streams(native_stack, [name])
    yield name
    delete_streams(native_stack, [name])


def test_columns_are_those_of_the_databricks_source_and_a_restart_resumes(
    spark: SparkSession, native_stack: Settings, stream: str, tmp_path: Path
) -> None:
    put(native_stack, stream, range(5))
    reader = Collector(spark, native_stack, stream, tmp_path / "ck")
    reader.start()
    assert sorted(read_to_markers(reader, native_stack)) == list(range(5))
    reader.stop()
    first = reader.rows[0]
    assert list(first) == KINESIS_SCHEMA.fieldNames()
    assert first["stream"] == stream and first["partitionKey"] == "k0"
    assert first["shardId"] == "shardId-000000000000" and int(first["sequenceNumber"]) > 0
    assert abs(time.time() - first["approximateArrivalTimestamp"].timestamp()) < 600

    assert sorted(resumed(spark, native_stack, stream, tmp_path / "ck", range(5, 12))) == list(
        range(5, 12)
    )


def test_latest_skips_what_the_stream_held_before(
    spark: SparkSession, native_stack: Settings, stream: str, tmp_path: Path
) -> None:
    put(native_stack, stream, range(4))
    reader = Collector(spark, native_stack, stream, tmp_path / "ck")
    reader.start("latest")
    wait_until(
        lambda: reader.query is not None and reader.query.lastProgress is not None, 60, "a trigger"
    )
    put(native_stack, stream, range(4, 9))
    values = read_to_markers(reader, native_stack)
    reader.stop()
    assert sorted(values) == list(range(4, 9))


def split_in_two(settings: Settings, stream: str, shard: str) -> None:
    client = kinesis(settings)
    desc = client.describe_stream(StreamName=stream)["StreamDescription"]
    hash_range = next(s for s in desc["Shards"] if s["ShardId"] == shard)["HashKeyRange"]
    middle = (int(hash_range["StartingHashKey"]) + int(hash_range["EndingHashKey"])) // 2
    client.split_shard(StreamName=stream, ShardToSplit=shard, NewStartingHashKey=str(middle))
    wait_until(
        lambda: (
            client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
                "StreamStatus"
            ]
            == "ACTIVE"
        ),
        30,
        "the split",
    )


def test_a_split_during_a_run_loses_and_repeats_nothing(
    spark: SparkSession, native_stack: Settings, stream: str, tmp_path: Path
) -> None:
    reader = Collector(spark, native_stack, stream, tmp_path / "ck")
    reader.start()
    put(native_stack, stream, range(20))
    reader.wait_for(20)
    split_in_two(native_stack, stream, "shardId-000000000000")
    put(native_stack, stream, range(20, 60))
    values = read_to_markers(reader, native_stack)
    reader.stop()
    assert sorted(values) == list(range(60))
    shards = {r["shardId"] for r in reader.rows}
    assert len(shards) == 3, shards  # the parent and both children were read

    # A restart after the split finds the closed parent and its children from the checkpoint.
    assert sorted(resumed(spark, native_stack, stream, tmp_path / "ck", range(60, 80))) == list(
        range(60, 80)
    )
