"""A Spark Python data source reading the S3 sink's objects, line by line, without s3a.

``spark.read.format("pinpipe_s3_lines").option("bucket", ...).option("prefix", ...)``
lists the objects on the driver (one listing per ``partition=N/`` folder, in parallel),
splits the keys across Spark tasks, and each task GETs its objects with a thread pool
and its own boto3 client (clients can't be pickled). With ``flush.size=1`` the sink writes
one object per record, so per-object latency, not bytes, decides the speed.

Each row is one line of one object: the topic, the Kafka partition and offset (from the
Confluent key, parsed by ``SinkKeys`` with the layout the ``keys`` option gives, plus the
line number), the key, the line's number in its object and the raw line. Parsing the JSON is left to Spark (``from_json`` with an explicit schema).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from services.core.sink_keys import SinkKeys

LINES_SCHEMA = StructType(
    [
        StructField("topic", StringType()),
        StructField("partition", IntegerType()),
        StructField("offset", LongType()),
        StructField("key", StringType()),
        StructField("line", IntegerType()),
        StructField("value", StringType()),
    ]
)


def _client(options: dict[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {"region_name": options.get("region") or "us-east-1"}
    if options.get("endpoint_url"):
        kwargs["endpoint_url"] = options["endpoint_url"]
        kwargs["aws_access_key_id"] = options.get("access_key_id") or "test"
        kwargs["aws_secret_access_key"] = options.get("secret_access_key") or "test"
    threads = int(options.get("threads") or 8)
    config = Config(
        max_pool_connections=threads * 2, retries={"max_attempts": 5, "mode": "standard"}
    )
    return boto3.client("s3", config=config, **kwargs)


def list_keys(options: dict[str, str]) -> list[str]:
    """Every ``.json`` key under the prefix."""
    return [key for key, _ in list_objects(options)]


def list_objects(options: dict[str, str]) -> list[tuple[str, int]]:
    """Every ``.json`` object (key, size) under the prefix, each sub-folder listed in parallel."""
    client = _client(options)
    bucket, prefix = options["bucket"], options.get("prefix", "")

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


@dataclass
class KeyRange(InputPartition):
    """The keys one Spark task reads."""

    keys: list[str]


class S3LinesReader(DataSourceReader):
    def __init__(self, options: dict[str, str]) -> None:
        self.options = options

    def partitions(self) -> list[InputPartition]:
        """Split by object count (latency-bound small objects) and by bytes (large ones)."""
        objects = list_objects(self.options)
        per_task = int(self.options.get("objects_per_task") or 2_000)
        per_task_bytes = int(self.options.get("bytes_per_task") or 32 * 2**20)
        min_tasks = int(self.options.get("min_tasks") or 1)
        max_tasks = int(self.options.get("max_tasks") or 64)
        total = sum(size for _, size in objects)
        wanted = max(-(-len(objects) // per_task), -(-total // per_task_bytes), min_tasks)
        tasks = max(1, min(max_tasks, len(objects), wanted))
        keys = [key for key, _ in objects]
        return [KeyRange(keys[i::tasks]) for i in range(tasks)]

    def read(self, partition: InputPartition) -> Iterator[tuple[Any, ...]]:
        assert isinstance(partition, KeyRange)
        client = _client(self.options)
        bucket = self.options["bucket"]
        threads = int(self.options.get("threads") or 8)
        keys = SinkKeys(**json.loads(self.options.get("keys") or "{}"))

        def fetch(key: str) -> tuple[str, bytes]:
            return key, client.get_object(Bucket=bucket, Key=key)["Body"].read()

        with ThreadPoolExecutor(max_workers=threads) as pool:
            for key, body in pool.map(fetch, partition.keys):
                topic, part, start = keys.parse(key) or (None, None, None)
                # Split on "\n" only, as Spark's wholetext reader is split: line numbers agree.
                for i, line in enumerate(body.decode("utf-8", errors="replace").split("\n")):
                    if line.strip():
                        yield (topic, part, None if start is None else start + i, key, i, line)


class S3LinesDataSource(DataSource):
    """``format("pinpipe_s3_lines")``: one row per line of the S3 sink's objects."""

    @classmethod
    def name(cls) -> str:
        return "pinpipe_s3_lines"

    def schema(self) -> StructType:
        return LINES_SCHEMA

    def reader(self, schema: StructType) -> DataSourceReader:
        return S3LinesReader(self.options)
