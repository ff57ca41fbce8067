"""The proxy's Kafka side: topic metadata, and the one idempotent producer of the process.

A produce request is answered only when the broker has acknowledged (or refused) every one of
its records: records are handed to librdkafka all at once, a thread serves the delivery
reports, and the request awaits one future that the last report resolves.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, PartitionMetadata

from services.rest_proxy.models import (
    KafkaFailureError,
    KafkaRecord,
    KafkaRetriableError,
    Partition,
    PartitionNotFoundError,
    PartitionOffset,
    Replica,
    TopicNotFoundError,
)
from services.rest_proxy.proxy_config import KafkaClientConfig

log = logging.getLogger(__name__)

# Settings only librdkafka has, so they live here rather than in kafka-rest.properties.
PRODUCER_OVERRIDES: dict[str, Any] = {
    # A produce to a missing topic is a 40401, even against a broker that would auto-create it
    # (MSK's default configuration does).
    "allow.auto.create.topics": False,
    # The Java client's partitioner, so a keyed record lands where the Confluent proxy puts it.
    "partitioner": "murmur2_random",
}
# Kafka's own internal topics, which the Java AdminClient leaves out of a topic listing.
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})
METADATA_MAX_AGE = 2.0  # seconds a produce request may trust cached topic metadata
METADATA_TIMEOUT = 10.0
POLL_INTERVAL = 0.1
QUEUE_FULL_BACKOFF = 0.005
CLOSE_FLUSH_TIMEOUT = 10.0

# Local errors librdkafka does not flag retriable but the Java client does (TimeoutException),
# and the end of a producer: the record may go again through its successor.
_RETRIABLE_CODES = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
        KafkaError._FATAL,
    }
)
_AUTHENTICATION_CODES = frozenset(
    {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
)
_AUTHORIZATION_CODES = frozenset(
    {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED}
)


def confluent_error_code(err: KafkaError) -> int:
    """The ``error_code`` Confluent gives a record that failed with this Kafka error."""
    code = err.code()
    if code in _AUTHENTICATION_CODES:
        return 40101
    if code in _AUTHORIZATION_CODES:
        return 40301
    if code in {KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART}:
        return TopicNotFoundError.error_code
    if code == KafkaError._UNKNOWN_PARTITION:
        return PartitionNotFoundError.error_code
    if err.retriable() or err.fatal() or code in _RETRIABLE_CODES:
        return KafkaRetriableError.error_code
    return KafkaFailureError.error_code


class Delivery(NamedTuple):
    """The broker's answer for one record: where it was written, or why not."""

    partition: int | None = None
    offset: int | None = None
    error: KafkaError | None = None

    def partition_offset(self) -> PartitionOffset:
        """The record's entry in the response's ``offsets``."""
        if self.error is None:
            return {
                "partition": self.partition,
                "offset": self.offset,
                "error_code": None,
                "error": None,
            }
        return {
            "partition": None,
            "offset": None,
            "error_code": confluent_error_code(self.error),
            "error": self.error.str(),
        }


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: list[Partition]

    def has_partitions(self, records: Sequence[KafkaRecord]) -> bool:
        """True if every record that names a partition names one of this topic's."""
        ids = {p.partition for p in self.partitions}
        return all(r.partition is None or r.partition in ids for r in records)


class Backend(Protocol):
    """What the routes need from Kafka."""

    async def topic_names(self) -> list[str]: ...

    async def topic(self, name: str) -> TopicInfo: ...

    async def topic_configs(self, name: str) -> dict[str, str]: ...

    async def produce(self, topic: str, records: Sequence[KafkaRecord]) -> list[Delivery]: ...


def _kafka_error(exc: KafkaException, what: str) -> KafkaRetriableError | KafkaFailureError:
    err = exc.args[0]
    if not isinstance(err, KafkaError):
        return KafkaFailureError(f"Kafka error: {what}: {exc}")
    if err.retriable() or err.code() in _RETRIABLE_CODES:
        return KafkaRetriableError(f"Retriable Kafka error: {what}: {err.str()}")
    return KafkaFailureError(f"Kafka error: {what}: {err.str()}")


class TopicCatalog:
    """Topic metadata, fetched through an admin client; produce trusts it for a moment."""

    def __init__(self, admin: AdminClient, max_age: float = METADATA_MAX_AGE) -> None:
        self._admin = admin
        self._max_age = max_age
        self._topics: dict[str, TopicInfo] = {}
        self._fetched_at = -math.inf
        self._refreshing = asyncio.Lock()

    async def names(self) -> list[str]:
        """Every topic but Kafka's internal ones, fresh from the cluster."""
        await self._refresh()
        return sorted(name for name in self._topics if name not in INTERNAL_TOPICS)

    async def get(self, name: str, max_age: float | None = None) -> TopicInfo:
        """A topic's partitions, at most ``max_age`` seconds old; TopicNotFoundError if absent."""
        age = self._max_age if max_age is None else max_age
        if name not in self._topics or time.monotonic() - self._fetched_at > age:
            await self._refresh()
        try:
            return self._topics[name]
        except KeyError:
            raise TopicNotFoundError() from None

    async def configs(self, name: str) -> dict[str, str]:
        """The topic's configuration entries (``GET /topics/{name}``'s ``configs``)."""
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)

        def describe() -> dict[str, str]:
            entries = self._admin.describe_configs([resource])[resource].result(METADATA_TIMEOUT)
            return {k: e.value for k, e in sorted(entries.items()) if e.value is not None}

        try:
            return await asyncio.to_thread(describe)
        except KafkaException as exc:
            raise _kafka_error(exc, f"describing topic {name}") from exc

    async def _refresh(self) -> None:
        requested = time.monotonic()
        async with self._refreshing:
            # A fetch that started after this call was made is as fresh as one of its own.
            if self._fetched_at >= requested:
                return
            started = time.monotonic()
            try:
                metadata = await asyncio.to_thread(
                    self._admin.list_topics, timeout=METADATA_TIMEOUT
                )
            except KafkaException as exc:
                raise _kafka_error(exc, "listing topics") from exc
            self._topics = {
                name: TopicInfo(name, [_partition(p) for _, p in sorted(t.partitions.items())])
                for name, t in metadata.topics.items()
            }
            self._fetched_at = started


def _partition(meta: PartitionMetadata) -> Partition:
    in_sync = set(meta.isrs)
    return Partition(
        partition=meta.id,
        leader=meta.leader,
        replicas=[
            Replica(broker=b, leader=b == meta.leader, in_sync=b in in_sync) for b in meta.replicas
        ],
    )


class _Batch:
    """Delivery reports for one request's records; its future resolves when all are in."""

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.deliveries: list[Delivery] = [Delivery()] * size
        self.done: asyncio.Future[list[Delivery]] = loop.create_future()
        self._loop = loop
        self._pending = size
        # Reports arrive on the poll thread; a record refused at produce() is set on the loop.
        self._lock = threading.Lock()
        if size == 0:
            self.done.set_result(self.deliveries)

    def report(self, index: int, err: KafkaError | None, msg: Message) -> None:
        """librdkafka's delivery callback for record ``index``."""
        if err is None:
            self.set(index, Delivery(msg.partition(), msg.offset()))
        else:
            self.set(index, Delivery(error=err))

    def set(self, index: int, delivery: Delivery) -> None:
        self.deliveries[index] = delivery
        with self._lock:
            self._pending -= 1
            finished = self._pending == 0
        if finished:
            try:
                self._loop.call_soon_threadsafe(self._resolve)
            except RuntimeError:
                # The event loop is gone (shutdown flush): nobody awaits this request any more.
                log.debug("delivery reports arrived after the event loop closed")

    def _resolve(self) -> None:
        if not self.done.done():
            self.done.set_result(self.deliveries)


class RecordProducer:
    """The process's one idempotent producer, polled by a thread; replaced after a fatal error.

    librdkafka retries a record until ``delivery.timeout.ms``, across a broker restart, and
    idempotence keeps a retry from writing it twice. A fatal error means that guarantee could
    not be kept and ends the producer for good: its records are reported failed (retriable,
    50003: nothing says whether they were written, so the client decides) and later requests
    go through a new producer.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        factory: Callable[[dict[str, Any]], Producer] = Producer,
    ) -> None:
        self._config = dict(config)
        self._factory = factory
        self._lock = threading.Lock()
        self._generation = 0
        self._retired: list[Producer] = []
        self._producer = self._new_producer()
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._poller.start()

    async def produce(self, topic: str, records: Sequence[KafkaRecord]) -> list[Delivery]:
        """Send every record and return, in order, what the broker answered for each."""
        batch = _Batch(len(records), asyncio.get_running_loop())
        with self._lock:
            generation, producer = self._generation, self._producer
        for index, record in enumerate(records):
            on_delivery = partial(batch.report, index)
            while True:
                try:
                    if record.partition is None:
                        producer.produce(topic, record.value, record.key, on_delivery=on_delivery)
                    else:
                        producer.produce(
                            topic,
                            record.value,
                            record.key,
                            record.partition,
                            on_delivery=on_delivery,
                        )
                    break
                except BufferError:
                    # The local queue is full: let the poll thread drain it.
                    await asyncio.sleep(QUEUE_FULL_BACKOFF)
                except KafkaException as exc:
                    err = exc.args[0]
                    if err.fatal():
                        self._replace(generation, err.str())
                    batch.set(index, Delivery(error=err))
                    break
        deliveries = await batch.done
        fatal = next((d.error for d in deliveries if d.error is not None and d.error.fatal()), None)
        if fatal is not None:
            self._replace(generation, fatal.str())
        return deliveries

    def close(self, timeout: float = CLOSE_FLUSH_TIMEOUT) -> None:
        """Stop the poll thread, then deliver what is queued (for up to ``timeout``)."""
        self._stopping.set()
        self._poller.join()
        remaining = self._producer.flush(timeout)
        if remaining:
            log.warning("closing with %d records not acknowledged", remaining)

    def _new_producer(self) -> Producer:
        self._generation += 1
        conf = {**self._config, "error_cb": partial(self._on_error, self._generation)}
        return self._factory(conf)

    def _replace(self, generation: int, reason: str) -> None:
        """Replace the producer of ``generation`` if it is still the current one."""
        with self._lock:
            if generation != self._generation:
                return
            # Its remaining records fail with the fatal error; the poll thread reports them.
            self._retired.append(self._producer)
            self._producer = self._new_producer()
        log.warning("Kafka producer %d replaced after a fatal error: %s", generation, reason)

    def _on_error(self, generation: int, err: KafkaError) -> None:
        # Other client errors (a broker down, a timeout) are transient: librdkafka retries
        # them itself and logs them already.
        if err.fatal():
            self._replace(generation, err.str())

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                producer, retired = self._producer, list(self._retired)
            producer.poll(POLL_INTERVAL)
            for old in retired:
                old.poll(0)
                if len(old) == 0:
                    # Every report is served: dropping the last reference destroys the client.
                    with self._lock:
                        self._retired.remove(old)


class KafkaBackend:
    """The routes' Kafka: metadata through an admin client, records through the producer."""

    def __init__(self, catalog: TopicCatalog, producer: RecordProducer) -> None:
        self._catalog = catalog
        self._producer = producer

    @classmethod
    def start(cls, config: KafkaClientConfig) -> KafkaBackend:
        """Open the admin client and the process's one producer."""
        kafka_log = logging.getLogger("librdkafka")
        admin_config: dict[str, Any] = {**config.admin, "logger": kafka_log}
        admin = AdminClient(admin_config)
        producer = RecordProducer({**config.producer, **PRODUCER_OVERRIDES, "logger": kafka_log})
        return cls(TopicCatalog(admin), producer)

    def close(self) -> None:
        self._producer.close()

    async def topic_names(self) -> list[str]:
        return await self._catalog.names()

    async def topic(self, name: str) -> TopicInfo:
        return await self._catalog.get(name, max_age=0.0)

    async def topic_configs(self, name: str) -> dict[str, str]:
        return await self._catalog.configs(name)

    async def produce(self, topic: str, records: Sequence[KafkaRecord]) -> list[Delivery]:
        """Check the topic and partitions exist (never auto-create), then produce."""
        info = await self._catalog.get(topic)
        if not info.has_partitions(records):
            # Partitions may have been added since the cache was filled.
            info = await self._catalog.get(topic, max_age=0.0)
            if not info.has_partitions(records):
                raise PartitionNotFoundError()
        return await self._producer.produce(topic, records)
