"""Micro-batches into Delta tables exactly once: quarantine, clean, merge by ``ind``.

``foreachBatch`` is at-least-once: after a crash Spark runs the last batch again with the
same id and the same records. Every commit here carries a Delta app transaction
``(app_id, batch_id)``, and a table whose transaction version for ``app_id`` already
reached ``batch_id`` is skipped, so a replayed batch changes nothing it already wrote and
completes what it didn't. ``app_id`` is the streaming query's id, which lives in the
checkpoint: a new checkpoint starts batch ids at 0 again under a new id.

The cleaned tables are MERGEd on ``ind`` (insert when not matched, nothing otherwise)
rather than appended: the emulator samples with replacement, so the same post arrives
again in later batches, and each table keeps one row per ``ind`` like the batch path's
tables. Cleaning keeps the first arrival per ``ind`` within a batch, and the insert-only
merge keeps the first across batches: the batch path's rule (first by source position). The quarantine is appended:
``table, reason, stream, shardId, sequenceNumber, partitionKey,
approximateArrivalTimestamp, data`` (the record's bytes), ``payload`` (its decoded text,
when it decoded) and ``batch_id``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from services.core.errors import ConfigError
from services.core.settings import Settings
from spark.session import use_s3a
from spark.sinks.tables import (
    ArrowUnion,
    collect_arrow,
    read_warehouse_table,
    storage_options,
    table_uri,
)
from spark.sources.kinesis_source import KINESIS_SCHEMA
from spark.transformations.cleaning import CLEANERS, IND, REASON, named_columns
from spark.transformations.payloads import PAYLOAD, split_payloads

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS: Final = (
    "table",
    REASON,
    "stream",
    "shardId",
    "sequenceNumber",
    "partitionKey",
    "approximateArrivalTimestamp",
    "data",
    PAYLOAD,
    "batch_id",
)
QUERY_ID_PROPERTY: Final = "sql.streaming.queryId"
QUARANTINE: Final = "quarantine"  # the quarantine's key among a batch's tables
# A merged table gains a small file per micro-batch, and an insert-only MERGE reads every
# file of its target. Measured with delta-rs, 30 rows a merge: 15 ms against 10 files,
# 140 ms against 300, 231 ms against 1,000, and 25 ms again once those 1,000 were
# compacted (which took 0.33 s). So a merged table is compacted once it holds this many.
COMPACT_AT_FILES: Final = 64


class TableWriter(Protocol):
    """Writes one micro-batch's rows to a table, once per ``(app_id, batch_id)``."""

    # True when ``prepare`` collects the frames to Arrow with ``collect_arrow``: the sink
    # may then collect them itself from a plan it built once (``PlanTemplate``).
    collects_arrow: ClassVar[bool]

    def prepare(self, frames: Mapping[str, DataFrame]) -> Mapping[str, DataFrame | pa.Table]:
        """The rows ``write`` is given for each frame: collected, or the frames themselves."""

    def write(
        self, rows: DataFrame | pa.Table, uri: str, key: str | None, app_id: str, batch_id: int
    ) -> int | None:
        """Merge on ``key`` (append when None); the rows the table gained, or None if the
        batch was already written."""

    def count(self, uri: str) -> int:
        """Rows the table holds now (0 before its first write)."""


class DeltaRsWriter:
    """delta-rs: the micro-batch goes to Arrow and is committed without Spark's Delta jars.

    A micro-batch's tables are collected in one Spark job (``collect_arrow``): at a
    trigger's worth of records, each job costs more in scheduling than in work. Each table
    is opened once and brought up to date with the commits since (``update_incremental``),
    not read from its log again every micro-batch. A merged table is compacted after the
    write that takes it to ``compact_at`` files, so a long run's MERGE doesn't slow down.
    """

    collects_arrow: ClassVar[bool] = True

    def __init__(self, settings: Settings, compact_at: int = COMPACT_AT_FILES) -> None:
        self.storage = storage_options(settings) or None
        self.compact_at = compact_at
        self._tables: dict[str, DeltaTable] = {}

    def _table(self, uri: str) -> DeltaTable | None:
        """The table at ``uri``, up to date (None before it exists)."""
        from deltalake import DeltaTable

        table = self._tables.get(uri)
        if table is not None:
            table.update_incremental()
            return table
        if not DeltaTable.is_deltatable(uri, storage_options=self.storage):
            return None
        table = self._tables[uri] = DeltaTable(uri, storage_options=self.storage)
        return table

    def prepare(self, frames: Mapping[str, DataFrame]) -> Mapping[str, DataFrame | pa.Table]:
        return collect_arrow(frames)

    def write(
        self, rows: DataFrame | pa.Table, uri: str, key: str | None, app_id: str, batch_id: int
    ) -> int | None:
        from deltalake import CommitProperties, Transaction, write_deltalake

        table = self._table(uri)
        if table is not None:
            done = table.transaction_version(app_id)
            if done is not None and done >= batch_id:
                return None
        if isinstance(rows, DataFrame):
            rows = rows.toArrow()
        if rows.num_rows == 0:
            # Nothing to commit, so no transaction either: a replay of this batch comes
            # here again and again writes nothing.
            return 0
        commit = CommitProperties(app_transactions=[Transaction(app_id, batch_id)])
        if key is None or table is None:
            write_deltalake(
                uri, rows, mode="append", storage_options=self.storage, commit_properties=commit
            )
            return int(rows.num_rows)
        metrics = (
            table.merge(
                rows,
                predicate=f"t.{key} = s.{key}",
                source_alias="s",
                target_alias="t",
                commit_properties=commit,
            )
            .when_not_matched_insert_all()
            .execute()
        )
        self._compact(table, uri)
        # An insert-only MERGE whose rows all match inserts nothing, and delta-rs then
        # commits nothing (no transaction recorded): a replay of it merges again, which
        # again inserts nothing.
        return int(metrics.get("num_target_rows_inserted", rows.num_rows))

    def _compact(self, table: DeltaTable, uri: str) -> None:
        """Bin-pack the table's files once there are ``compact_at`` of them.

        The compaction's commit rewrites files, not rows, and the app transactions stay in
        the table's state, so a replayed batch is still recognised. It is an optimisation:
        when it fails (a concurrent writer, storage), the batch stands, and the next write
        tries again.
        """
        from deltalake.exceptions import DeltaError

        files = len(table.file_uris())
        if files < self.compact_at:
            return
        started = time.perf_counter()
        try:
            metrics = table.optimize.compact()
        except (DeltaError, OSError) as err:
            log.warning("compacting %s (%d files) failed, tried again later: %s", uri, files, err)
            return
        log.info(
            "compacted %s: %s files into %s (%.2fs)",
            uri,
            metrics.get("numFilesRemoved"),
            metrics.get("numFilesAdded"),
            time.perf_counter() - started,
        )

    def count(self, uri: str) -> int:
        table = self._table(uri)
        return 0 if table is None else int(table.count())


class SparkDeltaWriter:
    """Delta Lake inside Spark (Databricks, or .jars/spark natively): the same transaction,
    as Delta's session settings.

    With ``spark.databricks.delta.write.txnAppId``/``txnVersion`` set, Delta itself skips a
    write (MERGE included) whose version it has already recorded for that app id: a skipped
    write adds no commit, which is how a replay is told apart. The two are session
    settings, so the tables of a micro-batch are written one at a time.
    """

    collects_arrow: ClassVar[bool] = False
    APP_ID_CONF: Final = "spark.databricks.delta.write.txnAppId"
    VERSION_CONF: Final = "spark.databricks.delta.write.txnVersion"

    def __init__(self, spark: SparkSession, settings: Settings) -> None:
        self.spark = spark
        self.settings = settings
        self._lock = threading.Lock()

    def prepare(self, frames: Mapping[str, DataFrame]) -> Mapping[str, DataFrame | pa.Table]:
        return frames

    def write(
        self, rows: DataFrame | pa.Table, uri: str, key: str | None, app_id: str, batch_id: int
    ) -> int | None:
        from delta.tables import DeltaTable  # delta-spark: .jars/spark, or Databricks'

        if not isinstance(rows, DataFrame):
            raise TypeError("the spark-delta writer writes Spark DataFrames, not Arrow")
        spark = self.spark
        use_s3a(spark, self.settings, uri)
        rows = rows.cache()
        try:
            n = rows.count()
            if n == 0:
                return 0
            with self._lock:
                before = self._version(uri)
                spark.conf.set(self.APP_ID_CONF, app_id)
                spark.conf.set(self.VERSION_CONF, str(batch_id))
                try:
                    if key is None or before < 0:
                        rows.write.format("delta").mode("append").save(uri)
                    else:
                        (
                            DeltaTable.forPath(spark, uri)
                            .alias("t")
                            .merge(rows.alias("s"), f"t.{key} = s.{key}")
                            .whenNotMatchedInsertAll()
                            .execute()
                        )
                finally:
                    spark.conf.unset(self.APP_ID_CONF)
                    spark.conf.unset(self.VERSION_CONF)
                version, metrics = self._last_commit(uri)
                if version <= before:
                    return None
                return int(metrics.get("numTargetRowsInserted", metrics.get("numOutputRows", n)))
        finally:
            rows.unpersist()

    def _version(self, uri: str) -> int:
        """The table's newest commit (-1 before the table exists)."""
        return self._last_commit(uri)[0]

    def _last_commit(self, uri: str) -> tuple[int, dict[str, str]]:
        """The table's newest commit and its operation metrics ((-1, {}) before it exists)."""
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self.spark, uri):
            return -1, {}
        last = DeltaTable.forPath(self.spark, uri).history(1).collect()[0]
        return int(last["version"]), dict(last["operationMetrics"] or {})

    def count(self, uri: str) -> int:
        from delta.tables import DeltaTable

        use_s3a(self.spark, self.settings, uri)
        if not DeltaTable.isDeltaTable(self.spark, uri):
            return 0
        return int(self.spark.read.format("delta").load(uri).count())


class PlanTemplate:
    """A micro-batch's plans built once, each batch's records put in the place of the first's.

    Building the plans costs a micro-batch more than running them: each DataFrame step is
    a round trip to the JVM and an analysis of the plan so far. So the union that
    ``collect_arrow`` collects is built once, over one small ``LocalRelation`` per stream,
    and each batch replaces those leaves in the JVM with relations of its own records and
    the same output attributes (``transformUp`` with a map from old leaf to new, a Scala
    ``Map`` being a ``PartialFunction``), so every reference above them still resolves.
    The analyser may have copied a leaf (``newInstance``, new attribute ids): every leaf
    holding a stream's marker rows is replaced. What can't vary in a plan built once, the
    quarantine's ``batch_id``, is added to its Arrow rows afterwards.

    It uses Catalyst's classes through py4j, not a public API: ``build`` returns None when
    they aren't there, and ``collect`` returns None for a batch it can't take (a stream's
    records not a ``LocalRelation``), so the sink builds that batch's plans as before.
    """

    def __init__(self, spark: SparkSession, union: ArrowUnion, leaves: dict[str, list[Any]]):
        self.spark = spark
        self.union = union
        self.leaves = leaves
        jvm = spark._jvm
        assert jvm is not None
        self._plan = union.union._jdf.queryExecution().analyzed()
        self._relation = jvm.org.apache.spark.sql.catalyst.plans.logical.LocalRelation
        self._dataset = jvm.org.apache.spark.sql.classic.Dataset
        self._to_scala_map = jvm.PythonUtils.toScalaMap
        self._hash_map = jvm.java.util.HashMap

    @classmethod
    def build(
        cls,
        spark: SparkSession,
        streams: Mapping[str, str],
        frames_of: Callable[[Mapping[str, DataFrame]], dict[str, DataFrame]],
    ) -> PlanTemplate | None:
        """The template of ``frames_of``'s frames, or None where Spark's classes differ."""
        from py4j.protocol import Py4JError
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(KINESIS_SCHEMA)
        try:
            # Arrow records, as the batches' are: Spark makes a LocalRelation of them.
            parts = {
                table: spark.createDataFrame(
                    pa.Table.from_pylist([{"stream": stream}], schema=schema), KINESIS_SCHEMA
                )
                for table, stream in streams.items()
            }
            markers = {table: _relation_data(part) for table, part in parts.items()}
            if any(data is None for data in markers.values()):
                return None
            union = ArrowUnion(frames_of(parts))
            found = union.union._jdf.queryExecution().analyzed().collectLeaves()
            leaves: dict[str, list[Any]] = {table: [] for table in parts}
            for i in range(found.size()):
                leaf = found.apply(i)
                for table, data in markers.items():
                    if leaf.getClass().getSimpleName() == "LocalRelation" and leaf.data().equals(
                        data
                    ):
                        leaves[table].append(leaf)
            if not all(leaves.values()):
                return None
            template = cls(spark, union, leaves)
            # Once on the markers, so that a Catalyst call a batch makes fails here, not
            # in every batch.
            template.collect(parts)
            return template
        except (Py4JError, AttributeError) as err:
            log.warning("micro-batch plans are built every batch: no plan template (%s)", err)
            return None

    def collect(self, parts: Mapping[str, DataFrame]) -> dict[str, pa.Table] | None:
        """The frames of ``parts``' records, collected; None if a part isn't a local relation."""
        swap = self._hash_map()
        for table, part in parts.items():
            data = _relation_data(part)
            if data is None:
                return None
            for leaf in self.leaves[table]:
                swap.put(leaf, self._relation(leaf.output(), data, False, leaf.stream()))
        from pyspark.sql.classic.dataframe import DataFrame as ClassicDataFrame

        plan = self._plan.transformUp(self._to_scala_map(swap))
        jdf = self._dataset.ofRows(self.spark._jsparkSession, plan)
        return self.union.collect(ClassicDataFrame(jdf, self.spark))


def _relation_data(df: DataFrame) -> Any | None:
    """The rows of a DataFrame that is a ``LocalRelation`` (a JVM ``Seq``), else None."""
    plan = df._jdf.queryExecution().analyzed()
    return plan.data() if plan.getClass().getSimpleName() == "LocalRelation" else None


def table_writer(settings: Settings, spark: SparkSession) -> TableWriter:
    """The writer the settings name; Parquet can't merge or record transactions."""
    if settings.table_writer == "delta-rs":
        return DeltaRsWriter(settings)
    if settings.table_writer == "spark-delta":
        return SparkDeltaWriter(spark, settings)
    raise ConfigError("the streaming job writes Delta: set table_writer to delta-rs or spark-delta")


@dataclass
class BatchOutcome:
    """What one micro-batch read and wrote; ``replayed`` lists tables that already had it."""

    batch_id: int
    records: dict[str, int] = field(default_factory=dict)
    merged: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    replayed: list[str] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class DeltaStreamSink:
    """The ``foreachBatch`` function: one micro-batch of Kinesis records into the tables."""

    def __init__(
        self,
        settings: Settings,
        writer: TableWriter,
        fallback_app_id: str,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.streams = settings.streams
        self.uris = {t: table_uri(settings, name) for t, name in settings.delta_tables.items()}
        self.quarantine_uri = table_uri(settings, settings.quarantine_table)
        self.writer = writer
        self.fallback_app_id = fallback_app_id
        self.on_batch = on_batch
        self._rows: dict[str, int] | None = None
        self._template: PlanTemplate | Literal[False] | None = None  # False: none to be had

    def table_rows(self) -> dict[str, int]:
        """Rows each table holds, the quarantine included.

        Counted once, then kept up to date with what each micro-batch adds (this query is
        the tables' only writer), so no batch pays a count of four tables.
        """
        if self._rows is None:
            self._rows = {t: self.writer.count(uri) for t, uri in self.uris.items()}
            self._rows[QUARANTINE] = self.writer.count(self.quarantine_uri)
        return dict(self._rows)

    def _added(self, outcome: BatchOutcome) -> None:
        """Count what a micro-batch added (``table_rows`` has counted the tables before)."""
        assert self._rows is not None
        for table, n in outcome.merged.items():
            self._rows[table] += n
        self._rows[QUARANTINE] += outcome.quarantined

    def app_id(self, df: DataFrame) -> str:
        """The query's id (stable across restarts from one checkpoint)."""
        query_id = df.sparkSession.sparkContext.getLocalProperty(QUERY_ID_PROPERTY)
        return f"pinpipe-stream-{query_id}" if query_id else self.fallback_app_id

    def __call__(self, df: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        app_id = self.app_id(df)
        outcome = BatchOutcome(batch_id)
        # One read of the micro-batch (a trigger's worth of records): every table below is
        # computed from this copy, where each would otherwise read Kinesis again.
        records = df.toArrow()
        streams = records.column("stream")
        outcome.records = {
            table: int(pc.sum(pc.equal(streams, stream)).as_py() or 0)
            for table, stream in self.streams.items()
        }
        self.table_rows()  # counted before the first batch writes
        if records.num_rows:
            self._write(df.sparkSession, records, outcome, app_id)
            self._added(outcome)
        outcome.table_rows = self.table_rows()
        outcome.seconds = time.perf_counter() - started
        log.info(
            "batch %d: records %s, merged %s, quarantined %d%s, tables %s (%.1fs)",
            batch_id,
            outcome.records,
            outcome.merged,
            outcome.quarantined,
            f", already written to {outcome.replayed}" if outcome.replayed else "",
            outcome.table_rows,
            outcome.seconds,
        )
        if self.on_batch:
            self.on_batch(outcome)

    def _write(
        self, spark: SparkSession, records: pa.Table, outcome: BatchOutcome, app_id: str
    ) -> None:
        """Quarantine what can't be cleaned, merge the rest: every table once per batch."""
        batch_id = outcome.batch_id
        parts = {
            table: spark.createDataFrame(
                records.filter(pc.equal(records.column("stream"), stream)), KINESIS_SCHEMA
            )
            for table, stream in self.streams.items()
        }
        collected = self._from_template(spark, parts, batch_id)
        rows: Mapping[str, DataFrame | pa.Table]
        if collected is not None:
            rows = collected
        else:
            frames = self.frames(parts)
            frames[QUARANTINE] = frames[QUARANTINE].withColumn(
                "batch_id", F.lit(batch_id).cast("long")
            )
            rows = self.writer.prepare(frames)
        uris = {**self.uris, QUARANTINE: self.quarantine_uri}

        def write(table: str) -> int | None:
            key = None if table == QUARANTINE else IND
            return self.writer.write(rows[table], uris[table], key, app_id, batch_id)

        # The tables are independent (each commit carries its own transaction): side by
        # side, one table's commit overlaps another's.
        with ThreadPoolExecutor(max_workers=len(rows)) as pool:
            for table, written in zip(rows, pool.map(write, rows), strict=True):
                self._note(outcome, table, written)

    @staticmethod
    def frames(parts: Mapping[str, DataFrame]) -> dict[str, DataFrame]:
        """Each table's cleaned rows, and the quarantine (all but its ``batch_id``)."""
        frames: dict[str, DataFrame] = {}
        quarantined: list[DataFrame] = []
        for table, part in parts.items():
            kept, bad = split_payloads(part, table)  # type: ignore[arg-type]
            frames[table] = CLEANERS[table](kept)
            quarantined.append(
                bad.withColumn("table", F.lit(table)).select(
                    *named_columns(*QUARANTINE_COLUMNS[:-1])
                )
            )
        frames[QUARANTINE] = reduce(DataFrame.unionByName, quarantined)
        return frames

    def _from_template(
        self, spark: SparkSession, parts: Mapping[str, DataFrame], batch_id: int
    ) -> dict[str, pa.Table] | None:
        """The batch's rows from the plan built once, when the writer takes Arrow."""
        if not self.writer.collects_arrow:
            return None
        if self._template is None:
            self._template = PlanTemplate.build(spark, self.streams, self.frames) or False
        if self._template is False:
            return None
        rows = self._template.collect(parts)
        if rows is None:
            return None
        quarantine = rows[QUARANTINE]
        rows[QUARANTINE] = quarantine.append_column(
            pa.field("batch_id", pa.int64(), nullable=False),
            pa.array([batch_id] * quarantine.num_rows, pa.int64()),
        )
        return rows

    @staticmethod
    def _note(outcome: BatchOutcome, table: str, written: int | None) -> None:
        if written is None:
            outcome.replayed.append(table)
        elif table == QUARANTINE:
            outcome.quarantined = written
        else:
            outcome.merged[table] = written


def delta_inds(settings: Settings, table: str) -> list[int]:
    """The ``ind`` of every row of a cleaned table (read with delta-rs; none before it exists)."""
    found = read_warehouse_table(settings, settings.delta_tables[table], columns=[IND])
    return [] if found is None else [int(i) for i in found.column(IND).to_pylist()]
