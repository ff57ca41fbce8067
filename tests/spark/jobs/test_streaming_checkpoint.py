"""A query's checkpoint on a local disk: written through the FileSystem manager, and a
restart from it goes on where the last committed batch ended."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark.jobs.streaming_job import (
    CHECKPOINT_FILE_MANAGER_CONF,
    LOCAL_CHECKPOINT_FILE_MANAGER,
    checkpoint_file_manager,
    local_checkpoint,
    stop,
    use_checkpoint_file_manager,
)

pytestmark = pytest.mark.unit


def test_only_a_local_checkpoint_gets_the_file_system_manager() -> None:
    assert (
        checkpoint_file_manager("/var/lib/pinpipe/checkpoints/q") == LOCAL_CHECKPOINT_FILE_MANAGER
    )
    assert checkpoint_file_manager("file:///tmp/q") == LOCAL_CHECKPOINT_FILE_MANAGER
    assert checkpoint_file_manager("dbfs:/pinpipe/checkpoints/q") is None
    assert checkpoint_file_manager("s3://bucket/checkpoints/q") is None
    # The same rule finds a checkpoint's folder for the resume hint.
    assert local_checkpoint("file:///tmp/q") == Path("/tmp/q")
    assert local_checkpoint("dbfs:/pinpipe/checkpoints/q") is None


class Batches:
    """What each micro-batch of a query held: its id and the rate source's values."""

    def __init__(self) -> None:
        self.values: dict[int, list[int]] = {}
        self.lock = threading.Lock()

    def __call__(self, df: DataFrame, batch_id: int) -> None:
        values = [int(v) for v in df.toArrow().column("value").to_pylist()]
        with self.lock:
            self.values[batch_id] = values

    def wait_for(self, filled: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if sum(1 for v in self.values.values() if v) >= filled:
                    return
            time.sleep(0.1)
        raise AssertionError(f"fewer than {filled} micro-batches with rows in {timeout:g}s")


def run(spark: SparkSession, checkpoint: Path, batches: Batches, filled: int) -> None:
    query = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", 20)
        .load()
        .writeStream.foreachBatch(batches)
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="300 milliseconds")
        .start()
    )
    try:
        batches.wait_for(filled)
    finally:
        stop(query, grace=10)


def test_a_restart_from_a_local_checkpoint_goes_on_after_its_last_batch(
    spark: SparkSession, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint"
    use_checkpoint_file_manager(spark, str(checkpoint))
    assert spark.conf.get(CHECKPOINT_FILE_MANAGER_CONF) == LOCAL_CHECKPOINT_FILE_MANAGER
    # The manager Spark's logs pick for this path, from the session's settings.
    jvm = spark._jvm
    manager = jvm.org.apache.spark.sql.execution.streaming.CheckpointFileManager.create(
        jvm.org.apache.hadoop.fs.Path(str(checkpoint)),
        spark._jsparkSession.sessionState().newHadoopConf(),
    )
    assert manager.getClass().getName() == LOCAL_CHECKPOINT_FILE_MANAGER

    first, second = Batches(), Batches()
    run(spark, checkpoint, first, filled=3)
    run(spark, checkpoint, second, filled=2)

    last = max(first.values)
    assert (checkpoint / "commits" / str(last)).exists()
    # Batch ids go on from the last committed one, and so do the source's values: nothing
    # read twice, nothing skipped (a batch's partitions interleave the values).
    assert min(second.values) == last + 1
    before = [v for values in first.values.values() for v in values]
    after = [v for values in second.values.values() for v in values]
    assert sorted(before + after) == list(range(len(before) + len(after)))
    assert max(before) < min(after)
