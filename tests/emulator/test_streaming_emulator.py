"""The streaming emulator: what reaches Kinesis through the API, retries, and honest counts."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar

import boto3
import pytest

from emulator.sampler import RowSampler
from emulator.streaming_mode import StreamEmulationOptions, run_stream
from services.core.settings import TABLES, Settings
from services.core.waiting import free_port
from services.source_db.database import make_engine
from tests.conftest import unique_name
from tests.emulator.conftest import JsonEndpoint

pytestmark = pytest.mark.integration

THROTTLED = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}


@pytest.fixture
def own_streams(native_stack: Settings) -> Iterator[Settings]:
    """Settings whose three streams are the test's own (1 shard each)."""
    settings = native_stack.model_copy(update={"user_id": unique_name("e")})
    kinesis = boto3.client("kinesis", **settings.boto3_kwargs())
    for stream in settings.streams.values():
        kinesis.create_stream(StreamName=stream, ShardCount=1)
    for stream in settings.streams.values():
        kinesis.get_waiter("stream_exists").wait(
            StreamName=stream, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60}
        )
    yield settings
    for stream in settings.streams.values():
        kinesis.delete_stream(StreamName=stream)


def stream_records(settings: Settings, stream: str) -> list[tuple[str, bytes]]:
    """(partition key, data) of every record in the stream, oldest first."""
    kinesis = boto3.client("kinesis", **settings.boto3_kwargs())
    it = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [
        (r["PartitionKey"], r["Data"]) for r in kinesis.get_records(ShardIterator=it)["Records"]
    ]


def sampled_rows(settings: Settings, n: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """The rows the emulator sends for this seed (the sampler is deterministic)."""
    engine = make_engine(settings.db)
    events = RowSampler(engine, seed).sample(n)
    engine.dispose()
    return {t: [e.by_table()[t] for e in events] for t in TABLES}


def test_batched_events_reach_each_stream_through_the_api(own_streams: Settings) -> None:
    # One request at a time, so records reach the shard in the order they were sampled.
    opts = StreamEmulationOptions(count=20, batch_size=7, seed=3, concurrency=1)
    summary = run_stream(own_streams, opts)
    assert summary.events == 20
    assert summary.acknowledged == summary.sent == 60 and summary.failed == 0
    assert summary.acknowledged_by_topic == {s: 20 for s in own_streams.streams.values()}
    expected = sampled_rows(own_streams, 20, seed=3)
    for table, stream in own_streams.streams.items():
        records = stream_records(own_streams, stream)
        assert [json.loads(data) for _, data in records] == expected[table]
        key = "index" if table == "pin" else "ind"
        assert [k for k, _ in records] == [str(row[key]) for row in expected[table]]


def test_classic_mode_sends_base64_data_one_record_per_request(own_streams: Settings) -> None:
    opts = StreamEmulationOptions(count=2, classic=True, batch_size=1, seed=4, base64_data=True)
    summary = run_stream(own_streams, opts)
    assert summary.requests == 6 and summary.acknowledged == 6
    expected = sampled_rows(own_streams, 2, seed=4)
    for table, stream in own_streams.streams.items():
        # a JSON string holding the base64 of the row's JSON
        decoded = [
            json.loads(base64.b64decode(json.loads(d)))
            for _, d in stream_records(own_streams, stream)
        ]
        assert decoded == expected[table]


def test_direct_mode_puts_what_the_api_would(own_streams: Settings) -> None:
    summary = run_stream(own_streams, StreamEmulationOptions(count=5, direct=True, seed=6))
    assert summary.acknowledged == 15 and summary.target.startswith("kinesis ")
    expected = sampled_rows(own_streams, 5, seed=6)
    records = stream_records(own_streams, own_streams.streams["geo"])
    assert [json.loads(d) for _, d in records] == expected["geo"]


class FakeApi(JsonEndpoint):
    """A stand-in API Gateway: throttles chosen records, or rejects every request."""

    throttle_first = 0
    reject = False
    calls: ClassVar[list[tuple[str, list[dict[str, Any]]]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            cls = type(self)
            cls.calls.append((self.path, body["records"]))
            first = len(cls.calls) == 1
        if self.reject:
            self._reply(400, {"__type": "ResourceNotFoundException", "message": "no stream"})
            return
        entries = [
            THROTTLED if first and i < self.throttle_first else {"SequenceNumber": str(i)}
            for i, _ in enumerate(body["records"])
        ]
        failed = sum("ErrorCode" in e for e in entries)
        self._reply(200, {"FailedRecordCount": failed, "Records": entries})


@pytest.fixture
def fake_api(native_stack: Settings) -> Iterator[tuple[Settings, type[FakeApi]]]:
    handler = type("Handler", (FakeApi,), {"calls": [], "throttle_first": 0, "reject": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    yield native_stack.model_copy(update={"api_invoke_url": url}), handler
    server.shutdown()


def test_throttled_records_alone_are_resent(fake_api: tuple[Settings, type[FakeApi]]) -> None:
    settings, handler = fake_api
    handler.throttle_first = 3
    opts = StreamEmulationOptions(count=10, batch_size=10, concurrency=1, seed=7)
    summary = run_stream(settings, opts)
    assert summary.acknowledged == 30 and summary.failed == 0
    assert summary.retries == 1
    first_path, first_records = handler.calls[0]
    resent_path, resent = handler.calls[1]
    assert resent_path == first_path and resent == first_records[:3]


def test_rejected_requests_count_every_record_failed(
    fake_api: tuple[Settings, type[FakeApi]],
) -> None:
    settings, handler = fake_api
    handler.reject = True
    summary = run_stream(settings, StreamEmulationOptions(count=4, batch_size=4, seed=8))
    assert summary.sent == summary.failed == 12 and summary.acknowledged == 0
    assert summary.retries == 0
    assert all("ResourceNotFoundException" in reason for reason in summary.errors)


def test_api_down_retries_then_fails_honestly(native_stack: Settings) -> None:
    settings = native_stack.model_copy(update={"api_invoke_url": f"http://127.0.0.1:{free_port()}"})
    opts = StreamEmulationOptions(count=3, batch_size=3, max_attempts=2, seed=9)
    summary = run_stream(settings, opts)
    assert summary.failed == 9 and summary.acknowledged == 0
    assert summary.retries == summary.requests
