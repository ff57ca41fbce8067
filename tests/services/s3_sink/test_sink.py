"""The sink against the native broker and LocalStack: objects, offsets, errors, subscription."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from confluent_kafka import Consumer

from services.core.errors import ConfigError
from services.core.settings import Settings
from services.s3_sink.sink import ConnectorFailedError
from services.s3_sink.status import read_status
from tests.services.s3_sink.conftest import (
    SinkThread,
    Topics,
    committed,
    keys,
    line_of,
    lines,
    objects,
    produce,
    rows,
    sink_config,
    wait_for,
)

pytestmark = pytest.mark.integration

RunSink = Callable[..., SinkThread]


def prefix_of(topic: str, partition: int = 0) -> str:
    return f"topics/{topic}/partition={partition}/"


def key_of(topic: str, partition: int, offset: int) -> str:
    return f"{prefix_of(topic, partition)}{topic}+{partition}+{offset:010d}.json"


def test_flush_size_one_writes_each_record_to_its_own_object(
    native_stack: Settings, topics: Callable[..., Topics], run_sink: RunSink, s3: Any
) -> None:
    t = topics("pin")
    pin = t.names[0]
    values = rows(5)
    produce(native_stack, pin, values)
    config = sink_config(native_stack, t)
    assert config.flush_size == 1  # as shipped
    run_sink(config)

    wait_for(lambda: len(keys(s3, native_stack.bucket, prefix_of(pin))) == 5, what="5 objects")
    stored = objects(s3, native_stack.bucket, prefix_of(pin))
    assert sorted(stored) == [key_of(pin, 0, i) for i in range(5)]
    assert stored[key_of(pin, 0, 0)] == (
        b'{"index":0,"title":"r-0","follower_count":"1.5k","downloaded":0}\n'
    )
    for i, value in enumerate(values):
        assert stored[key_of(pin, 0, i)] == line_of(value) + b"\n"
    wait_for(lambda: committed(native_stack, config.group_id, pin) == 5, what="offset 5 committed")


def test_larger_flush_size_writes_full_objects_per_partition_and_resumes_after_a_restart(
    native_stack: Settings, topics: Callable[..., Topics], run_sink: RunSink, s3: Any
) -> None:
    t = topics("geo", partitions=2)
    geo = t.names[0]
    produce(native_stack, geo, rows(7, tag="p0"), partition=0)
    produce(native_stack, geo, rows(4, tag="p1"), partition=1)
    # rotate.interval.ms needs a TimeBasedPartitioner: the connector ignores it here.
    config = sink_config(native_stack, t, {"flush.size": "3", "rotate.interval.ms": "200"})

    sink = run_sink(config)
    wait_for(lambda: committed(native_stack, config.group_id, geo, 0) == 6, what="p0 at 6")
    wait_for(lambda: committed(native_stack, config.group_id, geo, 1) == 3, what="p1 at 3")
    sink.stop()  # graceful: the held records (p0: 6, p1: 3) are not written
    assert keys(s3, native_stack.bucket, f"topics/{geo}/") == [
        key_of(geo, 0, 0),
        key_of(geo, 0, 3),
        key_of(geo, 1, 0),
    ]
    stored = objects(s3, native_stack.bucket, f"topics/{geo}/")
    assert lines({k: stored[k] for k in (key_of(geo, 0, 0), key_of(geo, 0, 3))}) == [
        line_of(v) for v in rows(6, tag="p0")
    ]

    produce(native_stack, geo, rows(2, start=7, tag="p0"), partition=0)
    run_sink(config)
    wait_for(
        lambda: key_of(geo, 0, 6) in keys(s3, native_stack.bucket, prefix_of(geo)),
        what="the object starting at the held record",
    )
    body = objects(s3, native_stack.bucket, key_of(geo, 0, 6))[key_of(geo, 0, 6)]
    assert body.count(b"\n") == 3 and b'"title":"p0-6"' in body
    wait_for(lambda: committed(native_stack, config.group_id, geo, 0) == 9, what="p0 at 9")
    assert committed(native_stack, config.group_id, geo, 1) == 3


def test_scheduled_rotation_writes_partial_objects_on_the_wall_clock(
    native_stack: Settings, topics: Callable[..., Topics], run_sink: RunSink, s3: Any
) -> None:
    t = topics("user")
    user = t.names[0]
    config = sink_config(
        native_stack,
        t,
        {"flush.size": "1000", "rotate.schedule.interval.ms": "1000", "timezone": "UTC"},
    )
    run_sink(config)
    produce(native_stack, user, rows(4))
    wait_for(lambda: committed(native_stack, config.group_id, user) == 4, what="4 records stored")
    produce(native_stack, user, rows(2, start=4))
    wait_for(lambda: committed(native_stack, config.group_id, user) == 6, what="6 records stored")

    # Far below flush.size, every record is stored once, in order, in objects that follow
    # each other. (Where files split depends on the clock: after an idle spell the
    # connector closes the first file at the next record.)
    stored = objects(s3, native_stack.bucket, prefix_of(user))
    assert lines(stored) == [line_of(v) for v in rows(6)]
    starts = [int(k.rsplit("+", 1)[1].removesuffix(".json")) for k in sorted(stored)]
    sizes = [stored[k].count(b"\n") for k in sorted(stored)]
    assert starts == [sum(sizes[:i]) for i in range(len(sizes))]


def test_only_topics_fully_matching_the_regex_are_written(
    native_stack: Settings, topics: Callable[..., Topics], run_sink: RunSink, s3: Any
) -> None:
    t = topics("pin", "geo", "pin2")
    pin, geo, pin2 = t.names
    for name in t.names:
        produce(native_stack, name, rows(2))
    # Java matches topics.regex against the whole name, so "pin2" is not consumed.
    config = sink_config(native_stack, t, {"topics.regex": f"{t.prefix}\\.(pin|geo)"})
    sink = run_sink(config)
    wait_for(
        lambda: len(keys(s3, native_stack.bucket, f"topics/{t.prefix}.")) == 4,
        what="the matching topics' objects",
    )
    wait_for(lambda: committed(native_stack, config.group_id, geo) == 2, what="geo committed")
    assert keys(s3, native_stack.bucket, prefix_of(pin2)) == []
    assert sink.sink.status.assignment == [f"{geo}-0", f"{pin}-0"]
    assert committed(native_stack, config.group_id, pin2) < 0


def _dlq_records(settings: Settings, topic: str, count: int) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[Any] = []

    def enough() -> bool:
        got.extend(consumer.consume(10, 0.5))
        return len(got) >= count

    try:
        wait_for(enough, what=f"{count} records on {topic}")
    finally:
        consumer.close()
    return got


def test_errors_tolerance_all_sends_unconvertible_records_to_the_dead_letter_queue(
    native_stack: Settings, topics: Callable[..., Topics], run_sink: RunSink, s3: Any
) -> None:
    t = topics("pin")
    pin = t.names[0]
    dlq = f"{t.prefix}-dlq"
    good = rows(2)
    produce(native_stack, pin, [good[0], b"not json", good[1]], headers=[("trace", b"abc")])
    config = sink_config(
        native_stack,
        t,
        {
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.context.headers.enable": "true",
            # Connect's default (3) needs three brokers; the stack has one.
            "errors.deadletterqueue.topic.replication.factor": "1",
        },
    )
    run_sink(config)

    wait_for(lambda: committed(native_stack, config.group_id, pin) == 3, what="offset 3")
    assert keys(s3, native_stack.bucket, prefix_of(pin)) == [key_of(pin, 0, 0), key_of(pin, 0, 2)]
    (record,) = _dlq_records(native_stack, dlq, 1)
    assert record.value() == b"not json"
    headers = {k: v.decode() for k, v in record.headers()}
    stacktrace = headers.pop("__connect.errors.exception.stacktrace")
    assert headers == {
        "trace": "abc",
        "__connect.errors.topic": pin,
        "__connect.errors.partition": "0",
        "__connect.errors.offset": "1",
        "__connect.errors.connector.name": config.name,
        "__connect.errors.task.id": "0",
        "__connect.errors.stage": "VALUE_CONVERTER",
        "__connect.errors.class.name": "org.apache.kafka.connect.json.JsonConverter",
        "__connect.errors.exception.class.name": "org.apache.kafka.connect.errors.DataException",
        "__connect.errors.exception.message": (
            "Converting byte[] to Kafka Connect data failed due to serialization error: "
        ),
    }
    assert "Expecting value" in stacktrace


def test_errors_tolerance_none_stops_at_the_record_and_commits_nothing_past_it(
    native_stack: Settings, topics: Callable[..., Topics], run_sink: RunSink, s3: Any
) -> None:
    t = topics("pin")
    pin = t.names[0]
    good = rows(2)
    produce(native_stack, pin, [good[0], b'{"broken": ', good[1]])
    config = sink_config(native_stack, t)
    sink = run_sink(config)

    error = sink.join(timeout=60)
    assert isinstance(error, ConnectorFailedError)
    assert f"record {pin}-0@1" in str(error) and "Tolerance exceeded" in str(error)
    assert committed(native_stack, config.group_id, pin) <= 1
    assert key_of(pin, 0, 2) not in keys(s3, native_stack.bucket, prefix_of(pin))
    status = read_status(sink.sink.status.path)
    assert status is not None and status["state"] == "failed" and f"{pin}-0@1" in status["error"]


@pytest.mark.parametrize("behavior", ["fail", "ignore"])
def test_null_values_fail_the_connector_unless_ignored(
    behavior: str,
    native_stack: Settings,
    topics: Callable[..., Topics],
    run_sink: RunSink,
    s3: Any,
) -> None:
    t = topics("pin")
    pin = t.names[0]
    good = rows(2)
    produce(native_stack, pin, [good[0], None, good[1]])
    config = sink_config(native_stack, t, {"behavior.on.null.values": behavior})
    sink = run_sink(config)
    if behavior == "fail":
        error = sink.join(timeout=60)
        assert isinstance(error, ConnectorFailedError)
        assert "Null valued records are not writeable" in str(error)
        return
    wait_for(lambda: committed(native_stack, config.group_id, pin) == 3, what="offset 3")
    assert keys(s3, native_stack.bucket, prefix_of(pin)) == [key_of(pin, 0, 0), key_of(pin, 0, 2)]


class SpyS3:
    """The real client, but every put first records the group's committed offset, and the
    puts of chosen objects (by first offset) fail as if the endpoint were unreachable."""

    def __init__(
        self, real: Any, settings: Settings, group: str, topic: str, failures: dict[int, int]
    ) -> None:
        self.real = real
        self.settings = settings
        self.group = group
        self.topic = topic
        self.failures = dict(failures)
        self.seen: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def head_bucket(self, **kwargs: Any) -> Any:
        return self.real.head_bucket(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        start = int(kwargs["Key"].rsplit("+", 1)[1].removesuffix(".json"))
        offset = committed(self.settings, self.group, self.topic)
        with self._lock:
            self.seen.append((start, offset))
            if self.failures.get(start, 0) > 0:
                self.failures[start] -= 1
                raise EndpointConnectionError(endpoint_url="http://s3.invalid")
        return self.real.put_object(**kwargs)


@pytest.mark.parametrize(
    ("failures", "puts_of_the_failing_object"),
    [
        ({0: 1}, 2),  # one failed attempt: retried in place (s3.part.retries)
        ({2: 5}, 6),  # retries exhausted twice: the partition is re-read from offset 2
    ],
)
def test_offsets_are_committed_only_after_the_objects_are_stored(
    failures: dict[int, int],
    puts_of_the_failing_object: int,
    native_stack: Settings,
    topics: Callable[..., Topics],
    run_sink: RunSink,
    s3: Any,
) -> None:
    t = topics("pin")
    pin = t.names[0]
    produce(native_stack, pin, rows(6))
    config = sink_config(
        native_stack,
        t,
        {
            "flush.size": "2",
            "s3.part.retries": "1",
            "s3.retry.backoff.ms": "50",
            "retry.backoff.ms": "100",
        },
    )
    spy = SpyS3(s3, native_stack, config.group_id, pin, failures)
    run_sink(config, s3=spy)

    wait_for(lambda: committed(native_stack, config.group_id, pin) == 6, what="offset 6")
    assert keys(s3, native_stack.bucket, prefix_of(pin)) == [key_of(pin, 0, o) for o in (0, 2, 4)]
    # While an object was being stored, nothing at or past its first record was committed.
    assert all(offset <= start for start, offset in spy.seen), spy.seen
    (failing,) = failures
    assert [start for start, _ in spy.seen].count(failing) == puts_of_the_failing_object


def test_a_missing_bucket_fails_the_connector_at_start(
    native_stack: Settings, topics: Callable[..., Topics], run_sink: RunSink
) -> None:
    t = topics("pin")
    config = sink_config(native_stack, t, {"s3.bucket.name": f"{t.prefix}-missing"})
    error = run_sink(config).join(timeout=60)
    assert isinstance(error, ConnectorFailedError)
    assert str(error) == f"Non-existent S3 bucket: {t.prefix}-missing"


def test_consumer_settings_the_broker_refuses_fail_the_connector_with_a_clear_error(
    native_stack: Settings, topics: Callable[..., Topics], run_sink: RunSink
) -> None:
    t = topics("pin")
    # Below the broker's group.min.session.timeout.ms (6 s): every join would be refused.
    config = sink_config(native_stack, t, {"consumer.override.session.timeout.ms": "2000"})
    error = run_sink(config).join(timeout=60)
    assert isinstance(error, ConfigError)
    assert "Invalid session timeout" in str(error) and "consumer.override" in str(error)


def test_a_dead_letter_queue_the_cluster_cannot_hold_fails_the_connector_clearly(
    native_stack: Settings, topics: Callable[..., Topics], run_sink: RunSink
) -> None:
    t = topics("pin")
    # Connect's default replication factor, 3, on a cluster of one broker.
    config = sink_config(
        native_stack,
        t,
        {"errors.tolerance": "all", "errors.deadletterqueue.topic.name": f"{t.prefix}-dlq"},
    )
    error = run_sink(config).join(timeout=60)
    assert isinstance(error, ConnectorFailedError)
    assert f"Could not initialize dead letter queue with topic={t.prefix}-dlq" in str(error)
