"""The S3 sink's objects, listed and fetched with boto3 on the driver, without s3a.

With ``flush.size=1`` the sink writes one object per record, so per-object latency, not
bytes, decides the speed: the driver lists every ``partition=N/`` folder in parallel and
GETs the objects from one thread pool, one connection per thread, into a local Parquet
spool (one row per object: its table, key and body), which Spark reads and splits into
lines (``loading.py``); the driver never touches a line. The spool is on the driver's disk,
so this reader is for a local session (the native runtime); a cluster reads the bucket with
``--reader spark``.

Measured against a Spark Python data source that did the same GETs in Spark tasks: as fast
once warm, but its Python workers cost 4-5 s in a new session, most of a small job's time.
Handing the objects to ``createDataFrame`` instead of a spool puts them inside the tasks:
1M rows made 250 MB tasks and ran the driver out of memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from services.core.settings import Settings

# GETs in flight: LocalStack on 2 cores serves most with about 16, S3 with many more.
FETCH_THREADS = 16
# Bytes of objects per row group of the spool: Spark splits the spool between row groups.
SPOOL_CHUNK_BYTES = 16 * 2**20


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


Listing = list[tuple[str, tuple[str, int]]]  # (name, (key, size)) of each object


def list_prefixes(client: Any, bucket: str, prefixes: dict[str, str]) -> Listing:
    """Every object under each name's prefix (``list_objects``), the prefixes side by side."""
    with ThreadPoolExecutor(max_workers=max(1, len(prefixes))) as pool:
        found = pool.map(lambda prefix: list_objects(client, bucket, prefix), prefixes.values())
        return [(name, obj) for name, objs in zip(prefixes, found, strict=True) for obj in objs]


def fetch_objects(
    client: Any, bucket: str, listed: Listing, spool: Path, threads: int = FETCH_THREADS
) -> int:
    """GET every listed object (``list_prefixes``) into a Parquet file in ``spool``: columns
    ``name``, ``key`` and ``body`` (text), with a client of ``threads`` connections. Returns
    how many objects.

    Objects are fetched and written a chunk at a time (about ``SPOOL_CHUNK_BYTES``, one row
    group each), so the driver holds one chunk, never the bucket, and Spark reads the file
    in as many splits as it has cores. A body that is not UTF-8 keeps its readable lines
    (undecodable bytes become U+FFFD): the bad record is quarantined as malformed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    def get(key: str) -> str:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body.decode("utf-8", errors="replace")

    schema = pa.schema([("name", pa.string()), ("key", pa.string()), ("body", pa.large_string())])
    spool.mkdir(parents=True, exist_ok=True)
    with (
        ThreadPoolExecutor(max_workers=threads) as pool,
        pq.ParquetWriter(spool / "objects.parquet", schema, compression="none") as writer,
    ):
        # A chunk never mixes two names, so a name's reader skips the others' row groups.
        for chunk in _chunks(listed):
            keys = [key for _, (key, _) in chunk]
            bodies = list(pool.map(get, keys))
            names = [name for name, _ in chunk]
            writer.write_table(pa.table([names, keys, bodies], schema=schema))
        if not listed:
            writer.write_table(schema.empty_table())
    return len(listed)


def _chunks(
    listed: list[tuple[str, tuple[str, int]]],
) -> Iterator[list[tuple[str, tuple[str, int]]]]:
    """Consecutive runs of one name's objects, about ``SPOOL_CHUNK_BYTES`` each (listed size)."""
    chunk: list[tuple[str, tuple[str, int]]] = []
    size = 0
    for item in listed:
        if chunk and chunk[-1][0] != item[0]:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item[1][1]
        if size >= SPOOL_CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


class Spool:
    """The objects under each name's prefix, fetched into ``folder`` (``fetch_objects``):
    now, or in the background from ``start()`` on, so that a new process fetches the bucket
    while its Spark session starts. ``start`` lists them first, so the input's size can
    choose the session's settings."""

    def __init__(self, settings: Settings, prefixes: dict[str, str], folder: Path) -> None:
        self.settings = settings
        self.prefixes = prefixes
        self.folder = folder
        self.listed: Listing | None = None
        self._pending: Future[int] | None = None

    def start(self) -> Spool:
        """List the objects now (``size`` is known from here on), GET them in the background."""
        client = s3_client(self.settings, FETCH_THREADS)
        self.listed = list_prefixes(client, self.settings.bucket, self.prefixes)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._pending = pool.submit(
            fetch_objects, client, self.settings.bucket, self.listed, self.folder
        )
        pool.shutdown(wait=False)  # the thread ends with the fetch
        return self

    @property
    def size(self) -> int:
        """Bytes of every object listed (``start`` lists them)."""
        if self.listed is None:
            raise RuntimeError("the spool lists its objects when it starts")
        return sum(size for _, (_, size) in self.listed)

    def wait(self) -> Path:
        """The folder, once every object is in it (a failed fetch raises here)."""
        pending = self._pending or self.start()._pending
        assert pending is not None
        pending.result()
        return self.folder
