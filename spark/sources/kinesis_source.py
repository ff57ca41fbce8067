"""A Spark streaming data source that reads Kinesis with boto3: works offline, resumes exactly.

``spark.readStream.format("pinpipe_kinesis").option("streamName", "a,b").load()`` gives the
columns of Databricks' built-in ``kinesis`` source (``partitionKey``, ``data``, ``stream``,
``shardId``, ``sequenceNumber``, ``approximateArrivalTimestamp``), so the job downstream
doesn't care which of the two it reads.

Offsets are ``{stream: {shardId: position}}``. A position is the sequence number of the
last record a batch takes from that shard (compared as integers: they exceed 64 bits, so
they travel as strings), or ``SHARD_END`` once a closed shard has been read to its end. A
shard missing from an offset has not been started and is read from TRIM_HORIZON.

Kinesis can't say what its newest sequence number is, so each trigger peeks: the driver
keeps one shard iterator per shard and reads forward from where it last stopped. The records
a peek fetched are the batch (a ``SimpleDataSourceStreamReader``): Spark sends them from the
driver to the executors itself, so Kinesis is read once and no Python task runs on an
executor, which at a trigger's worth of records costs more than the reading. A batch Spark
replays after a crash (start offset exclusive, end offset inclusive, per shard) is read from
Kinesis again with exactly the same records, as is a range the driver doesn't hold from its
start (a backlog past ``MAX_CARRIED_BYTES`` per shard, read once more on the driver).
A restarted driver knows no positions (Spark 4.0 starts its first peek from the initial
offset, not the checkpoint's): it learns them from the ``resumeFrom`` option (the job passes
the checkpoint's newest offsets), else its first peek reads from TRIM_HORIZON. LATEST starts
a new query at the newest record each shard holds, found the same way.

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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Final

from pyspark.sql.datasource import DataSource, SimpleDataSourceStreamReader
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
# Empty, caught-up GetRecords answers a replay tolerates before the record it was sent for
# (seen by a peek) must be considered missing.
MAX_EMPTY_POLLS: Final = 20
EMPTY_POLL_SLEEP_S: Final = 0.1
# The records a peek fetched make the batch up to this many bytes of data per shard; a larger
# range (a backlog) is read from Kinesis again instead of held in memory.
MAX_CARRIED_BYTES: Final = 8 * 1024 * 1024

Offsets = dict[str, dict[str, str]]
Row = tuple[Any, ...]


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
    """The driver's read-ahead position in one shard (None: nothing seen yet), and the rows
    its peeks fetched since ``carried_from`` (exclusive; None: the shard's start), in order.

    ``carried`` is None once the rows outgrow ``MAX_CARRIED_BYTES``: that range is read from
    Kinesis again, and carrying starts again from where the peeks stand.
    """

    position: str | None = None
    iterator: str | None = None
    carried: list[Row] | None = field(default_factory=list)
    carried_from: str | None = None
    carried_bytes: int = 0

    def __post_init__(self) -> None:
        self.carried_from = self.position

    def carry(self, rows: list[Row]) -> None:
        if self.carried is None:
            return
        self.carried_bytes += sum(len(row[1]) for row in rows)
        if self.carried_bytes > MAX_CARRIED_BYTES:
            self.carried = None
        else:
            self.carried += rows

    def restart_carrying(self) -> None:
        """Carry from where the peeks stand (what was carried is dropped)."""
        self.carried, self.carried_from, self.carried_bytes = [], self.position, 0

    def take(self, start: str | None, end: str) -> tuple[Row, ...] | None:
        """The carried rows after ``start`` up to ``end``, or None when they aren't all here;
        either way carrying goes on from ``end``."""
        carried, carried_from = self.carried, self.carried_from
        if carried is None:
            self.restart_carrying()
            return None
        if end == SHARD_END:
            taken, rest = carried, []
        else:
            last = int(end)
            cut = next((i for i, row in enumerate(carried) if int(row[4]) > last), len(carried))
            taken, rest = carried[:cut], carried[cut:]
        self.carried, self.carried_from = rest, end
        self.carried_bytes = sum(len(row[1]) for row in rest)
        complete = end == SHARD_END and self.position == SHARD_END
        complete |= bool(taken) and taken[-1][4] == end
        return tuple(taken) if carried_from == start and complete else None


@dataclass
class ShardRange:
    """The records of one shard after ``start`` (None: from its start) up to ``end``."""

    stream: str
    shard: str
    start: str | None
    end: str


def shard_ranges(start: Offsets, end: Offsets) -> list[ShardRange]:
    """The shards that moved between two offsets, in a stable order."""
    ranges: list[ShardRange] = []
    for stream, shards in end.items():
        before = start.get(stream, {})
        for shard, last in sorted(shards.items()):
            first = before.get(shard)
            if first != last and first != SHARD_END:
                ranges.append(ShardRange(stream, shard, first, last))
    return ranges


class KinesisStreamReader(SimpleDataSourceStreamReader):
    """Per-shard sequence-number offsets; the driver peeks ahead, and what it fetched is the
    batch."""

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
        # Driver-only state, created on first use: Spark pickles a fresh reader for a
        # replay's task, and a boto3 client can't be pickled.
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
        offsets = self._advance()
        for cursor in self._cursors.values():
            cursor.restart_carrying()  # what the streams held before is not read
        return offsets

    def read(self, start: Offsets) -> tuple[Iterator[Row], Offsets]:
        """Peek every eligible shard up to its newest record: the records after ``start``,
        and the offsets they reach."""
        self._learn(start)
        end = self._advance()
        rows: list[Row] = []
        missing: list[ShardRange] = []
        for part in shard_ranges(start, end):
            taken = self._cursors[(part.stream, part.shard)].take(part.start, part.end)
            if taken is None:
                missing.append(part)
            else:
                rows += taken
        if not missing:
            return iter(rows), end
        return _Rows(rows, missing, self._kinesis, self.fetch), end

    def readBetweenOffsets(self, start: Offsets, end: Offsets) -> Iterator[Row]:
        """A batch Spark replays (after a restart): its ranges read from Kinesis again."""
        client = worker_client(self.options)
        return chain.from_iterable(
            read_range(client, part, self.fetch) for part in shard_ranges(start, end)
        )

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
                cursor.carry([_row(stream, shard, record) for record in page["Records"]])
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


class _Rows:
    """A batch's rows: those the peeks carried, then ranges read from Kinesis, but only once
    iterated. A restarted driver's first read starts where Spark's checkpoint doesn't, and
    Spark never asks for it (it reads the batch it plans with ``readBetweenOffsets``)."""

    def __init__(
        self, carried: list[Row], ranges: list[ShardRange], client: Callable[[], Any], fetch: int
    ) -> None:
        self.carried, self.ranges, self.client, self.fetch = carried, ranges, client, fetch
        self._rows: Iterator[Row] | None = None

    def __iter__(self) -> Iterator[Row]:
        return self

    def __next__(self) -> Row:
        if self._rows is None:  # a copy made before the first row reads on its own
            client = self.client()
            self._rows = chain(
                self.carried,
                chain.from_iterable(read_range(client, r, self.fetch) for r in self.ranges),
            )
        return next(self._rows)


def _row(stream: str, shard: str, record: Mapping[str, Any]) -> Row:
    """A GetRecords record as a row of ``KINESIS_SCHEMA``."""
    return (
        record.get("PartitionKey"),
        record["Data"],
        stream,
        shard,
        record["SequenceNumber"],
        record.get("ApproximateArrivalTimestamp"),
    )


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
            yield _row(part.stream, part.shard, record)
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

    def simpleStreamReader(self, schema: StructType) -> SimpleDataSourceStreamReader:
        return KinesisStreamReader(self.options)
