"""A Spark streaming data source that reads Kinesis with boto3: works offline, resumes exactly.

``spark.readStream.format("pinpipe_kinesis").option("streamName", "a,b").load()`` gives the
columns of Databricks' built-in ``kinesis`` source (``partitionKey``, ``data``, ``stream``,
``shardId``, ``sequenceNumber``, ``approximateArrivalTimestamp``), so the job downstream
doesn't care which of the two it reads.

Offsets are ``{stream: {shardId: position}}``. A position is the sequence number of the
last record a batch takes from that shard (compared as integers: they exceed 64 bits, so
they travel as strings), or ``SHARD_END`` once a closed shard has been read to its end. A
shard missing from an offset has not been started and is read from TRIM_HORIZON.

Kinesis can't say what its newest sequence number is, so ``latestOffset`` peeks: it keeps
one shard iterator per shard on the driver and reads forward from where it last stopped.
The executors then read each shard from the start offset (exclusive) to the end offset
(inclusive), so a batch replayed after a crash reads exactly the same records. A restarted
driver knows no positions (Spark 4.0 doesn't pass ``start`` to ``latestOffset``; 4.2 does):
it learns them from the ``resumeFrom`` option (the job passes the checkpoint's newest
offsets) or from the batch it replays, else its first peek reads from TRIM_HORIZON.
LATEST starts a new query at the newest record each shard holds, found the same way.

Resharding: a child shard (after SplitShard, MergeShards or UpdateShardCount) is started
only once every parent listed with it is at ``SHARD_END``, so a partition key's records
before the split are taken no later than its records after it. Kinesis adds shards only
by closing others, so a stream is listed at the first peek and again whenever a peek
reaches the end of a shard.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from pyspark.sql.datasource import (
    DataSource,
    DataSourceStreamReader,
    InputPartition,
)
from pyspark.sql.types import BinaryType, StringType, StructField, StructType, TimestampType

from services.core.errors import TerminalError, TransientError

log = logging.getLogger(__name__)

KINESIS_SCHEMA: Final = StructType(
    [
        StructField("partitionKey", StringType()),
        StructField("data", BinaryType()),
        StructField("stream", StringType()),
        StructField("shardId", StringType()),
        StructField("sequenceNumber", StringType()),
        StructField("approximateArrivalTimestamp", TimestampType()),
    ]
)

SHARD_END: Final = "SHARD_END"
TRIM_HORIZON: Final = "trim_horizon"
LATEST: Final = "latest"
# GetRecords returns at most 10,000 records per call; the shard's 2 MB/s limit applies anyway.
DEFAULT_FETCH: Final = 10_000
# Empty, caught-up GetRecords answers an executor tolerates before the record it was sent
# for (seen by the driver) must be considered missing.
MAX_EMPTY_POLLS: Final = 20
EMPTY_POLL_SLEEP_S: Final = 0.1

Offsets = dict[str, dict[str, str]]


def kinesis_client(options: Mapping[str, str]) -> Any:
    """A boto3 Kinesis client from the source options (botocore retries throttling)."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {"region_name": options.get("region") or "us-east-1"}
    if options.get("endpoint"):
        kwargs["endpoint_url"] = options["endpoint"]
    if options.get("awsAccessKey"):
        kwargs["aws_access_key_id"] = options["awsAccessKey"]
        kwargs["aws_secret_access_key"] = options.get("awsSecretKey")
    config = Config(retries={"max_attempts": 8, "mode": "standard"})
    return boto3.client("kinesis", config=config, **kwargs)


_WORKER_CLIENTS: dict[tuple[tuple[str, str], ...], Any] = {}


def worker_client(options: Mapping[str, str]) -> Any:
    """One client per Python worker process and options: Spark reuses workers across tasks,
    and a new client costs more than a small batch's reads."""
    key = tuple(sorted((k.lower(), str(v)) for k, v in options.items()))
    if key not in _WORKER_CLIENTS:
        _WORKER_CLIENTS[key] = kinesis_client(options)
    return _WORKER_CLIENTS[key]


def shard_iterator(client: Any, stream: str, shard: str, position: str | None) -> str:
    """An iterator just after ``position`` (a sequence number), or at the shard's start."""
    if position is None:
        kwargs: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
    else:
        kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": position}
    return str(
        client.get_shard_iterator(StreamName=stream, ShardId=shard, **kwargs)["ShardIterator"]
    )


def list_shards(client: Any, stream: str) -> list[dict[str, Any]]:
    """Every shard Kinesis still holds for ``stream``, open and closed."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamName": stream}
    while True:
        page = client.list_shards(**kwargs)
        shards += page["Shards"]
        if not page.get("NextToken"):
            return shards
        kwargs = {"NextToken": page["NextToken"]}


@dataclass
class _Cursor:
    """The driver's read-ahead position in one shard (None: nothing seen yet)."""

    position: str | None = None
    iterator: str | None = None


@dataclass
class ShardRange(InputPartition):
    """One Spark task: the records of one shard after ``start`` up to ``end``."""

    stream: str
    shard: str
    start: str | None
    end: str


class KinesisStreamReader(DataSourceStreamReader):
    """Per-shard sequence-number offsets; the driver peeks ahead, the executors read ranges."""

    def __init__(self, options: Mapping[str, str]) -> None:
        # Kept as given: dict(options) would lower-case the keys of Spark's case-insensitive
        # map, and lookups like options["streamName"] would then miss.
        self.options = options
        self.streams = [s.strip() for s in options["streamName"].split(",") if s.strip()]
        position = (options.get("initialPosition") or LATEST).lower()
        if position not in (TRIM_HORIZON, LATEST):
            raise TerminalError(f"initialPosition must be trim_horizon or latest, not {position!r}")
        self.initial_position = position
        self.fetch = int(options.get("maxRecordsPerFetch") or DEFAULT_FETCH)
        # Driver-only state, created on first use: Spark pickles a fresh reader for the
        # executors, and a boto3 client can't be pickled.
        self._client: Any = None
        self._cursors: dict[tuple[str, str], _Cursor] = {}
        self._listings: dict[str, dict[str, dict[str, Any]]] = {}
        if options.get("resumeFrom"):
            self._learn(json.loads(options["resumeFrom"]))

    # ---- driver -----------------------------------------------------------------------
    def initialOffset(self) -> Offsets:
        """TRIM_HORIZON: nothing started; LATEST: everything held now counts as taken."""
        if self.initial_position == TRIM_HORIZON:
            return {stream: {} for stream in self.streams}
        return self._advance()

    def latestOffset(self, start: Offsets | None = None, limit: Any = None) -> Offsets:
        """Peek every eligible shard up to its newest record (Spark 4.2 also passes ``start``)."""
        if start:
            self._learn(start)
        return self._advance()

    def partitions(self, start: Offsets, end: Offsets) -> list[InputPartition]:
        """One task per shard that moved between ``start`` and ``end``."""
        # After a restart the driver knows nothing; the batch being replayed tells it where
        # the query stands, so the next peek needn't start from TRIM_HORIZON.
        self._learn(end)
        ranges: list[InputPartition] = []
        for stream, shards in end.items():
            before = start.get(stream, {})
            for shard, last in sorted(shards.items()):
                first = before.get(shard)
                if first != last and first != SHARD_END:
                    ranges.append(ShardRange(stream, shard, first, last))
        return ranges

    def _kinesis(self) -> Any:
        if self._client is None:
            self._client = kinesis_client(self.options)
        return self._client

    def _learn(self, offsets: Offsets) -> None:
        for stream, shards in offsets.items():
            for shard, position in shards.items():
                self._cursors.setdefault((stream, shard), _Cursor(position))

    def _advance(self) -> Offsets:
        # The streams are peeked side by side: each peek is a few round trips to Kinesis.
        with ThreadPoolExecutor(max_workers=len(self.streams)) as pool:
            return dict(
                zip(self.streams, pool.map(self._advance_stream, self.streams), strict=True)
            )

    def _advance_stream(self, stream: str) -> dict[str, str]:
        # Kinesis only adds shards by closing others (split, merge, UpdateShardCount), so
        # the listing is refreshed when a peek reaches the end of a shard, not every trigger.
        if stream not in self._listings:
            self._listings[stream] = self._list(stream)
        peeked: set[str] = set()
        # A child becomes eligible when its parents end, which a peek may reveal: repeat
        # until no new shard qualifies, so one call reaches across any number of reshards.
        while ready := [
            shard
            for shard, info in self._listings[stream].items()
            if shard not in peeked and self._eligible(stream, info, self._listings[stream])
        ]:
            ended = False
            for shard in ready:
                ended |= self._peek(stream, shard)
                peeked.add(shard)
            if ended:
                self._listings[stream] = self._list(stream)
        shards = self._listings[stream]
        return {
            shard: cursor.position
            for (name, shard), cursor in list(self._cursors.items())
            if name == stream and shard in shards and cursor.position is not None
        }

    def _list(self, stream: str) -> dict[str, dict[str, Any]]:
        return {s["ShardId"]: s for s in list_shards(self._kinesis(), stream)}

    def _eligible(self, stream: str, shard: dict[str, Any], shards: Mapping[str, Any]) -> bool:
        if (stream, shard["ShardId"]) in self._cursors:
            return True
        parents = (shard.get("ParentShardId"), shard.get("AdjacentParentShardId"))
        return all(
            parent is None
            or parent not in shards  # past retention: nothing left to read before the child
            or self._cursors.get((stream, parent), _Cursor()).position == SHARD_END
            for parent in parents
        )

    def _peek(self, stream: str, shard: str) -> bool:
        """Move the shard's cursor to its newest record; True if it just reached SHARD_END."""
        cursor = self._cursors.setdefault((stream, shard), _Cursor())
        if cursor.position == SHARD_END:
            return False
        client = self._kinesis()
        while True:
            if cursor.iterator is None:
                cursor.iterator = shard_iterator(client, stream, shard, cursor.position)
            try:
                page = client.get_records(ShardIterator=cursor.iterator, Limit=self.fetch)
            except client.exceptions.ExpiredIteratorException:
                cursor.iterator = None
                continue
            if page["Records"]:
                cursor.position = page["Records"][-1]["SequenceNumber"]
            cursor.iterator = page.get("NextShardIterator")
            if cursor.iterator is None:
                log.info("stream %s shard %s: read to its end (closed)", stream, shard)
                cursor.position = SHARD_END
                return True
            # Stop once caught up. An empty page while behind is a gap in a sparse shard,
            # not the end: stopping there could, after a restart, return an offset behind
            # the checkpoint's.
            if not page.get("MillisBehindLatest"):
                return False

    # ---- executors --------------------------------------------------------------------
    def read(self, partition: InputPartition) -> Iterator[tuple[Any, ...]]:
        """The records of one shard range, in sequence order."""
        assert isinstance(partition, ShardRange)
        return read_range(worker_client(self.options), partition, self.fetch)


def read_range(client: Any, part: ShardRange, fetch: int) -> Iterator[tuple[Any, ...]]:
    """Rows of ``part``: after ``start`` (exclusive) up to ``end`` (inclusive, or SHARD_END)."""
    to_end = part.end == SHARD_END
    last = None if to_end else int(part.end)
    position = part.start
    iterator: str | None = shard_iterator(client, part.stream, part.shard, position)
    empty = 0
    while iterator is not None:
        try:
            page = client.get_records(ShardIterator=iterator, Limit=fetch)
        except client.exceptions.ExpiredIteratorException:
            iterator = shard_iterator(client, part.stream, part.shard, position)
            continue
        for record in page["Records"]:
            seq = record["SequenceNumber"]
            if last is not None and int(seq) > last:
                return
            yield (
                record.get("PartitionKey"),
                record["Data"],
                part.stream,
                part.shard,
                seq,
                record.get("ApproximateArrivalTimestamp"),
            )
            position = seq
            if last is not None and int(seq) == last:
                return
        iterator = page.get("NextShardIterator")
        if page["Records"] or page.get("MillisBehindLatest"):
            empty = 0
            continue
        # Caught up, yet the end record (seen by the driver) is not here yet: give Kinesis
        # a moment, then let Spark retry the task.
        empty += 1
        if empty >= MAX_EMPTY_POLLS:
            raise TransientError(
                f"stream {part.stream} shard {part.shard}: record {part.end} not reached "
                f"after {empty} empty reads (last read {position})"
            )
        time.sleep(EMPTY_POLL_SLEEP_S)
    if not to_end:
        raise TerminalError(
            f"stream {part.stream} shard {part.shard} ended before record {part.end}: "
            "the shard was deleted or its records expired"
        )


class KinesisDataSource(DataSource):
    """``format("pinpipe_kinesis")``: Kinesis streams as a Spark stream, with exact offsets.

    Options (Databricks' names): ``streamName`` (comma-separated), ``initialPosition``
    (``trim_horizon`` or ``latest``), ``region``, ``endpoint``, ``awsAccessKey``,
    ``awsSecretKey``, ``maxRecordsPerFetch``; and ``resumeFrom``, offsets JSON where a
    restarted driver may start peeking (a hint: the checkpoint still decides what is read).
    """

    @classmethod
    def name(cls) -> str:
        return "pinpipe_kinesis"

    def schema(self) -> StructType:
        return KINESIS_SCHEMA

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return KinesisStreamReader(self.options)
