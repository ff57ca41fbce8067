"""The S3 sink's objects, listed and fetched with boto3 on the driver, without s3a.

With ``flush.size=1`` the sink writes one object per record, so per-object latency, not
bytes, decides the speed: the driver lists every ``partition=N/`` folder in parallel and
GETs the objects from one thread pool, one connection per thread. The result is one Arrow
row per object (its table, key and body), which Spark takes as it is and splits into lines
(``loading.py``); the driver never touches a line.

Measured against a Spark Python data source that did the same GETs in Spark tasks
(``make bench --only batch``): as fast once warm, but the data source's Python workers
cost 4-5 s in a new session, most of a small job's time.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from services.core.settings import Settings

# GETs in flight: LocalStack on 2 cores serves most with about 16, S3 with many more.
FETCH_THREADS = 16


def s3_client(settings: Settings, connections: int) -> Any:
    """A boto3 S3 client for the settings' endpoint with a connection per thread; retries
    with backoff on throttling and 5xx (transient), none on 403/404 (terminal)."""
    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=connections, retries={"max_attempts": 5, "mode": "standard"}
    )
    return boto3.client("s3", config=config, **settings.boto3_kwargs())


def list_objects(client: Any, bucket: str, prefix: str) -> list[tuple[str, int]]:
    """Every ``.json`` object (key, size) under the prefix, each sub-folder listed in parallel."""

    def list_all(pfx: str) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=pfx):
            found += [
                (o["Key"], int(o["Size"]))
                for o in page.get("Contents", [])
                if o["Key"].endswith(".json")
            ]
        return found

    folders = [
        p["Prefix"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        )
        for p in page.get("CommonPrefixes", [])
    ]
    if not folders:
        return sorted(list_all(prefix))
    with ThreadPoolExecutor(max_workers=min(len(folders), 16)) as pool:
        return sorted(o for found in pool.map(list_all, folders) for o in found)


def list_keys(client: Any, bucket: str, prefixes: Iterable[str]) -> list[str]:
    """Every ``.json`` key under each prefix, in key order per prefix."""
    return [key for prefix in prefixes for key, _ in list_objects(client, bucket, prefix)]


def fetch_objects(
    settings: Settings, prefixes: dict[str, str], threads: int = FETCH_THREADS
) -> pa.Table:
    """Every object under each name's prefix: columns ``name``, ``key`` and ``body`` (text).

    A body that is not UTF-8 keeps its readable lines (undecodable bytes become U+FFFD),
    so the bad record is quarantined as malformed rather than failing the run.
    """
    import pyarrow as pa

    client = s3_client(settings, threads)
    bucket = settings.bucket
    with ThreadPoolExecutor(max_workers=max(1, len(prefixes))) as pool:
        found = pool.map(lambda prefix: list_keys(client, bucket, [prefix]), prefixes.values())
        listed = [(name, key) for name, keys in zip(prefixes, found, strict=True) for key in keys]

    def get(key: str) -> str:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body.decode("utf-8", errors="replace")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        bodies = list(pool.map(get, [key for _, key in listed]))
    return pa.table(
        {
            "name": pa.array([name for name, _ in listed], pa.string()),
            "key": pa.array([key for _, key in listed], pa.string()),
            # large_string: a million rows in a few objects pass 2 GiB of text in one column.
            "body": pa.array(bodies, pa.large_string()),
        }
    )
