"""The streaming job's two Delta writers side by side: one micro-batch merged into the tables.

The same hand-made micro-batches (the Kinesis sources' columns, 3 x ``POSTS`` records, a
third of them posts already merged) go through the ``foreachBatch`` sink once with delta-rs
and once with Spark's own Delta, into tables of their own; no service is needed.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pinpipe.benchmarks.measurement import Measurement
from services.core.settings import Settings

POSTS = 300
BATCHES = 8
WARM_UP_BATCHES = 2


def rows(ind: int) -> dict[str, dict[str, Any]]:
    """One post's three rows, as the emulator sends them."""
    return {
        "pin": {
            "index": ind,
            "unique_id": f"uid-{ind}",
            "title": "a title",
            "description": "a post",
            "poster_name": "someone",
            "follower_count": "1.5k",
            "tag_list": "a,b",
            "is_image_or_video": "image",
            "image_src": "https://example.com/x.jpg",
            "downloaded": 1,
            "save_location": "Local save in /data/art",
            "category": "art",
        },
        "geo": {
            "ind": ind,
            "timestamp": "2020-08-28 03:52:47",
            "latitude": -12.5,
            "longitude": 44.25,
            "country": "Bouvet Island (Bouvetoya)",
        },
        "user": {
            "ind": ind,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "age": 36,
            "date_joined": "2016-03-01 10:00:00",
        },
    }


def micro_batch(settings: Settings, batch: int) -> list[tuple[Any, ...]]:
    """Records of one micro-batch: new posts, and a third of the previous batch's again."""
    arrived = datetime.now(UTC)
    first = batch * POSTS - POSTS // 3 if batch else 0
    records: list[tuple[Any, ...]] = []
    for n, ind in enumerate(range(first, first + POSTS)):
        for table, row in rows(ind).items():
            seq = str(10**30 + batch * 10 * POSTS + n * 3 + len(records) % 3)
            data = bytearray(json.dumps(row).encode())
            stream = settings.streams[table]
            records.append((str(ind), data, stream, "shardId-000000000000", seq, arrived))
    return records


def bench_writers() -> list[Measurement]:
    """Seconds per micro-batch with each writer (median of the timed batches)."""
    from spark.session import get_spark
    from spark.sinks.delta_stream import DeltaStreamSink, table_writer
    from spark.sources.kinesis_source import KINESIS_SCHEMA

    results = []
    with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
        spark = get_spark(Settings(), "pinpipe-bench-writers")
        try:
            for writer in ("delta-rs", "spark-delta"):
                settings = Settings(
                    user_id="benchwriters",
                    warehouse_uri=str(Path(tmp) / writer),
                    table_writer=writer,  # type: ignore[arg-type]
                )
                sink = DeltaStreamSink(settings, table_writer(settings, spark), "bench")
                seconds = []
                for batch in range(WARM_UP_BATCHES + BATCHES):
                    frame = spark.createDataFrame(micro_batch(settings, batch), KINESIS_SCHEMA)
                    started = time.perf_counter()
                    sink(frame, batch)
                    seconds.append(time.perf_counter() - started)
                timed = seconds[WARM_UP_BATCHES:]
                results.append(
                    Measurement(
                        f"stream micro-batch, {writer} writer",
                        statistics.median(timed),
                        "s",
                        f"{3 * POSTS} records merged into 3 tables + quarantine; median of "
                        f"{len(timed)} batches (min {min(timed):.1f}, max {max(timed):.1f})",
                    )
                )
        finally:
            spark.stop()
    return results
