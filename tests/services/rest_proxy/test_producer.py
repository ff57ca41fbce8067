"""The one producer: answers once every record is acknowledged, replaced after a fatal error."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from services.rest_proxy.models import KafkaRecord
from services.rest_proxy.producer import Delivery, RecordProducer, confluent_error_code

pytestmark = pytest.mark.unit

RECORDS = [KafkaRecord(None, b'{"a":1}', None), KafkaRecord(b'"k"', b'{"a":2}', 1)]


class FakeMessage:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeProducer:
    """confluent_kafka.Producer's surface: queues records and reports them when polled."""

    def __init__(
        self, conf: dict[str, Any], outcome: Callable[[int], KafkaError | None] | None
    ) -> None:
        self.conf = conf
        self.outcome = outcome  # None: the broker never answers
        self.queue: list[tuple[int, Callable[..., None]]] = []
        self.lock = threading.Lock()
        self.purged = False
        self.buffer_full = 0
        self.offset = 0

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        on_delivery: Callable[..., None] | None = None,
    ) -> None:
        if self.buffer_full:
            self.buffer_full -= 1
            raise BufferError("Local: Queue full")
        assert on_delivery is not None
        with self.lock:
            self.queue.append((max(partition, 0), on_delivery))

    def poll(self, timeout: float) -> int:
        with self.lock:
            if not self.purged and self.outcome is None:
                ready: list[tuple[int, Callable[..., None]]] = []
            else:
                ready, self.queue = self.queue, []
        for partition, report in ready:
            err = (
                KafkaError(KafkaError._PURGE_INFLIGHT) if self.purged else self.outcome(self.offset)
            )  # type: ignore[misc]
            report(err, FakeMessage(partition, self.offset))
            self.offset += 1
        if not ready:
            time.sleep(min(timeout, 0.005))
        return len(ready)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        self.purged = True

    def flush(self, timeout: float = -1) -> int:
        self.poll(0)
        return len(self.queue)

    def __len__(self) -> int:
        return len(self.queue)


class FakeCluster:
    """Makes FakeProducers; outcomes[i] decides what the i-th producer's records get."""

    def __init__(self, *outcomes: Callable[[int], KafkaError | None] | None) -> None:
        self.outcomes = list(outcomes)
        self.producers: list[FakeProducer] = []

    def factory(self, conf: dict[str, Any]) -> FakeProducer:
        i = len(self.producers)
        producer = FakeProducer(conf, self.outcomes[i] if i < len(self.outcomes) else ok)
        self.producers.append(producer)
        return producer

    def error(self, producer: int, err: KafkaError) -> None:
        """What librdkafka's error callback would report for that producer."""
        self.producers[producer].conf["error_cb"](err)


def ok(offset: int) -> None:
    return None


def fails(code: int, fatal: bool = False) -> Callable[[int], KafkaError]:
    return lambda offset: KafkaError(code, "test", fatal=fatal)


@pytest.fixture
def make_producer() -> Iterator[Callable[[FakeCluster], RecordProducer]]:
    made: list[RecordProducer] = []

    def make(cluster: FakeCluster) -> RecordProducer:
        made.append(RecordProducer({"bootstrap.servers": "fake:9092"}, factory=cluster.factory))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for producer in made:
        producer.close(timeout=0)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def test_answers_in_request_order_once_every_record_is_acknowledged(make_producer) -> None:
    producer = make_producer(FakeCluster(ok))
    assert run(producer.produce("t", RECORDS)) == [Delivery(0, 0), Delivery(1, 1)]


def test_a_full_local_queue_waits_for_room_instead_of_failing(make_producer) -> None:
    cluster = FakeCluster(ok)
    producer = make_producer(cluster)
    cluster.producers[0].buffer_full = 3
    assert [d.error for d in run(producer.produce("t", RECORDS))] == [None, None]


def test_records_of_a_broker_that_is_down_wait_in_the_same_producer(make_producer) -> None:
    cluster = FakeCluster(None)  # no answer yet: the broker is restarting
    producer = make_producer(cluster)

    async def scenario() -> list[Delivery]:
        waiting = asyncio.create_task(producer.produce("t", RECORDS))
        await asyncio.sleep(0.05)
        cluster.error(0, KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        cluster.producers[0].outcome = ok  # the broker is back: librdkafka's retries land
        return await waiting

    assert [d.error for d in run(scenario())] == [None, None]
    assert len(cluster.producers) == 1 and not cluster.producers[0].purged


def test_records_failed_by_a_fatal_error_are_retriable_and_the_producer_is_replaced(
    make_producer,
) -> None:
    cluster = FakeCluster(fails(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, fatal=True), ok)
    producer = make_producer(cluster)
    first = run(producer.produce("t", RECORDS))
    # Never sent again behind the client's back: it may have been written.
    assert [d.partition_offset()["error_code"] for d in first] == [50003, 50003]
    assert [d.error for d in run(producer.produce("t", RECORDS))] == [None, None]
    assert len(cluster.producers) == 2


def test_a_fatal_error_at_produce_time_replaces_the_producer(make_producer) -> None:
    cluster = FakeCluster(ok, ok)
    producer = make_producer(cluster)

    def fatal(*args: Any, **kwargs: Any) -> None:
        raise KafkaException(KafkaError(KafkaError._FATAL, "fenced", fatal=True))

    cluster.producers[0].produce = fatal  # type: ignore[method-assign]
    first = run(producer.produce("t", RECORDS))
    assert [d.partition_offset()["error_code"] for d in first] == [50003, 50003]
    assert [d.error for d in run(producer.produce("t", RECORDS))] == [None, None]
    assert len(cluster.producers) == 2


def test_timed_out_records_are_reported_retriable_and_the_producer_kept(make_producer) -> None:
    cluster = FakeCluster(fails(KafkaError._MSG_TIMED_OUT), ok)
    producer = make_producer(cluster)
    first = run(producer.produce("t", RECORDS))
    assert [d.partition_offset()["error_code"] for d in first] == [50003, 50003]
    assert len(cluster.producers) == 1


def test_a_retired_producer_cannot_retire_its_successor(make_producer) -> None:
    cluster = FakeCluster(ok, ok)
    producer = make_producer(cluster)
    cluster.error(0, KafkaError(KafkaError._FATAL, "fenced", fatal=True))
    run(producer.produce("t", RECORDS))
    cluster.error(0, KafkaError(KafkaError._FATAL, "fenced", fatal=True))
    run(producer.produce("t", RECORDS))
    assert len(cluster.producers) == 2


def test_a_transient_client_error_keeps_the_producer(make_producer) -> None:
    cluster = FakeCluster(ok)
    producer = make_producer(cluster)
    for code in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
        cluster.error(0, KafkaError(code, "Disconnected"))
    run(producer.produce("t", RECORDS))
    assert len(cluster.producers) == 1


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (KafkaError._MSG_TIMED_OUT, 50003),
        (KafkaError.NOT_ENOUGH_REPLICAS, 50003),
        (KafkaError.RECORD_LIST_TOO_LARGE, 50002),
        (KafkaError.MSG_SIZE_TOO_LARGE, 50002),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, 40401),
        (KafkaError._UNKNOWN_PARTITION, 40402),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, 40301),
        (KafkaError.SASL_AUTHENTICATION_FAILED, 40101),
    ],
)
def test_per_record_error_codes_follow_confluent(code: int, expected: int) -> None:
    # kafka-rest AbstractProduceAction.errorCodeFromProducerException and rest-utils
    # KafkaExceptionMapper: auth 40101/40301, retriable 50003, any other Kafka error 50002.
    retriable = code == KafkaError.NOT_ENOUGH_REPLICAS
    assert confluent_error_code(KafkaError(code, retriable=retriable)) == expected
