"""The freshness check against an S3 bucket (moto): fresh, stale and missing topics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pinpipe_tasks.freshness import StaleDataError, bucket_freshness, require_fresh_data

from services.core.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def settings() -> Settings:
    return Settings(user_id="tfresh1", runtime="aws", dag_freshness_hours=24)


@pytest.fixture
def s3(settings: Settings) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=settings.bucket)
        yield client


def put(s3: Any, settings: Settings, table: str, offset: int) -> None:
    topic = settings.topics[table]
    key = f"topics/{topic}/partition=0/{topic}+0+{offset:010d}.json"
    s3.put_object(Bucket=settings.bucket, Key=key, Body=b"{}")


def test_every_topic_with_a_recent_object_is_fresh(s3: Any, settings: Settings) -> None:
    for table in ("pin", "geo", "user"):
        put(s3, settings, table, 0)
        put(s3, settings, table, 1)
    put(s3, settings, "pin", 2)
    # Another user's topic in the same bucket is not counted.
    s3.put_object(Bucket=settings.bucket, Key="topics/other.pin/partition=0/x.json", Body=b"{}")

    summary = require_fresh_data(settings, client=s3)

    assert summary["bucket"] == settings.bucket
    assert {t: v["objects"] for t, v in summary["topics"].items()} == {
        settings.topics["pin"]: 3,
        settings.topics["geo"]: 2,
        settings.topics["user"]: 2,
    }
    assert all(v["newest"] for v in summary["topics"].values())


def test_a_topic_without_objects_is_stale(s3: Any, settings: Settings) -> None:
    put(s3, settings, "pin", 0)
    put(s3, settings, "geo", 0)

    with pytest.raises(StaleDataError, match=r"tfresh1\.user \(0 objects, newest none\)"):
        require_fresh_data(settings, client=s3)


def test_objects_older_than_the_window_are_stale(s3: Any, settings: Settings) -> None:
    for table in ("pin", "geo", "user"):
        put(s3, settings, table, 0)
    tomorrow = datetime.now(UTC) + timedelta(hours=25)

    report = bucket_freshness(settings, now=tomorrow, client=s3)

    assert sorted(report.stale) == sorted(settings.topics.values())
    with pytest.raises(StaleDataError, match="PINPIPE_DAG_FRESHNESS_HOURS"):
        require_fresh_data(settings, now=tomorrow, client=s3)


def test_an_empty_bucket_is_stale(s3: Any, settings: Settings) -> None:
    with pytest.raises(StaleDataError, match="is the S3 sink running"):
        require_fresh_data(settings, client=s3)
