"""Helpers for the S3 sink tests: own topics, own sink instances, reading what S3 holds.

The stack runs its own sink on ``<uid>.*``; every test here uses topics with a prefix of
its own, a connector name of its own (so its own consumer group) and the stack's bucket.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from services.core.settings import Settings
from services.core.waiting import poll
from services.s3_sink.connector_config import S3SinkConfig, load_connector_config
from services.s3_sink.converter import JsonLineConverter
from services.s3_sink.sink import S3Sink
from tests.conftest import unique_name


@dataclass
class Topics:
    """A test's own topics, all matching ``<prefix>.*``."""

    prefix: str
    names: list[str]

    @property
    def regex(self) -> str:
        return f"{self.prefix}\\..*"


@pytest.fixture
def topics(native_stack: Settings) -> Callable[..., Topics]:
    """Create topics ``<prefix>.<suffix>`` with the given partitions."""
    admin = AdminClient({"bootstrap.servers": native_stack.kafka_bootstrap_servers})

    def create(*suffixes: str, partitions: int = 1, prefix: str | None = None) -> Topics:
        prefix = prefix or unique_name("s3s")
        names = [f"{prefix}.{s}" for s in suffixes]
        futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names])
        for future in futures.values():
            future.result(timeout=15)
        return Topics(prefix, names)

    return create


@pytest.fixture
def s3(native_stack: Settings) -> Any:
    """A boto3 S3 client on the stack's LocalStack."""
    return boto3.client("s3", **native_stack.boto3_kwargs())


def produce(
    settings: Settings,
    topic: str,
    values: Sequence[bytes | None],
    partition: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Produce raw values (None is a tombstone) and wait until every one is acknowledged."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all"})
    for value in values:
        kwargs: dict[str, Any] = {"value": value, "headers": headers}
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, **kwargs)
    assert producer.flush(30) == 0


def rows(n: int, start: int = 0, tag: str = "r") -> list[bytes]:
    """``n`` distinct pin-like JSON values, as the emulator sends them."""
    return [
        json.dumps(
            {"index": i, "title": f"{tag}-{i}", "follower_count": "1.5k", "downloaded": i % 2}
        ).encode()
        for i in range(start, start + n)
    ]


def line_of(value: bytes) -> bytes:
    """The JSON line the connector writes for a (non-null) value, without its separator."""
    line = JsonLineConverter().convert(value)
    assert line is not None
    return line


def objects(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``, key to body (fetched in parallel)."""
    names = keys(s3, bucket, prefix)
    with ThreadPoolExecutor(8) as pool:
        bodies = pool.map(lambda k: s3.get_object(Bucket=bucket, Key=k)["Body"].read(), names)
        return dict(zip(names, bodies, strict=True))


def keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The keys under ``prefix``, sorted."""
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [item["Key"] for item in page.get("Contents", [])]
    return sorted(found)


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``check`` until true or fail the test."""
    poll(check, what, timeout)


def committed(settings: Settings, group: str, topic: str, partition: int = 0) -> int:
    """The group's committed offset (negative when none), read without joining the group."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": group})
    try:
        return int(consumer.committed([TopicPartition(topic, partition)], timeout=10)[0].offset)
    finally:
        consumer.close()


def sink_config(
    settings: Settings, topics: Topics, overrides: Mapping[str, str] | None = None
) -> S3SinkConfig:
    """The shipped connector file with a test's own name and subscription."""
    props = {
        "name": f"{topics.prefix}-connector",
        "topics.regex": topics.regex,
        **(overrides or {}),
    }
    return load_connector_config(settings, overrides=props)


class SinkThread:
    """An S3Sink running in a thread; ``stop()`` returns, or re-raises, what ``run()`` did."""

    def __init__(self, sink: S3Sink) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="s3-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.sink.run()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float = 60.0) -> BaseException | None:
        """Wait for ``run()`` to end by itself; return what it raised."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the sink did not stop"
        return self.error

    def stop(self) -> None:
        """Stop gracefully and re-raise anything ``run()`` raised."""
        self.sink.stop()
        error = self.join()
        if error is not None:
            raise error


@pytest.fixture
def run_sink(native_stack: Settings) -> Iterator[Callable[..., SinkThread]]:
    """Start sinks in threads; each is stopped at the end of the test."""
    started: list[SinkThread] = []

    def start(config: S3SinkConfig, **kwargs: Any) -> SinkThread:
        thread = SinkThread(S3Sink(config, native_stack, **kwargs))
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.sink.stop()
        thread.join()


@contextmanager
def running(
    run: Callable[..., SinkThread], config: S3SinkConfig, **kwargs: Any
) -> Iterator[SinkThread]:
    """A sink that is stopped (and whose errors surface) when the block ends."""
    thread = run(config, **kwargs)
    yield thread
    thread.stop()


def lines(bodies: Mapping[str, bytes]) -> list[bytes]:
    """Every record line of the given objects, in key order."""
    out: list[bytes] = []
    for key in sorted(bodies):
        body = bodies[key]
        assert body.endswith(b"\n"), f"{key} does not end with a line separator"
        out += body[:-1].split(b"\n")
    return out
