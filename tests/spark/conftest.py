"""Fixtures of the streaming tests: streams, tables and checkpoints of a test's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pyarrow as pa
import pytest

from services.core.settings import TABLES, Settings
from services.core.waiting import poll
from spark.sinks.tables import read_warehouse_table
from tests.conftest import unique_name


def kinesis(settings: Settings) -> Any:
    """A boto3 Kinesis client of the test stack."""
    return boto3.client("kinesis", **settings.boto3_kwargs())


def create_streams(settings: Settings, names: list[str], shards: int = 1) -> None:
    """Create the streams and wait until they are active."""
    client = kinesis(settings)
    for name in names:
        client.create_stream(StreamName=name, ShardCount=shards)
    for name in names:
        client.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60}
        )


def delete_streams(settings: Settings, names: list[str]) -> None:
    """Delete the streams (a test's own)."""
    client = kinesis(settings)
    for name in names:
        client.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


@pytest.fixture
def stream_settings(native_stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a user id of the test's own: its three streams, tables and checkpoints."""
    settings = native_stack.model_copy(
        update={
            "user_id": unique_name("s"),
            "warehouse_uri": str(tmp_path / "warehouse"),
            "stream_checkpoint_root": str(tmp_path / "checkpoints"),
            "stream_trigger_seconds": 1.0,
        }
    )
    streams = list(settings.streams.values())
    create_streams(settings, streams)
    yield settings
    delete_streams(settings, streams)


def api_put(settings: Settings, stream: str, records: list[tuple[str, Any]]) -> None:
    """PUT ``(partition key, Data)`` pairs through the API Gateway, Data sent as given."""
    body = {"records": [{"data": data, "partition-key": key} for key, data in records]}
    url = f"{settings.resolved_api_invoke_url()}/streams/{stream}/records"
    resp = httpx.put(url, json=body, timeout=60)
    resp.raise_for_status()
    assert resp.json()["FailedRecordCount"] == 0, resp.text


def delta_rows(settings: Settings, name: str) -> list[dict[str, Any]]:
    """A Delta table's rows as Python values, ordered by ``ind`` (none before it exists)."""
    table = read_warehouse_table(settings, name)
    rows = [] if table is None else table.to_pylist()
    return sorted(rows, key=lambda r: (r.get("ind") is None, r.get("ind") or 0))


def arrow_rows(table: pa.Table) -> list[dict[str, Any]]:
    """An Arrow table's rows as Python values, ordered by ``ind``."""
    return sorted(table.to_pylist(), key=lambda r: r["ind"])


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.5) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    poll(check, what, timeout, every=every)


def tables_hold(settings: Settings, inds: dict[str, set[int]]) -> Callable[[], bool]:
    """A check: each cleaned table holds at least the given inds."""

    def check() -> bool:
        return all(
            inds[t] <= {r["ind"] for r in delta_rows(settings, settings.delta_tables[t])}
            for t in TABLES
        )

    return check
