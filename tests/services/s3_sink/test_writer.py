"""Buffering and naming: which records make an object, and what the object is called."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.s3_sink.writer import (
    PartitionWriter,
    S3Object,
    SinkKeys,
    next_scheduled_rotation,
)

pytestmark = pytest.mark.unit

UTC = ZoneInfo("UTC")
T0 = int(datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp() * 1000)


def writer(flush_size: int, *, interval_ms: int = -1, now_ms: int = T0) -> PartitionWriter:
    return PartitionWriter(
        "u1.pin",
        3,
        keys=SinkKeys(),
        flush_size=flush_size,
        now_ms=now_ms,
        rotate_schedule_interval_ms=interval_ms,
        zone=UTC if interval_ms > 0 else None,
    )


def feed(w: PartitionWriter, offsets: range, now_ms: int = T0) -> list[S3Object]:
    out = []
    for offset in offsets:
        obj = w.append(offset, f'{{"n":{offset}}}'.encode(), now_ms)
        if obj is not None:
            out.append(obj)
    return out


def test_key_layout_is_the_default_partitioners() -> None:
    assert SinkKeys().key("u1.pin", 0, 42) == "topics/u1.pin/partition=0/u1.pin+0+0000000042.json"
    custom = SinkKeys(topics_dir="raw", directory_delim="|", file_delim="_", zero_pad_width=4)
    assert custom.key("t", 2, 7) == "raw|t|partition=2|t_2_0007.json"
    assert SinkKeys(topics_dir="").key("t", 0, 1) == "t/partition=0/t+0+0000000001.json"


def test_flush_size_one_writes_one_object_per_record() -> None:
    objs = feed(writer(1), range(5, 8))
    assert [o.key.rsplit("/", 1)[1] for o in objs] == [
        "u1.pin+3+0000000005.json",
        "u1.pin+3+0000000006.json",
        "u1.pin+3+0000000007.json",
    ]
    assert objs[0].body == b'{"n":5}\n'
    assert (objs[0].start_offset, objs[0].end_offset, objs[0].records) == (5, 5, 1)


def test_larger_flush_size_cuts_at_every_flush_size_records_and_holds_the_rest() -> None:
    w = writer(3)
    objs = feed(w, range(0, 8))
    assert [(o.start_offset, o.end_offset) for o in objs] == [(0, 2), (3, 5)]
    assert objs[1].body == b'{"n":3}\n{"n":4}\n{"n":5}\n'
    assert w.buffered == 2  # 6 and 7 wait for a third record


def test_the_start_offset_is_the_first_record_written_even_across_gaps() -> None:
    # Skipped offsets (a record sent to the DLQ, a compacted log) don't shift the key.
    w = writer(2)
    assert w.append(10, b"a", T0) is None
    obj = w.append(13, b"b", T0)
    assert obj is not None
    assert obj.key.endswith("+0000000010.json")
    assert (obj.start_offset, obj.end_offset) == (10, 13)


def test_no_time_based_rotation_without_a_schedule() -> None:
    w = writer(100)
    feed(w, range(3))
    assert w.rotate_if_due(T0 + 10**9) is None


def test_scheduled_rotation_closes_a_partial_file_on_the_wall_clock() -> None:
    w = writer(100, interval_ms=60_000, now_ms=T0 + 1_000)
    feed(w, range(3), now_ms=T0 + 2_000)
    assert w.rotate_if_due(T0 + 59_999) is None
    obj = w.rotate_if_due(T0 + 60_000)
    assert obj is not None
    assert (obj.start_offset, obj.records) == (0, 3)
    assert w.rotate_if_due(T0 + 60_001) is None  # nothing buffered


def test_a_due_rotation_closes_the_file_before_the_next_record() -> None:
    w = writer(100, interval_ms=60_000)
    feed(w, range(2), now_ms=T0 + 1)
    obj = w.append(2, b'{"n":2}', T0 + 60_000)
    assert obj is not None
    assert (obj.start_offset, obj.end_offset) == (0, 1)
    assert w.buffered == 1  # offset 2 starts the next file


def test_an_idle_schedule_is_not_advanced_until_a_file_rotates() -> None:
    # As in the connector: with nothing buffered the due time stays in the past, so the
    # first file after an idle spell rotates at the next check.
    w = writer(100, interval_ms=60_000)
    assert w.rotate_if_due(T0 + 10 * 60_000) is None
    feed(w, range(1), now_ms=T0 + 10 * 60_000)
    obj = w.rotate_if_due(T0 + 10 * 60_000 + 1)
    assert obj is not None and obj.records == 1


def test_rotation_times_are_aligned_to_local_midnight_and_capped_at_the_next_one() -> None:
    hour = 3_600_000
    assert next_scheduled_rotation(T0 + 1, hour, UTC) == T0 + hour
    assert next_scheduled_rotation(T0, hour, UTC) == T0 + hour
    # 7-hour periods from midnight: 00, 07, 14, 21, then the next midnight, not 28:00.
    at_22h = int(datetime(2024, 6, 1, 22, tzinfo=UTC).timestamp() * 1000)
    midnight = int(datetime(2024, 6, 2, tzinfo=UTC).timestamp() * 1000)
    assert next_scheduled_rotation(at_22h, 7 * hour, UTC) == midnight
    paris = ZoneInfo("Europe/Paris")
    at_noon_paris = int(datetime(2024, 6, 1, 12, 30, tzinfo=paris).timestamp() * 1000)
    one_pm_paris = int(datetime(2024, 6, 1, 13, tzinfo=paris).timestamp() * 1000)
    assert next_scheduled_rotation(at_noon_paris, hour, paris) == one_pm_paris
