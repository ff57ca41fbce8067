"""The foreachBatch sink on hand-made micro-batches: decoding, quarantine, exactly-once, merge."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from services.core.settings import TABLES, Settings
from spark.sinks.delta_stream import (
    QUARANTINE,
    QUARANTINE_COLUMNS,
    DeltaRsWriter,
    DeltaStreamSink,
    PlanTemplate,
    TableWriter,
    table_writer,
)
from spark.sinks.tables import collect_arrow, table_uri
from spark.sources.kinesis_source import KINESIS_SCHEMA
from spark.transformations.cleaning import CLEANERS
from spark.transformations.payloads import REJECT_MALFORMED, REJECT_NOT_BASE64
from spark.transformations.schemas import RAW_SCHEMAS
from tests.spark.conftest import arrow_rows, delta_rows

pytestmark = pytest.mark.unit

ARRIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def pin(ind: int, **extra: Any) -> dict[str, Any]:
    return {
        "index": ind,
        "unique_id": f"uid-{ind}",
        "title": "No Title Data Available",
        "description": "a post",
        "poster_name": "User Info Error",
        "follower_count": "1.5k",
        "tag_list": "a,b",
        "is_image_or_video": "image",
        "image_src": "Image src error.",
        "downloaded": 1,
        "save_location": "Local save in /data/art",
        "category": "art",
        **extra,
    }


def geo(ind: int) -> dict[str, Any]:
    return {
        "ind": ind,
        "timestamp": "2020-08-28 03:52:47" if ind % 2 else "2020-08-28T03:52:47",
        "latitude": -12.5,
        "longitude": 44.25,
        "country": "Bouvet Island (Bouvetoya)",
    }


def user(ind: int) -> dict[str, Any]:
    return {
        "ind": ind,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "age": 36,
        "date_joined": "2016-03-01 10:00:00",
    }


ROWS = {"pin": pin, "geo": geo, "user": user}


def as_object(row: Any) -> bytes:
    """What Kinesis holds for ``"Data": row`` sent through the API."""
    return json.dumps(row).encode()


def as_base64(row: Any) -> bytes:
    """What Kinesis holds for ``"Data": "<base64 of the row's JSON>"``."""
    return json.dumps(base64.b64encode(json.dumps(row).encode()).decode()).encode()


class Batch:
    """Records of one micro-batch, with the columns of the Kinesis sources."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.records: list[tuple[Any, ...]] = []

    def add(self, table: str, data: bytes) -> str:
        seq = str(10**30 + len(self.records))
        stream = self.settings.streams[table]
        self.records.append(("k", bytearray(data), stream, "shardId-000000000000", seq, ARRIVED))
        return seq

    def frame(self, spark: SparkSession) -> DataFrame:
        return spark.createDataFrame(self.records, KINESIS_SCHEMA)


@pytest.fixture(params=["delta-rs", "spark-delta"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Each test runs with both Delta writers: delta-rs and Spark's own Delta."""
    return Settings(
        user_id="sinktest", warehouse_uri=str(tmp_path / "warehouse"), table_writer=request.param
    )


@pytest.fixture
def writer(spark: SparkSession, settings: Settings) -> TableWriter:
    return table_writer(settings, spark)


def expected(spark: SparkSession, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch path's cleaning of the same raw rows (every value as text, as the sink reads)."""
    names = RAW_SCHEMAS[table].fieldNames()
    raw = [tuple(None if r.get(n) is None else str(r[n]) for n in names) for r in rows]
    return arrow_rows(CLEANERS[table](spark.createDataFrame(raw, RAW_SCHEMAS[table])).toArrow())


def test_both_data_forms_clean_alike_and_bad_records_are_quarantined(
    spark: SparkSession, settings: Settings, writer: TableWriter
) -> None:
    batch = Batch(settings)
    for table, make in ROWS.items():
        batch.add(table, as_object(make(1)))
        batch.add(table, as_base64(make(2)))
    bad = {
        batch.add("pin", b'"not base64!"'): REJECT_NOT_BASE64,
        batch.add("pin", b"[1, 2]"): REJECT_MALFORMED,
        batch.add("geo", b"not json at all"): REJECT_MALFORMED,
        batch.add("geo", as_base64([1, 2])): REJECT_MALFORMED,
        batch.add("user", as_object({"first_name": "no ind"})): "missing ind",
        batch.add("pin", as_base64(pin(3, index="three"))): "ind is not an integer",
    }
    DeltaStreamSink(settings, writer, "test-app")(batch.frame(spark), 0)

    for table, make in ROWS.items():
        want = expected(spark, table, [make(1), make(2)])
        assert delta_rows(settings, settings.delta_tables[table]) == want
    quarantine = delta_rows(settings, settings.quarantine_table)
    assert {r["sequenceNumber"]: r["reason"] for r in quarantine} == bad
    by_seq = {r["sequenceNumber"]: r for r in quarantine}
    first = by_seq[next(iter(bad))]
    assert first["data"] == b'"not base64!"' and first["payload"] is None
    assert first["table"] == "pin" and first["stream"] == settings.streams["pin"]
    assert first["batch_id"] == 0 and first["approximateArrivalTimestamp"] == ARRIVED
    assert by_seq[list(bad)[-1]]["payload"] == json.dumps(pin(3, index="three"))


class CrashAfterPin:
    """A writer that commits the pin table and dies before any other, like a kill mid-batch."""

    collects_arrow = False  # the sink builds each batch's plans (no plan template)

    def __init__(self, writer: TableWriter) -> None:
        self.writer = writer

    def prepare(self, frames: Mapping[str, DataFrame]) -> Mapping[str, Any]:
        return self.writer.prepare(frames)

    def write(self, rows: Any, uri: str, key: str | None, app_id: str, batch_id: int) -> Any:
        if not uri.endswith("_pin_table"):
            raise RuntimeError("killed")
        return self.writer.write(rows, uri, key, app_id, batch_id)

    def count(self, uri: str) -> int:
        return self.writer.count(uri)


def versions(settings: Settings) -> dict[str, int | None]:
    names = [*settings.delta_tables.values(), settings.quarantine_table]
    out: dict[str, int | None] = {}
    for name in names:
        uri = table_uri(settings, name)
        out[name] = DeltaTable(uri).version() if DeltaTable.is_deltatable(uri) else None
    return out


def test_a_replayed_batch_completes_what_a_crash_left_and_writes_nothing_twice(
    spark: SparkSession, settings: Settings, writer: TableWriter
) -> None:
    batch = Batch(settings)
    for ind in (1, 2, 2):  # a post sampled twice in one batch
        for table, make in ROWS.items():
            batch.add(table, as_object(make(ind)))
    batch.add("pin", b"{broken")
    frame = batch.frame(spark)

    with pytest.raises(RuntimeError, match="killed"):
        DeltaStreamSink(settings, CrashAfterPin(writer), "app")(frame, 0)
    assert [r["ind"] for r in delta_rows(settings, settings.delta_tables["pin"])] == [1, 2]
    assert delta_rows(settings, settings.delta_tables["geo"]) == []

    outcomes = []
    sink = DeltaStreamSink(settings, writer, "app", outcomes.append)
    sink(frame, 0)
    assert outcomes[-1].replayed == ["pin"]
    assert outcomes[-1].merged == {"geo": 2, "user": 2}
    after_replay = versions(settings)
    sink(frame, 0)
    assert sorted(outcomes[-1].replayed) == sorted([*TABLES, "quarantine"])
    assert versions(settings) == after_replay
    for table in TABLES:
        assert [r["ind"] for r in delta_rows(settings, settings.delta_tables[table])] == [1, 2]
    assert len(delta_rows(settings, settings.quarantine_table)) == 1


def test_later_batches_merge_on_ind(
    spark: SparkSession, settings: Settings, writer: TableWriter
) -> None:
    sink = DeltaStreamSink(settings, writer, "app")
    first = Batch(settings)
    for ind in (1, 2):
        first.add("pin", as_object(pin(ind)))
    sink(first.frame(spark), 0)
    second = Batch(settings)
    second.add("pin", as_base64(pin(2)))
    second.add("pin", as_object(pin(3, category="travel")))
    sink(second.frame(spark), 1)
    rows = delta_rows(settings, settings.delta_tables["pin"])
    assert [(r["ind"], r["category"]) for r in rows] == [(1, "art"), (2, "art"), (3, "travel")]
    assert rows == expected(spark, "pin", [pin(1), pin(2), pin(3, category="travel")])


def pin_batches(settings: Settings, spark: SparkSession, inds: range) -> list[DataFrame]:
    """One micro-batch per ``ind``, each a new post."""
    batches = []
    for ind in inds:
        batch = Batch(settings)
        batch.add("pin", as_object(pin(ind)))
        batches.append(batch.frame(spark))
    return batches


def test_a_long_run_compacts_its_merged_tables_and_still_knows_its_batches(
    spark: SparkSession, tmp_path: Path
) -> None:
    settings = Settings(user_id="compact", warehouse_uri=str(tmp_path / "warehouse"))
    uri = table_uri(settings, settings.delta_tables["pin"])
    outcomes: list[Any] = []
    sink = DeltaStreamSink(settings, DeltaRsWriter(settings, compact_at=3), "app", outcomes.append)
    batches = pin_batches(settings, spark, range(1, 8))
    files = []
    for batch_id, frame in enumerate(batches):
        sink(frame, batch_id)
        files.append(len(DeltaTable(uri).file_uris()))
    # A file per batch, bin-packed into one whenever there are three.
    assert files == [1, 2, 1, 2, 1, 2, 1]
    operations = [c["operation"] for c in DeltaTable(uri).history()]
    assert operations.count("OPTIMIZE") == 3
    assert [r["ind"] for r in delta_rows(settings, settings.delta_tables["pin"])] == list(
        range(1, 8)
    )
    # The compaction's commits carry no transaction, and the batches' stay known.
    sink(batches[-1], len(batches) - 1)
    assert "pin" in outcomes[-1].replayed
    assert DeltaTable(uri).transaction_version("pinpipe-stream-app") is None
    assert DeltaTable(uri).transaction_version("app") == len(batches) - 1


def test_a_failed_compaction_leaves_the_batch_written(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from deltalake.exceptions import CommitFailedError
    from deltalake.table import TableOptimizer

    def refuse(*_: Any, **__: Any) -> None:
        raise CommitFailedError("a concurrent writer")

    monkeypatch.setattr(TableOptimizer, "compact", refuse)
    settings = Settings(user_id="nocompact", warehouse_uri=str(tmp_path / "warehouse"))
    outcomes: list[Any] = []
    sink = DeltaStreamSink(settings, DeltaRsWriter(settings, compact_at=2), "app", outcomes.append)
    for batch_id, frame in enumerate(pin_batches(settings, spark, range(1, 4))):
        sink(frame, batch_id)
    assert [o.merged["pin"] for o in outcomes] == [1, 1, 1]
    assert [r["ind"] for r in delta_rows(settings, settings.delta_tables["pin"])] == [1, 2, 3]
    assert "failed, tried again later: a concurrent writer" in caplog.text


def test_a_micro_batch_builds_no_column_by_name_after_the_first(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Column built by name costs three round trips to the JVM, and a micro-batch selects
    about 140 names: the sink's plans reuse the Columns the first batch built."""
    import pyspark.sql.classic.column as classic_column
    import pyspark.sql.functions.builtin as builtin

    settings = Settings(user_id="sinkcols", warehouse_uri=str(tmp_path / "warehouse"))
    sink = DeltaStreamSink(settings, DeltaRsWriter(settings), "app")
    batches = []
    for ind in (1, 2):
        batch = Batch(settings)
        for table, row in ROWS.items():
            batch.add(table, as_object(row(ind)))
        batch.add("pin", b"{not json")
        batches.append(batch.frame(spark))
    sink(batches[0], 0)

    by_name: list[str] = []
    create, jvm_function = classic_column._create_column_from_name, builtin._get_jvm_function

    def counted_create(name: str) -> Any:
        by_name.append(name)
        return create(name)

    def counted_function(name: str, sc: Any) -> Any:
        if name in ("col", "column"):
            by_name.append(name)
        return jvm_function(name, sc)

    monkeypatch.setattr(classic_column, "_create_column_from_name", counted_create)
    monkeypatch.setattr(builtin, "_get_jvm_function", counted_function)
    sink(batches[1], 1)
    monkeypatch.undo()
    assert by_name == []
    for table in TABLES:
        assert [r["ind"] for r in delta_rows(settings, settings.delta_tables[table])] == [1, 2]
    assert len(delta_rows(settings, settings.quarantine_table)) == 2


def test_the_plan_built_once_gives_what_each_batch_built_again_gives(
    spark: SparkSession, tmp_path: Path
) -> None:
    """The template's substituted plan and the plans built for the batch itself agree on
    every table, schema included, batch after batch: dirty and bad records, duplicates
    within a batch, and a stream with no records."""
    from pyspark.sql import functions as F

    settings = Settings(user_id="sinktpl", warehouse_uri=str(tmp_path / "warehouse"))
    sink = DeltaStreamSink(settings, DeltaRsWriter(settings), "app")
    batches = []
    for n in range(3):
        batch = Batch(settings)
        for table, make in ROWS.items():
            if n == 2 and table == "geo":
                continue  # no geo records in this batch
            batch.add(table, as_object(make(10 * n + 1)))
            batch.add(table, as_base64(make(10 * n + 2)))
            batch.add(table, as_object(make(10 * n + 1)))  # the same ind again
        batch.add("pin", as_base64(pin(10 * n + 3, follower_count="12k", index="x")))
        batch.add("user", b"not json")
        batch.add("geo", b'"not base64!"')
        batches.append(batch.frame(spark).toArrow())

    for batch_id, records in enumerate(batches):
        parts = {
            table: spark.createDataFrame(
                records.filter(pc.equal(records.column("stream"), stream)), KINESIS_SCHEMA
            )
            for table, stream in settings.streams.items()
        }
        got = sink._from_template(spark, parts, batch_id)
        assert isinstance(sink._template, PlanTemplate) and got is not None
        frames = sink.frames(parts)
        frames[QUARANTINE] = frames[QUARANTINE].withColumn("batch_id", F.lit(batch_id).cast("long"))
        want = collect_arrow(frames)
        assert list(got) == list(want)
        for table in want:
            assert got[table].equals(want[table]), table
        assert got[QUARANTINE].column_names == list(QUARANTINE_COLUMNS)
        assert got[QUARANTINE].num_rows == 3 and got["pin"].num_rows == 2
        assert got["geo"].num_rows == (0 if batch_id == 2 else 2)
