"""Counts at each hop of the batch path: topics (by consuming) and the bucket (by reading).

Tansu's reported watermarks can be wrong after batched produces (STACK-NOTES), so topic
counts come from reading every message with a throw-away consumer group until idle.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
from confluent_kafka import Consumer, KafkaError

from services.settings import TABLES, Settings


@dataclass(frozen=True)
class BucketCounts:
    objects: dict[str, int]
    records: dict[str, int]


def topic_message_counts(settings: Settings, idle_seconds: float = 3.0) -> dict[str, int]:
    """Messages in each of the pipeline's topics, read from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"pinpipe-count-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    counts: Counter[str] = Counter({settings.topics[t]: 0 for t in TABLES})
    try:
        consumer.subscribe(list(counts))
        last = time.monotonic()
        while time.monotonic() - last < idle_seconds or not consumer.assignment():
            batch = consumer.consume(num_messages=1000, timeout=0.5)
            if batch:
                last = time.monotonic()
            for msg in batch:
                error = msg.error()
                if error is None:
                    counts[str(msg.topic())] += 1
                elif error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"reading {msg.topic()}: {error}")
            if time.monotonic() - last > 30:
                break
    finally:
        consumer.close()
    return dict(counts)


def bucket_counts(settings: Settings, threads: int = 16) -> BucketCounts:
    """Objects and records (JSON lines) per topic under ``topics/`` in the bucket."""
    s3 = boto3.client("s3", **settings.boto3_kwargs())
    keys: dict[str, list[str]] = {settings.topics[t]: [] for t in TABLES}
    for topic in keys:
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.bucket, Prefix=f"topics/{topic}/"
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
