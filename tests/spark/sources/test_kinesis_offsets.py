"""The Kinesis source's offsets on a scripted stream: resharding order, restarts, ranges."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from spark.jobs.streaming_job import resume_hint
from spark.sources.kinesis_source import SHARD_END, KinesisStreamReader, ShardRange, read_range

pytestmark = pytest.mark.unit

STREAM = "s"


class Expired(Exception):
    pass


class FakeKinesis:
    """Shards as lists of sequence numbers; a closed shard's iterator ends after its last."""

    exceptions = SimpleNamespace(ExpiredIteratorException=Expired)

    def __init__(self, shards: dict[str, dict[str, Any]]) -> None:
        self.shards = shards

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
    assert open_parent.latestOffset() == {STREAM: {"p": "3"}}

    source = reader(split_stream(parent_closed=True))
    start = source.initialOffset()
    end = source.latestOffset()
    assert end == {STREAM: {"p": SHARD_END, "a": "12", "b": "11"}}
    ranges = source.partitions(start, end)
    assert ranges == [
        ShardRange(STREAM, "a", None, "12"),
        ShardRange(STREAM, "b", None, "11"),
        ShardRange(STREAM, "p", None, SHARD_END),
    ]
    assert source.partitions(end, source.latestOffset()) == []


def test_a_restarted_driver_peeks_on_from_the_hint() -> None:
    kinesis = FakeKinesis({"x": {"seqs": [1, 2, 3, 4]}})
    cold = reader(kinesis, resumeFrom=json.dumps({STREAM: {"x": "2"}}))
    calls: list[str | None] = []
    real = kinesis.get_shard_iterator

    def spy(**kw: Any) -> dict[str, str]:
        calls.append(kw.get("StartingSequenceNumber"))
        return real(**kw)

    kinesis.get_shard_iterator = spy  # type: ignore[method-assign]
    assert cold.latestOffset() == {STREAM: {"x": "4"}}
    assert calls == ["2"]


def test_a_range_yields_exactly_its_records() -> None:
    kinesis = FakeKinesis({"x": {"seqs": [1, 2, 3, 4, 5]}, "c": {"seqs": [7, 8], "closed": True}})
    seqs = [row[4] for row in read_range(kinesis, ShardRange(STREAM, "x", "1", "4"), fetch=2)]
    assert seqs == ["2", "3", "4"]
    to_end = [row[4] for row in read_range(kinesis, ShardRange(STREAM, "c", None, SHARD_END), 1)]
    assert to_end == ["7", "8"]


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
