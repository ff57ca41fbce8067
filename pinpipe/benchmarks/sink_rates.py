"""Sink throughput next to the raw S3 PUT rate it is bounded by, for ``make bench``.

Both run against the running stack (its broker, LocalStack and bucket) with names of their
own, and clean up what they created.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from services.core.settings import Settings
from services.s3_sink.connector_config import load_connector_config
from services.s3_sink.sink import DEFAULT_UPLOAD_THREADS, S3Sink, s3_client
from services.s3_sink.status import SinkStatus

_DELETE_BATCH = 1000


@dataclass(frozen=True)
class SinkBenchResult:
    """How fast the sink moved ``records`` records from Kafka into S3 objects."""

    records: int
    flush_size: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def objects_per_s(self) -> float:
        return self.records / self.flush_size / self.seconds


def pin_row(i: int) -> bytes:
    """A pin-table-like JSON value of about 500 bytes."""
    return json.dumps(
        {
            "index": i,
            "unique_id": f"{i:08x}-3442-4773-b19e-d3ec6f54dddf",
            "title": f"Bench title {i}",
            "description": "A description long enough to look like the real ones. " * 4,
            "poster_name": "User Info Error",
            "follower_count": "1.5k",
            "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e",
            "is_image_or_video": "image",
            "image_src": "https://i.pinimg.com/originals/bench.png",
            "downloaded": 1,
            "save_location": "Local save in /data/art",
            "category": "art",
        }
    ).encode()


def raw_put_rate(
    settings: Settings,
    *,
    objects: int = 500,
    object_bytes: int = 500,
    threads: int = DEFAULT_UPLOAD_THREADS,
) -> float:
    """Objects per second that ``threads`` parallel PUTs of small objects reach."""
    prefix = f"bench/{secrets.token_hex(4)}/"
    config = load_connector_config(settings)
    s3 = s3_client(config, settings, threads)
    body = b"x" * object_bytes
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(
            lambda i: s3.put_object(Bucket=settings.bucket, Key=f"{prefix}{i}", Body=body),
            range(objects),
        ):
            pass
    seconds = time.perf_counter() - started
    _delete_prefix(s3, settings.bucket, prefix)
    return objects / seconds


def sink_throughput(
    settings: Settings,
    *,
    records: int = 20_000,
    flush_size: int = 1000,
    upload_threads: int = DEFAULT_UPLOAD_THREADS,
    timeout_s: float = 600.0,
) -> SinkBenchResult:
    """Records per second through the sink, from its first record to its last stored object.

    The records are produced before the sink starts, so the time covers consuming,
    converting, storing and committing, not the producer or the group join.
    """
    records = max(flush_size, records // flush_size * flush_size)
    prefix = f"bench{secrets.token_hex(4)}"
    topic = f"{prefix}.pin"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "linger.ms": 20})
    for i in range(records):
        producer.produce(topic, pin_row(i))
        producer.poll(0)
    producer.flush(60)

    config = load_connector_config(
        settings,
        overrides={
            "name": f"{prefix}-connector",
            "topics.regex": f"{prefix}\\..*",
            "flush.size": str(flush_size),
        },
    )
    status = SinkStatus(settings.state_dir / "bench" / f"{prefix}.json", config.name)
    sink = S3Sink(config, settings, upload_threads=upload_threads, status=status)
    runner = threading.Thread(target=sink.run, name="bench-sink", daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + timeout_s
        while status.records_stored < records:
            if not runner.is_alive() or time.monotonic() > deadline:
                raise TimeoutError(f"the sink stored {status.records_stored}/{records} records")
            time.sleep(0.05)
    finally:
        sink.stop()
        runner.join(60)
    assert status.first_record_at is not None and status.last_stored_at is not None
    seconds = status.last_stored_at - status.first_record_at
    _delete_prefix(
        s3_client(config, settings, 1), settings.bucket, config.sink_keys().topic_prefix(topic)
    )
    admin.delete_topics([topic])
    return SinkBenchResult(records, flush_size, seconds)


def _delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    batch: list[dict[str, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            batch.append({"Key": item["Key"]})
            if len(batch) == _DELETE_BATCH:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": batch})
                batch = []
    if batch:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch})
