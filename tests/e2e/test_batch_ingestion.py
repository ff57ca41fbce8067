"""Emulator → API Gateway → REST proxy → Kafka → S3 sink → S3, compared record by record."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from emulator.batch_mode import EmulationOptions, run_batch
from emulator.sampler import RowSampler
from services.core.settings import Settings
from services.source_db.database import make_engine
from tests.conftest import start_sink, user_of_its_own

pytestmark = pytest.mark.e2e

EVENTS = 50


@pytest.fixture
def own_user(native_stack: Settings) -> Settings:
    return user_of_its_own(native_stack, "e2e")


def _bucket_records(settings: Settings, topic: str) -> tuple[list[str], list[dict]]:
    s3 = boto3.client("s3", **settings.boto3_kwargs())
    keys = sorted(
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.bucket, Prefix=f"topics/{topic}/"
        )
        for o in page.get("Contents", [])
    )
    records = []
    for key in keys:
        body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read().decode()
        records += [json.loads(line) for line in body.splitlines() if line]
    return keys, records


@pytest.mark.parametrize("flush_size", [1, 25])
def test_s3_holds_exactly_the_posted_records(own_user: Settings, flush_size: int) -> None:
    settings = own_user
    sink = start_sink(settings, flush_size)
    try:
        opts = EmulationOptions(count=EVENTS, seed=flush_size, batch_size=10, concurrency=1)
        summary = run_batch(settings, opts)  # through the API Gateway invoke URL
        assert summary.target == settings.resolved_api_invoke_url()
        assert summary.acknowledged == 3 * EVENTS and summary.failed == 0

        engine = make_engine(settings.db)
        events = RowSampler(engine, seed=flush_size).sample(EVENTS)
        engine.dispose()
        deadline = time.monotonic() + 90
        for table, topic in settings.topics.items():
            expected = [e.by_table()[table] for e in events]
            keys, records = _bucket_records(settings, topic)
            while len(records) < EVENTS and time.monotonic() < deadline:
                time.sleep(1)
                keys, records = _bucket_records(settings, topic)
            assert records == expected, topic
            assert keys == [
                f"topics/{topic}/partition=0/{topic}+0+{offset:010d}.json"
                for offset in range(0, EVENTS, flush_size)
            ]
    finally:
        sink.terminate()
        sink.wait(timeout=30)
