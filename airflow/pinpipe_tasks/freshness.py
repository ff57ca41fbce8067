"""Has the S3 sink written recently? Checked before the batch job spends a cluster on old data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from services.core.errors import TransientError
from services.core.settings import Settings
from services.core.sink_keys import SinkKeys


class StaleDataError(TransientError):
    """A topic has no recent object in the bucket: ingestion stalled (or has not started)."""


@dataclass(frozen=True)
class TopicFreshness:
    topic: str
    objects: int
    newest: datetime | None


@dataclass(frozen=True)
class Freshness:
    """What the sink's prefix holds per topic, judged against a maximum age."""

    bucket: str
    checked_at: datetime
    max_age: timedelta
    topics: tuple[TopicFreshness, ...]

    @property
    def stale(self) -> list[str]:
        """Topics whose newest object is missing or older than the maximum age."""
        cutoff = self.checked_at - self.max_age
        return [t.topic for t in self.topics if t.newest is None or t.newest < cutoff]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly (what the DAG task returns as its XCom)."""
        return {
            "bucket": self.bucket,
            "checked_at": self.checked_at.isoformat(),
            "max_age_hours": self.max_age.total_seconds() / 3600,
            "topics": {
                t.topic: {
                    "objects": t.objects,
                    "newest": t.newest.isoformat() if t.newest else None,
                }
                for t in self.topics
            },
        }


def _objects(client: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def bucket_freshness(
    settings: Settings, *, now: datetime | None = None, client: Any = None
) -> Freshness:
    """Count the sink's objects per topic and find each topic's newest one."""
    client = client or boto3.client("s3", **settings.boto3_kwargs())
    counts = {topic: 0 for topic in settings.topics.values()}
    newest: dict[str, datetime] = {}
    root = SinkKeys.of(settings).root()
    for obj in _objects(client, settings.bucket, root):
        # Keys follow topics/<topic>/partition=<p>/...; other topics may share the bucket.
        topic = obj["Key"][len(root) :].split("/", 1)[0]
        if topic not in counts:
            continue
        counts[topic] += 1
        if topic not in newest or obj["LastModified"] > newest[topic]:
            newest[topic] = obj["LastModified"]
    return Freshness(
        bucket=settings.bucket,
        checked_at=now or datetime.now(UTC),
        max_age=timedelta(hours=settings.dag_freshness_hours),
        topics=tuple(TopicFreshness(t, n, newest.get(t)) for t, n in counts.items()),
    )


def require_fresh_data(
    settings: Settings, *, now: datetime | None = None, client: Any = None
) -> dict[str, Any]:
    """The bucket's freshness summary; StaleDataError if any topic has nothing recent.

    Failing (rather than skipping) is deliberate: the sink writes all day, so a quiet topic
    means a broken ingestion path, which a skipped run would hide behind a green-ish DAG;
    the task's retries give a sink that is merely late its chance.
    """
    report = bucket_freshness(settings, now=now, client=client)
    if report.stale:
        details = ", ".join(
            f"{t.topic} ({t.objects} objects, newest {t.newest or 'none'})"
            for t in report.topics
            if t.topic in report.stale
        )
        raise StaleDataError(
            f"no object newer than {settings.dag_freshness_hours:g} h under "
            f"s3://{settings.bucket}/{SinkKeys.of(settings).root()} for {details}: is the S3 sink running? "
            "(the window is PINPIPE_DAG_FRESHNESS_HOURS)"
        )
    return report.as_dict()
