"""The Kinesis source's offsets on a scripted stream: resharding order, restarts, ranges."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from spark.jobs.streaming_job import resume_hint
from spark.sources import kinesis_source
from spark.sources.kinesis_source import (
    SHARD_END,
    KinesisStreamReader,
    ShardRange,
    read_range,
    shard_ranges,
)

pytestmark = pytest.mark.unit

STREAM = "s"


class Expired(Exception):
    pass


class FakeKinesis:
    """Shards as lists of sequence numbers; a closed shard's iterator ends after its last."""

    exceptions = SimpleNamespace(ExpiredIteratorException=Expired)

    def __init__(self, shards: dict[str, dict[str, Any]]) -> None:
        self.shards = shards
        self.reads: list[str] = []  # the shard of each GetRecords call

    def list_shards(self, StreamName: str) -> dict[str, Any]:
        return {
            "Shards": [
                {"ShardId": sid, **{k: v for k, v in s.items() if k.endswith("ShardId")}}
                for sid, s in self.shards.items()
            ]
        }

    def get_shard_iterator(
        self, StreamName: str, ShardId: str, ShardIteratorType: str, **kw: str
    ) -> dict[str, str]:
        seqs = self.shards[ShardId]["seqs"]
        after = kw.get("StartingSequenceNumber")
        index = 0 if after is None else sum(1 for s in seqs if s <= int(after))
        return {"ShardIterator": f"{ShardId}|{index}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard, index = ShardIterator.split("|")
        self.reads.append(shard)
        seqs = self.shards[shard]["seqs"]
        page = seqs[int(index) : int(index) + Limit]
        nxt = int(index) + len(page)
        ended = self.shards[shard].get("closed") and nxt >= len(seqs)
        return {
            "Records": [
                {"SequenceNumber": str(q), "Data": b"{}", "PartitionKey": "k"} for q in page
            ],
            "NextShardIterator": None if ended else f"{shard}|{nxt}",
            "MillisBehindLatest": 0 if nxt >= len(seqs) else 1000,
        }


def reader(kinesis: FakeKinesis, **options: str) -> KinesisStreamReader:
    r = KinesisStreamReader({"streamName": STREAM, "initialPosition": "trim_horizon", **options})
    r._client = kinesis
    return r


def seqs(rows: Any) -> list[str]:
    return [row[4] for row in rows]


def split_stream(parent_closed: bool) -> FakeKinesis:
    return FakeKinesis(
        {
            "p": {"seqs": [1, 2, 3], "closed": parent_closed},
            "a": {"seqs": [10, 12], "ParentShardId": "p"},
            "b": {"seqs": [11], "ParentShardId": "p"},
        }
    )


def test_children_wait_for_their_parent_to_end() -> None:
    open_parent = reader(split_stream(parent_closed=False))
    assert open_parent.read(open_parent.initialOffset())[1] == {STREAM: {"p": "3"}}

    source = reader(split_stream(parent_closed=True))
    start = source.initialOffset()
    rows, end = source.read(start)
    assert end == {STREAM: {"p": SHARD_END, "a": "12", "b": "11"}}
    assert [(r.stream, r.shard, r.start, r.end) for r in shard_ranges(start, end)] == [
        (STREAM, "a", None, "12"),
        (STREAM, "b", None, "11"),
        (STREAM, "p", None, SHARD_END),
    ]
    assert [(row[3], row[4]) for row in rows] == [
        ("a", "10"),
        ("a", "12"),
        ("b", "11"),
        ("p", "1"),
        ("p", "2"),
        ("p", "3"),
    ]
    rows, again = source.read(end)
    assert again == end and list(rows) == []


def test_a_restarted_driver_peeks_on_from_the_hint() -> None:
    kinesis = FakeKinesis({"x": {"seqs": [1, 2, 3, 4]}})
    cold = reader(kinesis, resumeFrom=json.dumps({STREAM: {"x": "2"}}))
    calls: list[str | None] = []
    real = kinesis.get_shard_iterator

    def spy(**kw: Any) -> dict[str, str]:
        calls.append(kw.get("StartingSequenceNumber"))
        return real(**kw)

    kinesis.get_shard_iterator = spy  # type: ignore[method-assign,assignment]
    # Spark 4.0 starts a restarted driver's first read at the initial offset.
    rows, end = cold.read(cold.initialOffset())
    assert end == {STREAM: {"x": "4"}}
    assert calls == ["2"]
    # Its rows (from the shard's start) are read only if Spark asks for them, which it
    # doesn't: the batch it runs starts at its checkpoint.
    assert kinesis.reads == ["x"]
    assert seqs(rows) == ["1", "2", "3", "4"]
    assert calls == ["2", None]


def test_a_range_yields_exactly_its_records() -> None:
    kinesis = FakeKinesis({"x": {"seqs": [1, 2, 3, 4, 5]}, "c": {"seqs": [7, 8], "closed": True}})
    seqs = [row[4] for row in read_range(kinesis, ShardRange(STREAM, "x", "1", "4"), fetch=2)]
    assert seqs == ["2", "3", "4"]
    to_end = [row[4] for row in read_range(kinesis, ShardRange(STREAM, "c", None, SHARD_END), 1)]
    assert to_end == ["7", "8"]


def replays_read_from(monkeypatch: pytest.MonkeyPatch, kinesis: FakeKinesis) -> None:
    """A replay's task (``readBetweenOffsets``) reads ``kinesis``."""
    monkeypatch.setattr(kinesis_source, "worker_client", lambda options: kinesis)


def test_a_batch_is_what_the_peeks_fetched_and_kinesis_is_read_once() -> None:
    kinesis = FakeKinesis({"x": {"seqs": [1, 2, 3, 4, 5]}})
    source = reader(kinesis)
    start = source.initialOffset()
    rows, end = source.read(start)
    peeked = list(kinesis.reads)
    assert seqs(rows) == ["1", "2", "3", "4", "5"]
    assert kinesis.reads == peeked
    assert end == {STREAM: {"x": "5"}}

    kinesis.shards["x"]["seqs"] += [6, 7]
    rows, end = source.read(end)
    assert seqs(rows) == ["6", "7"]
    assert end == {STREAM: {"x": "7"}}


def test_a_replayed_batch_reads_exactly_its_records_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kinesis = FakeKinesis({"x": {"seqs": [1, 2, 3, 4, 5]}, "y": {"seqs": [8, 9]}})
    source = reader(kinesis)
    start = source.initialOffset()
    rows, end = source.read(start)
    carried = list(rows)
    replays_read_from(monkeypatch, kinesis)
    # A fresh reader, as in the task Spark runs for a replay.
    replayed = list(reader(FakeKinesis({})).readBetweenOffsets(start, end))
    assert replayed == carried
    assert [r[4] for r in reader(kinesis).readBetweenOffsets({STREAM: {"x": "2"}}, end)] == [
        "3",
        "4",
        "5",
        "8",
        "9",
    ]


def test_a_backlog_past_the_carrying_limit_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    kinesis = FakeKinesis({"x": {"seqs": [1, 2, 3, 4, 5]}})
    monkeypatch.setattr(kinesis_source, "MAX_CARRIED_BYTES", 2 * len(b"{}"))
    source = reader(kinesis)
    rows, end = source.read(source.initialOffset())
    peeked = len(kinesis.reads)
    assert seqs(rows) == ["1", "2", "3", "4", "5"]
    assert len(kinesis.reads) > peeked  # not held: read again
    kinesis.shards["x"]["seqs"] += [6, 7]
    rows, end = source.read(end)
    peeked = len(kinesis.reads)
    assert seqs(rows) == ["6", "7"]
    assert len(kinesis.reads) == peeked  # within the limit again: carried


def test_latest_reads_only_what_came_after_the_start() -> None:
    kinesis = FakeKinesis({"x": {"seqs": [1, 2, 3]}})
    source = reader(kinesis, initialPosition="latest")
    start = source.initialOffset()
    assert start == {STREAM: {"x": "3"}}
    kinesis.shards["x"]["seqs"] += [4, 5]
    rows, _ = source.read(start)
    assert seqs(rows) == ["4", "5"]


def test_resume_hint_is_the_newest_logged_offset(tmp_path: Path) -> None:
    assert resume_hint(str(tmp_path)) == ""
    offsets = tmp_path / "offsets"
    offsets.mkdir()
    for batch in (1, 2, 10):
        (offsets / str(batch)).write_text(
            f'v1\n{{"batchWatermarkMs":0}}\n{{"s":{{"x":"{batch}"}}}}'
        )
    (offsets / ".10.crc").write_text("")
    assert json.loads(resume_hint(str(tmp_path))) == {"s": {"x": "10"}}
