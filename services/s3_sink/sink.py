"""The S3 sink: Kafka records to S3 objects, the way the Confluent S3 sink connector does it.

One consumer in the group ``connect-<name>`` subscribes to ``topics.regex`` (or
``topics``), converts each value as JsonConverter + JsonFormat would, and hands it to the
writer of its topic-partition. Finished objects are put to S3 in parallel from one boto3
client; only when every object of a batch is stored are the offsets after them committed.
Keys are deterministic (topic, partition, offset of the first record), so after a crash the
records past the last commit are read again and rewrite the very same objects: nothing is
lost and nothing is stored twice.

On shutdown the buffers of unfinished files are dropped, as the connector drops them: their
records are read again on the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from services.core.errors import ConfigError, PinpipeError, TerminalError, TransientError
from services.core.settings import Settings
from services.s3_sink.connector_config import JSON_CONVERTER, S3SinkConfig
from services.s3_sink.converter import CONVERTER_ERROR_MESSAGE, ConversionError, JsonLineConverter
from services.s3_sink.status import SinkStatus, status_path
from services.s3_sink.writer import PartitionWriter, S3Object

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_THREADS = 8
# Records per poll: Kafka Connect's max.poll.records (500) bounds the PUTs of one batch
# when files are small; large files get larger polls (fewer, cheaper loop turns).
MIN_CONSUME_BATCH = 500
MAX_CONSUME_BATCH = 5000
POLL_TIMEOUT_S = 0.5
# Regex subscriptions see new matching topics at the next metadata refresh (Java's
# default is 5 minutes).
METADATA_REFRESH_MS = "10000"
BUCKET_CHECK_ATTEMPTS = 10
COMMIT_ATTEMPTS = 3
DLQ_FLUSH_TIMEOUT_S = 30.0
MAX_S3_BACKOFF_S = 30.0

# What Kafka Connect writes in the DLQ context headers for the failures the sink reports.
DATA_EXCEPTION = "org.apache.kafka.connect.errors.DataException"
SINK_TASK_CLASS = "org.apache.kafka.connect.sink.SinkTask"
DLQ_HEADER_PREFIX = "__connect.errors."
_CONSUMER_CONFIG_ERRORS = frozenset(
    {KafkaError.INVALID_SESSION_TIMEOUT, KafkaError.INVALID_GROUP_ID, KafkaError.INVALID_CONFIG}
)
_TRANSIENT_S3_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling"}
)


class ConnectorFailedError(TerminalError):
    """The connector task failed, as a Kafka Connect task would, and needs a person."""


@dataclass(frozen=True)
class RecordFailure:
    """Why a record could not be written: the fields of Connect's error context."""

    stage: str
    executing_class: str
    message: str
    detail: str = ""
    exception_class: str = DATA_EXCEPTION


def consumer_config(config: S3SinkConfig, settings: Settings) -> dict[str, Any]:
    """The consumer Kafka Connect would create for this connector's (single) task."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": config.group_id,
        "client.id": f"connector-consumer-{config.name}-0",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
        "logger": logging.getLogger("services.s3_sink.kafka"),
        **config.consumer_overrides,
    }


def s3_client(config: S3SinkConfig, settings: Settings, max_connections: int) -> Any:
    """The sink's one S3 client: ``store.url`` and ``s3.region`` from the connector config."""
    kwargs = settings.boto3_kwargs()
    kwargs["region_name"] = config.s3_region
    if config.store_url:
        kwargs["endpoint_url"] = config.store_url
    style = "path" if config.s3_path_style_access_enabled else "virtual"
    return boto3.client(
        "s3",
        config=Config(
            # Retries are the connector's own (s3.part.retries, s3.retry.backoff.ms).
            retries={"max_attempts": 1, "mode": "standard"},
            max_pool_connections=max_connections,
            connect_timeout=5,
            read_timeout=30,
            s3={"addressing_style": style},
        ),
        **kwargs,
    )


class ConnectorLog(logging.LoggerAdapter):
    """Prefixes every message with the connector's name, as Connect's log context does."""

    def __init__(self, logger: logging.Logger, connector: str) -> None:
        super().__init__(logger, {"connector": connector})
        self._prefix = f"[{connector}] "

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return self._prefix + str(msg), kwargs


class DeadLetterQueue:
    """Kafka Connect's DeadLetterQueueReporter: the original record, plus context headers."""

    def __init__(self, config: S3SinkConfig, settings: Settings, logger: ConnectorLog) -> None:
        self._config = config
        self._settings = settings
        self._log = logger
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "client.id": f"connector-dlq-producer-{config.name}-0",
                "acks": "all",
                "linger.ms": 5,
                "logger": logging.getLogger("services.s3_sink.kafka"),
            }
        )

    def ensure_topic(self) -> None:
        """Create the DLQ topic with one partition if it is missing, as Connect does."""
        topic = self._config.dlq_topic
        admin = AdminClient({"bootstrap.servers": self._settings.kafka_bootstrap_servers})
        if topic in admin.list_topics(timeout=10).topics:
            return
        self._log.info("creating dead letter queue topic %s", topic)
        future = admin.create_topics(
            [NewTopic(topic, 1, self._config.dlq_replication_factor)], operation_timeout=10
        )[topic]
        try:
            future.result(timeout=15)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConnectorFailedError(
                    f"Could not initialize dead letter queue with topic={topic}: {exc}"
                ) from exc

    def report(self, msg: Message, failure: RecordFailure) -> None:
        """Produce the original key, value and headers, with the failure in headers."""
        # A consumed record's headers are a list of (name, value) pairs.
        original = cast("list[tuple[str, bytes | None]]", msg.headers() or [])
        headers: list[tuple[str, str | bytes | None]] = list(original)
        if self._config.dlq_context_headers:
            topic, partition, offset = _coordinates(msg)
            context = {
                "topic": topic,
                "partition": str(partition),
                "offset": str(offset),
                "connector.name": self._config.name,
                "task.id": "0",
                "stage": failure.stage,
                "class.name": failure.executing_class,
                "exception.class.name": failure.exception_class,
                "exception.message": failure.message,
                "exception.stacktrace": (
                    f"{failure.exception_class}: {failure.message}\nCaused by: {failure.detail}"
                ),
            }
            headers += [(DLQ_HEADER_PREFIX + k, v.encode("utf-8")) for k, v in context.items()]
        kind, timestamp = msg.timestamp()
        self._producer.produce(
            self._config.dlq_topic,
            key=msg.key(),
            value=msg.value(),
            headers=headers,
            timestamp=timestamp if kind != 0 else 0,
            on_delivery=self._delivered,
        )
        self._producer.poll(0)

    def flush(self) -> None:
        """Wait for reported records to reach the DLQ (before committing past them)."""
        pending = self._producer.flush(DLQ_FLUSH_TIMEOUT_S)
        if pending:
            self._log.error("%d records not yet delivered to the DLQ", pending)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        # Connect logs a failed DLQ write and carries on; so does the sink.
        if err is not None:
            self._log.error("could not produce to the dead letter queue %s: %s", msg.topic(), err)


class S3Sink:
    """One connector's sink task: consume, convert, write objects, commit."""

    def __init__(
        self,
        config: S3SinkConfig,
        settings: Settings,
        *,
        upload_threads: int = DEFAULT_UPLOAD_THREADS,
        s3: Any = None,
        status: SinkStatus | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.status = status or SinkStatus(status_path(settings, config.name), config.name)
        self._log = ConnectorLog(log, config.name)
        self._s3 = s3 if s3 is not None else s3_client(config, settings, upload_threads)
        self._upload_threads = upload_threads
        self._batch = max(MIN_CONSUME_BATCH, min(MAX_CONSUME_BATCH, config.flush_size))
        self._keys = config.sink_keys()
        self._converter = JsonLineConverter()
        self._writers: dict[tuple[str, int], PartitionWriter] = {}
        self._stopping = threading.Event()
        self._consumer: Consumer | None = None
        self._dlq = DeadLetterQueue(config, settings, self._log) if config.dlq_topic else None
        # Connect hands a failed record to its error reporters only when one is configured.
        self._reporting = bool(config.dlq_topic) or config.errors_log_enable
        self._retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(config.s3_part_retries + 1),
            wait=wait_exponential(
                multiplier=config.s3_retry_backoff_ms / 1000, max=MAX_S3_BACKOFF_S
            ),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )

    def stop(self) -> None:
        """Ask the loop to finish its current batch and leave the group (signal-safe)."""
        self._stopping.set()

    def run(self) -> None:
        """Run until ``stop()``; raise ConnectorFailedError when the task would fail."""
        self._announce()
        pool = ThreadPoolExecutor(self._upload_threads, thread_name_prefix="s3-put")
        try:
            self._check_bucket()
            if self._dlq is not None:
                self._dlq.ensure_topic()
            self._consumer = self._new_consumer()
            self._consumer.subscribe(
                self.config.subscription,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            self.status.set_state("running")
            while not self._stopping.is_set():
                self._poll_once(self._consumer, pool)
        except PinpipeError as exc:
            self.status.set_state("failed", str(exc))
            raise
        finally:
            pool.shutdown(wait=True)
            if self._dlq is not None:
                self._dlq.flush()
            if self._consumer is not None:
                self._consumer.close()
            if self.status.state != "failed":
                self.status.set_state("stopped")
            self._log.info("stopped")

    def _announce(self) -> None:
        cfg = self.config
        self._log.info(
            "starting: group %s, subscription %s, flush.size=%d, bucket %s",
            cfg.group_id,
            cfg.subscription,
            cfg.flush_size,
            cfg.s3_bucket_name,
        )
        if cfg.rotate_interval_ms > 0:
            # The connector's own warning: the DefaultPartitioner has no timestamp extractor.
            self._log.warning(
                "Property 'rotate.interval.ms' is set to '%dms' but partitioner is not an "
                "instance of 'io.confluent.connect.storage.partitioner.TimeBasedPartitioner'. "
                "This property is ignored.",
                cfg.rotate_interval_ms,
            )
        if cfg.tasks_max > 1:
            self._log.info("tasks.max=%d: one consumer does the work of every task", cfg.tasks_max)

    def _new_consumer(self) -> Consumer:
        try:
            return Consumer(consumer_config(self.config, self.settings))
        except KafkaException as exc:
            # Almost always a consumer.override.* key librdkafka does not know.
            raise ConfigError(f"connector {self.config.name}: consumer settings: {exc}") from exc

    def _check_bucket(self) -> None:
        bucket = self.config.s3_bucket_name

        def head() -> None:
            try:
                self._s3.head_bucket(Bucket=bucket)
            except (ClientError, BotoCoreError) as exc:
                status = _http_status(exc)
                if status == 404:
                    raise ConnectorFailedError(f"Non-existent S3 bucket: {bucket}") from exc
                raise classify_s3_error(exc, f"checking bucket {bucket}") from exc

        Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(BUCKET_CHECK_ATTEMPTS),
            wait=wait_exponential(multiplier=0.5, max=5),
            reraise=True,
        )(head)

    # ---- the loop ------------------------------------------------------------------------
    def _poll_once(self, consumer: Consumer, pool: ThreadPoolExecutor) -> None:
        try:
            messages = consumer.consume(num_messages=self._batch, timeout=POLL_TIMEOUT_S)
        except KafkaException as exc:
            raise ConnectorFailedError(f"consumer failed: {exc}") from exc
        now_ms = int(time.time() * 1000)
        finished = self._write(messages, now_ms)
        for writer in self._writers.values():
            obj = writer.rotate_if_due(now_ms)
            if obj is not None:
                finished.append(obj)
        if self._dlq is not None:
            self._dlq.flush()
        if finished:
            self._store_and_commit(consumer, pool, finished)
        self.status.write()

    def _write(self, messages: list[Message], now_ms: int) -> list[S3Object]:
        finished: list[S3Object] = []
        if messages:
            self.status.consumed()
        for msg in messages:
            error = msg.error()
            if error is not None:
                self._kafka_error(error)
                continue
            # The hot loop: no helper calls beyond what each record needs.
            writer = self._writers.get((msg.topic(), msg.partition()))  # type: ignore[arg-type]
            if writer is None:  # fetched before a revocation
                continue
            line = self._convert(msg)
            if line is None:
                continue
            obj = writer.append(msg.offset(), line, now_ms)  # type: ignore[arg-type]
            if obj is not None:
                finished.append(obj)
        return finished

    def _convert(self, msg: Message) -> bytes | None:
        try:
            line = self._converter.convert(msg.value())
        except ConversionError as exc:
            failure = RecordFailure(
                "VALUE_CONVERTER", JSON_CONVERTER, CONVERTER_ERROR_MESSAGE, exc.detail
            )
            self._record_failed(msg, failure)
            return None
        if line is None:
            where = _where(msg)
            if self.config.behavior_on_null_values == "fail":
                raise ConnectorFailedError(
                    "Null valued records are not writeable with current "
                    f"behavior.on.null.values 'settings. (record {where})"
                )
            self._log.debug("null valued record %s was skipped", where)
            if self._reporting:
                self._record_failed(
                    msg, RecordFailure("TASK_PUT", SINK_TASK_CLASS, "Skipping null value record.")
                )
        return line

    def _record_failed(self, msg: Message, failure: RecordFailure) -> None:
        """Report a failed record like Connect's error handler: log, DLQ, then tolerate or fail."""
        where = _where(msg)
        self.status.failed_record(_coordinates(msg)[0])
        if self.config.errors_log_enable:
            self._log.error(
                "error in stage %s (%s) for record %s: %s%s",
                failure.stage,
                failure.executing_class,
                where,
                failure.message,
                failure.detail,
            )
        if self._dlq is not None:
            self._dlq.report(msg, failure)
        if self.config.errors_tolerance == "none":
            raise ConnectorFailedError(
                f"Tolerance exceeded in error handler: record {where} failed in stage "
                f"{failure.stage}: {failure.message}{failure.detail} (errors.tolerance=none; "
                "set errors.tolerance=all, optionally with errors.deadletterqueue.topic.name, "
                "to skip such records)"
            )

    def _kafka_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise ConnectorFailedError(f"consumer failed: {error}")
        if error.code() in _CONSUMER_CONFIG_ERRORS:
            # The broker refuses the group settings; retrying changes nothing.
            raise ConfigError(
                f"connector {self.config.name}: the broker refused the consumer's settings: "
                f"{error.str()} (check the consumer.override.* keys)"
            )
        self._log.warning("consumer: %s", error)

    # ---- storing and committing -----------------------------------------------------------
    def _store_and_commit(
        self, consumer: Consumer, pool: ThreadPoolExecutor, objects: list[S3Object]
    ) -> None:
        futures = [(obj, pool.submit(self._retrying, self._put, obj)) for obj in objects]
        commit: dict[tuple[str, int], int] = {}
        stored: Counter[tuple[str, int]] = Counter()
        rewind: dict[tuple[str, int], S3Object] = {}
        for obj, future in futures:
            tp = (obj.topic, obj.partition)
            try:
                future.result()
            except TransientError as exc:
                self._log.error("could not store %s: %s", obj.key, exc)
                rewind.setdefault(tp, obj)
                continue
            # Only a partition's unbroken run of stored objects may be committed.
            if tp not in rewind:
                commit[tp] = obj.end_offset + 1
                stored[tp] += 1
                self.status.stored(obj.topic, obj.records)
        if commit and self._commit(consumer, commit):
            for (topic, partition), offset in commit.items():
                self._log.info(
                    "%s-%d: %d objects stored, offset %d committed",
                    topic,
                    partition,
                    stored[(topic, partition)],
                    offset,
                )
        if rewind:
            self._rewind(consumer, rewind)

    def _put(self, obj: S3Object) -> None:
        try:
            self._s3.put_object(Bucket=self.config.s3_bucket_name, Key=obj.key, Body=obj.body)
        except (ClientError, BotoCoreError) as exc:
            raise classify_s3_error(exc, f"putting {obj.key}") from exc

    def _commit(self, consumer: Consumer, offsets: dict[tuple[str, int], int]) -> bool:
        """Commit synchronously; False when the broker refused (the objects stay stored)."""
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            Retrying(
                retry=retry_if_exception(_retriable_kafka_error),
                stop=stop_after_attempt(COMMIT_ATTEMPTS),
                wait=wait_exponential(multiplier=0.2, max=2),
                reraise=True,
            )(consumer.commit, offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if error.fatal():
                raise ConnectorFailedError(f"offset commit failed: {error}") from exc
            # A later commit, or the next owner rewriting the same keys, covers these offsets.
            self._log.warning("offset commit failed: %s", error)
            return False
        return True

    def _rewind(self, consumer: Consumer, failed: dict[tuple[str, int], S3Object]) -> None:
        """Re-read from the first unstored object after a pause, as the connector does."""
        now_ms = int(time.time() * 1000)
        for (topic, partition), obj in failed.items():
            self._writers[(topic, partition)] = self._new_writer(topic, partition, now_ms)
            consumer.seek(TopicPartition(topic, partition, obj.start_offset))
            self._log.warning(
                "%s-%d: retrying from offset %d in %d ms",
                topic,
                partition,
                obj.start_offset,
                self.config.retry_backoff_ms,
            )
        self._stopping.wait(self.config.retry_backoff_ms / 1000)

    # ---- assignment -------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        now_ms = int(time.time() * 1000)
        for tp in partitions:
            self._writers[(tp.topic, tp.partition)] = self._new_writer(
                tp.topic, tp.partition, now_ms
            )
        self.status.assigned([f"{t}-{p}" for t, p in self._writers])
        self._log.info("assigned %s", ", ".join(f"{tp.topic}-{tp.partition}" for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Buffered records of unfinished files are dropped: whoever owns the partition next
        # reads them again from the committed offset.
        for tp in partitions:
            self._writers.pop((tp.topic, tp.partition), None)
        self.status.assigned([f"{t}-{p}" for t, p in self._writers])
        if partitions:
            self._log.info(
                "revoked %s", ", ".join(f"{tp.topic}-{tp.partition}" for tp in partitions)
            )

    def _new_writer(self, topic: str, partition: int, now_ms: int) -> PartitionWriter:
        return PartitionWriter(
            topic,
            partition,
            keys=self._keys,
            flush_size=self.config.flush_size,
            now_ms=now_ms,
            rotate_schedule_interval_ms=self.config.rotate_schedule_interval_ms,
            zone=self.config.rotation_timezone,
        )


def _coordinates(msg: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed record (only error events lack them)."""
    return cast(str, msg.topic()), cast(int, msg.partition()), cast(int, msg.offset())


def _retriable_kafka_error(exc: BaseException) -> bool:
    return isinstance(exc, KafkaException) and bool(exc.args[0].retriable())


def _where(msg: Message) -> str:
    topic, partition, offset = _coordinates(msg)
    return f"{topic}-{partition}@{offset}"


def _http_status(exc: Exception) -> int:
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return 0


def classify_s3_error(exc: ClientError | BotoCoreError, what: str) -> PinpipeError:
    """Connection trouble, throttling and 5xx may pass; other client errors will not."""
    if isinstance(exc, ClientError):
        status = _http_status(exc)
        code = exc.response.get("Error", {}).get("Code", "")
        if status >= 500 or status == 429 or code in _TRANSIENT_S3_CODES:
            return TransientError(f"{what}: {exc}")
        return ConnectorFailedError(f"{what}: {exc}")
    return TransientError(f"{what}: {exc}")
