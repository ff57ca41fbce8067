"""Write a bucket that lost its objects again, from the log Kafka retained.

The broker keeps every record (local retention is unlimited) and the connector's committed
offsets, but S3 may come back with less than those offsets say was stored: LocalStack keeps
no objects across a restart. Before the sink starts, every partition whose committed offset
is ahead of what the bucket holds is rewound to the first record the bucket lacks; the sink
then writes those objects again, with the same keys and the same bytes (the keys are
deterministic, see writer.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaException,
    TopicPartition,
)
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from services.core.errors import TransientError
from services.core.sink_keys import SinkKeys
from services.s3_sink.connector_config import S3SinkConfig
from services.s3_sink.writer import LINE_SEPARATOR

log = logging.getLogger(__name__)

Partition = tuple[str, int]
# A member killed without leaving keeps the group non-empty until its session expires
# (45 s by default): offsets of a non-empty group can't be changed.
GROUP_EMPTY_TIMEOUT_S = 60.0
COORDINATOR_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Rewind:
    """One partition whose committed offset is ahead of the bucket."""

    topic: str
    partition: int
    committed: int
    to: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}: committed {self.committed}, stored up to {self.to}"


def stored_through(s3: Any, bucket: str, keys: SinkKeys, topic: str, partition: int) -> int | None:
    """The offset after the last record stored for a partition; None if it has no object."""
    last: tuple[int, str] | None = None
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=keys.prefix(topic, partition)
    )
    for page in pages:
        for obj in page.get("Contents", []):
            parsed = keys.parse(obj["Key"])
            if parsed is not None and (last is None or parsed[2] > last[0]):
                last = (parsed[2], obj["Key"])
    if last is None:
        return None
    body = s3.get_object(Bucket=bucket, Key=last[1])["Body"].read()
    return last[0] + sum(1 for line in body.split(LINE_SEPARATOR) if line)


def plan_rewinds(
    committed: Mapping[Partition, int],
    stored: Callable[[str, int], int | None],
    earliest: Callable[[str, int], int],
) -> list[Rewind]:
    """Partitions whose committed offset is past the bucket's last stored record."""
    rewinds = []
    for (topic, partition), offset in sorted(committed.items()):
        end = stored(topic, partition)
        resume = earliest(topic, partition) if end is None else end
        if resume < offset:
            rewinds.append(Rewind(topic, partition, offset, resume))
    return rewinds


class GroupOffsets:
    """The sink's consumer group, read and written by a consumer that never joins it.

    (Not the admin API: librdkafka 2.x can crash in ListConsumerGroupOffsets when the
    coordinator is not known yet, librdkafka#5040.)
    """

    def __init__(self, bootstrap: str, group: str) -> None:
        self.group = group
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )

    def close(self) -> None:
        self.consumer.close()

    def committed(self, matches: Callable[[str], bool]) -> dict[Partition, int]:
        """The committed offsets of every partition of the topics ``matches`` accepts."""
        # A new broker creates __consumer_offsets on the first lookup of a coordinator and
        # answers NOT_COORDINATOR until it is ready.
        return Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_delay(COORDINATOR_TIMEOUT_S),
            wait=wait_fixed(0.5),
            reraise=True,
        )(self._committed, matches)

    def _committed(self, matches: Callable[[str], bool]) -> dict[Partition, int]:
        try:
            topics = self.consumer.list_topics(timeout=30).topics
            partitions = [
                TopicPartition(name, p)
                for name, meta in sorted(topics.items())
                if matches(name)
                for p in sorted(meta.partitions)
            ]
            found = self.consumer.committed(partitions, timeout=30) if partitions else []
        except KafkaException as exc:
            raise TransientError(f"reading the offsets of group {self.group}: {exc}") from exc
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}

    def earliest(self, topic: str, partition: int) -> int:
        low, _ = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return int(low)

    def rewind(self, rewinds: list[Rewind]) -> None:
        """Commit the new offsets, once the group has no member left."""
        partitions = [TopicPartition(r.topic, r.partition, r.to) for r in rewinds]

        def commit() -> None:
            try:
                self.consumer.commit(offsets=partitions, asynchronous=False)
            except KafkaException as exc:
                raise TransientError(f"group {self.group} is not empty yet: {exc}") from exc

        Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_delay(GROUP_EMPTY_TIMEOUT_S),
            wait=wait_fixed(2),
            reraise=True,
        )(commit)


def rebuild_lost_objects(config: S3SinkConfig, bootstrap: str, s3: Any) -> list[Rewind]:
    """Rewind the connector's group wherever the bucket lost objects; return what moved."""
    keys = config.sink_keys()

    def stored(topic: str, partition: int) -> int | None:
        return stored_through(s3, config.s3_bucket_name, keys, topic, partition)

    group = GroupOffsets(bootstrap, config.group_id)
    try:
        rewinds = plan_rewinds(group.committed(config.matches), stored, group.earliest)
        if rewinds:
            group.rewind(rewinds)
    finally:
        group.close()
    for rewind in rewinds:
        log.warning(
            "[%s] s3://%s lacks records the group committed (%s): writing them again",
            config.name,
            config.s3_bucket_name,
            rewind,
        )
    return rewinds
