"""Counts at each hop of the batch path: topics (by their watermarks) and the bucket (by reading).

The topics are never compacted and keep everything (unlimited retention), and no producer
writes transactions, so high minus low watermark is the number of records in a partition.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
from confluent_kafka import Consumer, KafkaException, TopicPartition

from services.core.errors import TransientError
from services.core.settings import TABLES, Settings
from services.core.sink_keys import SinkKeys


@dataclass(frozen=True)
class BucketCounts:
    objects: dict[str, int]
    records: dict[str, int]


def topic_message_counts(settings: Settings) -> dict[str, int]:
    """Records in each of the pipeline's topics: high minus low watermark, every partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"pinpipe-count-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    counts: dict[str, int] = {}
    try:
        metadata = consumer.list_topics(timeout=10).topics
        for table in TABLES:
            topic = settings.topics[table]
            partitions = metadata[topic].partitions if topic in metadata else {}
            counts[topic] = sum(
                high - low
                for low, high in (
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    for p in partitions
                )
            )
    except KafkaException as exc:
        raise TransientError(f"counting the records of {settings.topics}: {exc}") from exc
    finally:
        consumer.close()
    return counts


def bucket_counts(settings: Settings, threads: int = 16) -> BucketCounts:
    """Objects and records (JSON lines) per topic under the sink's topics.dir in the bucket."""
    s3 = boto3.client("s3", **settings.boto3_kwargs())
    layout = SinkKeys.of(settings)
    keys: dict[str, list[str]] = {settings.topics[t]: [] for t in TABLES}
    for topic in keys:
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.bucket, Prefix=layout.topic_prefix(topic)
        ):
            keys[topic] += [o["Key"] for o in page.get("Contents", [])]

    def lines(key: str) -> int:
        body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
        return sum(1 for line in body.splitlines() if line.strip())

    records: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for topic, topic_keys in keys.items():
            records[topic] = sum(pool.map(lines, topic_keys))
    return BucketCounts({t: len(k) for t, k in keys.items()}, records)


def wait_for_bucket(
    settings: Settings, expected: dict[str, int], timeout: float = 120.0
) -> BucketCounts:
    """Poll until the bucket holds at least the expected records per topic (or time out)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = bucket_counts(settings)
        done = all(counts.records.get(t, 0) >= n for t, n in expected.items())
        if done or time.monotonic() > deadline:
            return counts
        time.sleep(1.0)
