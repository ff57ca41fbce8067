"""Per topic-partition buffering and object naming, as the connector's TopicPartitionWriter.

Pure logic, no I/O: records go in with their offsets, finished objects come out with
deterministic keys. A file closes when it holds ``flush.size`` records, or on scheduled
rotation (``rotate.schedule.interval.ms``, wall clock aligned to midnight in
``timezone``). The key carries the offset of the object's first record, so re-reading
the same records after a crash rewrites the same keys with the same bytes.

``rotate.interval.ms`` is not applied: the connector honours it only with a
TimeBasedPartitioner (its record-time extractor), and with the DefaultPartitioner it
logs a warning and ignores it. The sink does the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.core.sink_keys import SinkKeys

LINE_SEPARATOR = b"\n"


@dataclass(frozen=True)
class S3Object:
    """A finished file: its key, body and the offsets it covers."""

    topic: str
    partition: int
    key: str
    body: bytes
    start_offset: int
    end_offset: int
    records: int


def next_scheduled_rotation(now_ms: int, interval_ms: int, zone: ZoneInfo) -> int:
    """The next rotation time: a multiple of the interval after local midnight, capped at the
    next midnight (the connector's ``DateTimeUtils.getNextTimeAdjustedByDay``)."""
    now = datetime.fromtimestamp(now_ms / 1000, zone)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start_ms = int(midnight.timestamp()) * 1000
    day_ms = int((midnight + timedelta(days=1)).timestamp()) * 1000 - start_ms
    offset = ((now_ms - start_ms) // interval_ms + 1) * interval_ms
    return start_ms + min(offset, day_ms)


class PartitionWriter:
    """Buffers one topic-partition's converted records and cuts them into objects."""

    def __init__(
        self,
        topic: str,
        partition: int,
        *,
        keys: SinkKeys,
        flush_size: int,
        now_ms: int,
        rotate_schedule_interval_ms: int = -1,
        zone: ZoneInfo | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self._keys = keys
        self._flush_size = flush_size
        self._interval_ms = rotate_schedule_interval_ms
        self._zone = zone
        self._lines: list[bytes] = []
        self._start_offset = -1
        self._last_offset = -1
        self._next_rotation_ms = self._schedule(now_ms)

    @property
    def buffered(self) -> int:
        """Records held for the object being filled."""
        return len(self._lines)

    def append(self, offset: int, line: bytes, now_ms: int) -> S3Object | None:
        """Add one record; return the object it completes, if any.

        A due scheduled rotation closes the open file before the record is added, as in
        the connector, so the record starts the next file. At most one object results:
        after a rotation one record is buffered, and with ``flush.size=1`` nothing is
        ever left open to rotate.
        """
        closed = self.rotate_if_due(now_ms)
        if not self._lines:
            self._start_offset = offset
        self._lines.append(line)
        self._last_offset = offset
        if len(self._lines) >= self._flush_size:
            return self._close()
        return closed

    def rotate_if_due(self, now_ms: int) -> S3Object | None:
        """Close the open file if scheduled rotation is due (checked even without records)."""
        # The connector only advances the schedule when it rotates a non-empty file, so
        # after an idle spell the first file can close early: kept for fidelity.
        if not self._lines or self._next_rotation_ms < 0 or now_ms < self._next_rotation_ms:
            return None
        self._next_rotation_ms = self._schedule(now_ms)
        return self._close()

    def _schedule(self, now_ms: int) -> int:
        if self._interval_ms <= 0 or self._zone is None:
            return -1
        return next_scheduled_rotation(now_ms, self._interval_ms, self._zone)

    def _close(self) -> S3Object:
        obj = S3Object(
            topic=self.topic,
            partition=self.partition,
            key=self._keys.key(self.topic, self.partition, self._start_offset),
            body=LINE_SEPARATOR.join(self._lines) + LINE_SEPARATOR,
            start_offset=self._start_offset,
            end_offset=self._last_offset,
            records=len(self._lines),
        )
        self._lines = []
        return obj
