"""One table of S3 sink cases, two sinks: pinpipe's own and Kafka Connect's Confluent S3 sink.

Each case produces records, runs a sink with config/s3-sink-connector.properties (plus the
case's overrides) and compares every object under the case's topics, key and bytes, with
the same expectation. Passing on both targets means the project's sink writes the keys and
contents the Confluent connector writes. The native target runs on the native stack; the
Confluent target (real Kafka, LocalStack and the Connect image of the compose file) needs
Docker.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from services.core.settings import Settings
from services.s3_sink.connector_config import load_connector_config
from services.s3_sink.sink import S3Sink
from tests.conftest import unique_name
from tests.services.s3_sink.conftest import (
    SinkThread,
    committed,
    keys,
    line_of,
    objects,
    produce,
    rows,
    wait_for,
)

Records = dict[tuple[str, int], list[bytes]]


@dataclass(frozen=True)
class SinkCase:
    """Topics ``<prefix>.<suffix>``, what is produced, the overrides, and what S3 must hold."""

    id: str
    suffixes: tuple[str, ...]
    partitions: int
    records: Records
    overrides: dict[str, str] = field(default_factory=dict)
    # (suffix, partition, first offset) → the values the object holds, in order.
    objects: dict[tuple[str, int, int], list[bytes]] = field(default_factory=dict)
    # (suffix, partition) → the offset the connector's group must have committed.
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    dlq: list[bytes] = field(default_factory=list)


SHAPES = [
    json.dumps(v).encode()
    for v in (
        {"index": 1, "f": 1.5, "neg": -0.25, "i": 0, "big": 12345678901, "t": True},
        {"index": 2, "s": 'ç "quoted" \\ tab\t', "n": None, "a": [1, "x", {"k": []}], "o": {}},
        {"index": 3, "date": "2020-08-28 03:52:47", "fc": "1.5k", "emoji": "📌"},
    )
]
P0, P1 = rows(7, tag="p0"), rows(4, tag="p1")
GOOD = rows(2)

CASES = [
    SinkCase(
        "flush-size-1",
        ("pin",),
        1,
        {("pin", 0): rows(5)},
        objects={("pin", 0, i): [v] for i, v in enumerate(rows(5))},
        committed={("pin", 0): 5},
    ),
    SinkCase(
        "flush-size-3-holds-the-partial-object",
        ("geo",),
        2,
        {("geo", 0): P0, ("geo", 1): P1},
        {"flush.size": "3"},
        objects={("geo", 0, 0): P0[:3], ("geo", 0, 3): P0[3:6], ("geo", 1, 0): P1[:3]},
        committed={("geo", 0): 6, ("geo", 1): 3},
    ),
    SinkCase(
        "topics-regex-matches-whole-names",
        ("pin", "geo", "pin2"),
        1,
        {("pin", 0): GOOD, ("geo", 0): GOOD, ("pin2", 0): GOOD},
        {"topics.regex": "{prefix}\\.(pin|geo)"},
        objects={
            **{("pin", 0, i): [v] for i, v in enumerate(GOOD)},
            **{("geo", 0, i): [v] for i, v in enumerate(GOOD)},
        },
        committed={("pin", 0): 2, ("geo", 0): 2},
    ),
    SinkCase(
        "json-values-are-rewritten-byte-exactly",
        ("user",),
        1,
        {("user", 0): SHAPES},
        objects={("user", 0, i): [v] for i, v in enumerate(SHAPES)},
        committed={("user", 0): 3},
    ),
    SinkCase(
        "unconvertible-records-go-to-the-dead-letter-queue",
        ("pin",),
        1,
        {("pin", 0): [GOOD[0], b"not json", GOOD[1]]},
        {
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": "{prefix}-dlq",
            "errors.deadletterqueue.topic.replication.factor": "1",
            "errors.deadletterqueue.context.headers.enable": "true",
        },
        objects={("pin", 0, 0): [GOOD[0]], ("pin", 0, 2): [GOOD[1]]},
        committed={("pin", 0): 3},
        dlq=[b"not json"],
    ),
]


@dataclass
class SinkTarget:
    """Where a case runs: the endpoints this process uses, and how a sink is started."""

    name: str
    settings: Settings
    start: Callable[[dict[str, str]], Callable[[], None]]


def native_target(settings: Settings) -> SinkTarget:
    def start(props: dict[str, str]) -> Callable[[], None]:
        thread = SinkThread(S3Sink(load_connector_config(settings, overrides=props), settings))
        return thread.stop

    return SinkTarget("native", settings, start)


@pytest.fixture(scope="session")
def confluent_target() -> Iterator[SinkTarget]:
    """Kafka, LocalStack and Kafka Connect with the S3 sink plugin, as compose runs them."""
    from tests.compose.containers import (
        network,
        register_connector,
        start_kafka,
        start_kafka_connect,
        start_localstack,
    )

    with network() as net:
        started: list[Any] = []
        try:
            kafka = start_kafka(net)
            started.append(kafka.container)
            localstack, aws_url = start_localstack(net)
            started.append(localstack)
            connect, connect_url = start_kafka_connect(net)
            started.append(connect)
            settings = Settings(
                user_id=f"t{secrets.token_hex(5)}",
                kafka_bootstrap_servers=kafka.bootstrap,
                aws_endpoint_url=aws_url,
            )
            boto3.client("s3", **settings.boto3_kwargs()).create_bucket(Bucket=settings.bucket)

            def start(props: dict[str, str]) -> Callable[[], None]:
                name = register_connector(connect_url, settings, props)
                return lambda: httpx.delete(f"{connect_url}/connectors/{name}", timeout=30)

            yield SinkTarget("confluent", settings, start)
        finally:
            for container in reversed(started):
                container.stop()


@pytest.fixture(
    params=[
        pytest.param("native", marks=pytest.mark.integration),
        pytest.param("confluent", marks=pytest.mark.docker),
    ]
)
def sink_target(request: pytest.FixtureRequest) -> SinkTarget:
    if request.param == "confluent":
        return request.getfixturevalue("confluent_target")
    return native_target(request.getfixturevalue("native_stack"))


def dlq_values(settings: Settings, topic: str, count: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": unique_name("dlq"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[bytes] = []

    def enough() -> bool:
        got.extend(m.value() for m in consumer.consume(10, 0.5) if m.error() is None)
        return len(got) >= count

    try:
        wait_for(enough, timeout=60, what=f"{count} records on {topic}")
    finally:
        consumer.close()
    return got


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_sink_writes_the_connectors_keys_and_contents(
    case: SinkCase, sink_target: SinkTarget
) -> None:
    settings = sink_target.settings
    prefix = unique_name("cs")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    topics = {s: f"{prefix}.{s}" for s in case.suffixes}
    for future in admin.create_topics(
        [NewTopic(t, case.partitions, 1) for t in topics.values()]
    ).values():
        future.result(timeout=15)
    for (suffix, partition), values in case.records.items():
        produce(settings, topics[suffix], values, partition=partition)

    props = {
        "name": f"{prefix}-connector",
        "topics.regex": f"{prefix}\\..*",
        **{k: v.format(prefix=prefix) for k, v in case.overrides.items()},
    }
    stop = sink_target.start(props)
    group = f"connect-{props['name']}"
    try:
        for (suffix, partition), offset in case.committed.items():
            wait_for(
                lambda s=suffix, p=partition, o=offset: (
                    committed(settings, group, topics[s], p) == o
                ),
                timeout=120,
                what=f"{topics[suffix]}-{partition} committed at {offset}",
            )
    finally:
        stop()

    s3 = boto3.client("s3", **settings.boto3_kwargs())
    stored = objects(s3, settings.bucket, f"topics/{prefix}.")
    expected = {
        f"topics/{topics[s]}/partition={p}/{topics[s]}+{p}+{start:010d}.json": b"".join(
            line_of(v) + b"\n" for v in values
        )
        for (s, p, start), values in case.objects.items()
    }
    assert sorted(stored) == sorted(expected)
    for key, body in expected.items():
        assert stored[key] == body, key
    if case.dlq:
        assert dlq_values(settings, f"{prefix}-dlq", len(case.dlq)) == case.dlq
    untouched = [
        t for t in topics.values() if not any(k[0] == t.split(".")[-1] for k in case.objects)
    ]
    for topic in untouched:
        assert keys(s3, settings.bucket, f"topics/{topic}/") == []
