"""``pinpipe trace <ind>``: one post at every hop, from its source rows to the Delta tables.

For each of the three tables it looks where the post's row should be, in the order data
flows: the MySQL source row, the Kafka records (topic, partition, offset) and the S3 objects
of the sink (key and line) that carry it, the batch job's cleaned row, the streaming job's
Delta row, and any quarantined record with its reason. A hop that does not hold the row says
so; nothing is inferred from another hop.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import boto3
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from services.core.errors import TransientError
from services.core.settings import TABLES, Settings, TableName
from services.core.sink_keys import SinkKeys
from services.source_db.source_tables import SOURCE_TABLES

# The source key: only pinterest_data calls it "index" (the cleaned tables call it "ind").
SOURCE_KEY: dict[TableName, str] = {"pin": "index", "geo": "ind", "user": "ind"}
CLEAN_KEY = "ind"

HOPS = ("source", "topic", "s3", "clean", "delta", "quarantine")


@dataclass
class Sighting:
    """One place that holds (or should hold) the post's row of one table."""

    hop: str
    table: str
    where: str
    found: bool
    note: str = ""
    record: dict[str, Any] | None = None


@dataclass
class Trace:
    ind: int
    sightings: list[Sighting] = field(default_factory=list)

    def at(self, hop: str, table: TableName | None = None) -> list[Sighting]:
        """The sightings of one hop (and table), found or not."""
        return [s for s in self.sightings if s.hop == hop and table in (None, s.table)]

    def found(self, hop: str, table: TableName | None = None) -> list[Sighting]:
        return [s for s in self.at(hop, table) if s.found]

    def as_dict(self) -> dict[str, Any]:
        return {"ind": self.ind, "sightings": [asdict(s) for s in self.sightings]}


def trace(settings: Settings, ind: int) -> Trace:
    """Every hop's rows of post ``ind``, for the pin, geo and user tables."""
    result = Trace(ind)
    result.sightings += source_rows(settings, ind)
    for table in TABLES:
        result.sightings += topic_records(settings, table, ind)
        result.sightings += bucket_records(settings, table, ind)
        result.sightings += delta_rows(settings, table, ind, "clean")
        result.sightings += delta_rows(settings, table, ind, "delta")
    result.sightings += quarantined(settings, ind)
    return result


def plain(value: Any) -> Any:
    """A JSON-friendly copy of a database or Arrow value."""
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def is_ind(value: Any, ind: int) -> bool:
    """Whether a raw key value (int, or text as the dirty rows may have) is ``ind``."""
    return value is not None and not isinstance(value, bool) and str(value).strip() == str(ind)


def mentions(text: str, ind: int) -> bool:
    """Whether a record that is not valid JSON carries ``ind`` as its key."""
    return re.search(rf'"(?:ind|index)"\s*:\s*"?{ind}(?![0-9])', text) is not None


def source_rows(settings: Settings, ind: int) -> list[Sighting]:
    """The post's row in each MySQL source table (one engine, one connection)."""
    from sqlalchemy import select

    from services.source_db.database import make_engine

    found = []
    engine = make_engine(settings.db)
    try:
        with engine.connect() as conn:
            for table in TABLES:
                source = SOURCE_TABLES[table]
                query = select(source).where(source.c[SOURCE_KEY[table]] == ind)
                row = conn.execute(query).mappings().first()
                where = f"mysql {settings.db.DATABASE}.{source.name}"
                found.append(
                    Sighting("source", table, where, False, "no such row")
                    if row is None
                    else Sighting("source", table, where, True, "", plain(dict(row)))
                )
    finally:
        engine.dispose()
    return found


def _partitions(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return []
    return [TopicPartition(topic, p) for p in sorted(metadata.partitions)]


def _read_topic(settings: Settings, topic: str) -> Iterator[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record of ``topic``, from each low watermark."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"pinpipe-trace-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        ends: dict[int, int] = {}
        starts = []
        for tp in _partitions(consumer, topic):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > low:
                ends[tp.partition] = high
                starts.append(TopicPartition(topic, tp.partition, low))
        if not starts:
            return
        consumer.assign(starts)
        while ends:
            msg = consumer.poll(10)
            if msg is None:
                raise TransientError(f"reading {topic}: no record within 10 s")
            error = msg.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                ends.pop(msg.partition() or 0, None)
                continue
            if error is not None:
                raise TransientError(f"reading {topic}: {error}")
            partition, offset = msg.partition() or 0, msg.offset() or 0
            if partition in ends and offset < ends[partition]:
                yield partition, offset, msg.value() or b""
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
    finally:
        consumer.close()


def _parse(raw: bytes | str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def topic_records(settings: Settings, table: TableName, ind: int) -> list[Sighting]:
    """Every Kafka record of the table's topic that carries the post (with its offset)."""
    topic = settings.topics[table]
    found = []
    try:
        for partition, offset, raw in _read_topic(settings, topic):
            value = _parse(raw)
            hit = (
                is_ind(value.get(SOURCE_KEY[table]), ind) if value else mentions(raw.decode(), ind)
            )
            if hit:
                where = f"{topic} partition {partition} offset {offset}"
                note = "" if value else "not valid JSON"
                found.append(Sighting("topic", table, where, True, note, value))
    except KafkaException as exc:
        raise TransientError(f"reading {topic}: {exc}") from exc
    _note_copies(found)
    return found or [Sighting("topic", table, topic, False, "no record carries it")]


def _note_copies(found: list[Sighting]) -> None:
    """The emulator samples with replacement: say so where a post arrived more than once."""
    if len(found) > 1:
        for s in found:
            s.note = ", ".join(
                filter(None, [s.note, f"{len(found)} copies, the cleaning keeps one"])
            )


def bucket_records(settings: Settings, table: TableName, ind: int) -> list[Sighting]:
    """Every line of the sink's objects in the bucket that carries the post (key and offset)."""
    s3 = boto3.client("s3", **settings.boto3_kwargs())
    layout = SinkKeys.of(settings)
    topic = settings.topics[table]
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.bucket, Prefix=layout.topic_prefix(topic)
        )
        for o in page.get("Contents", [])
    ]

    def search(key: str) -> list[Sighting]:
        body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read().decode()
        hits = []
        for line_no, line in enumerate(x for x in body.splitlines() if x.strip()):
            value = _parse(line)
            if not (is_ind(value.get(SOURCE_KEY[table]), ind) if value else mentions(line, ind)):
                continue
            where = f"s3://{settings.bucket}/{key} line {line_no + 1}"
            hits.append(
                Sighting("s3", table, where, True, "" if value else "not valid JSON", value)
            )
        return hits

    with ThreadPoolExecutor(max_workers=16) as pool:
        found = [s for hits in pool.map(search, keys) for s in hits]
    _note_copies(found)
    where = f"s3://{settings.bucket}/{layout.topic_prefix(topic)}"
    return found or [Sighting("s3", table, where, False, "no object carries it")]


def delta_rows(settings: Settings, table: TableName, ind: int, hop: str) -> list[Sighting]:
    """The post's rows in the batch job's cleaned table or the streaming job's Delta table."""
    from spark.sinks.tables import read_warehouse_table

    name = settings.clean_tables[table] if hop == "clean" else settings.delta_tables[table]
    job = "batch run" if hop == "clean" else "stream run"
    found = read_warehouse_table(settings, name, where=f'"{CLEAN_KEY}" = {int(ind)}')
    if found is None:
        return [Sighting(hop, table, name, False, f"no such table yet (`pinpipe {job}`)")]
    rows = found.to_pylist()
    if not rows:
        return [Sighting(hop, table, name, False, "no row")]
    note = f"{len(rows)} rows for one ind" if len(rows) > 1 else ""
    return [Sighting(hop, table, name, True, note, plain(r)) for r in rows]


def _quarantined_in(
    settings: Settings, name: str, ind: int, text_columns: list[str]
) -> list[Sighting]:
    from spark.sinks.tables import read_warehouse_table

    rows = read_warehouse_table(settings, name)
    if rows is None:
        return []
    found = []
    for row in rows.to_pylist():
        texts = [str(plain(row.get(c)) or "") for c in text_columns]
        values = [_parse(t) for t in texts]
        if any(is_ind(v.get(k), ind) for v in values if v for k in ("ind", "index")) or any(
            mentions(t, ind) for t in texts
        ):
            table = row.get("table") or "?"
            found.append(
                Sighting("quarantine", table, name, True, str(row.get("reason")), plain(row))
            )
    return found


def quarantined(settings: Settings, ind: int) -> list[Sighting]:
    """Records of the post that the batch or streaming job quarantined, with the reason."""
    found = _quarantined_in(settings, settings.batch_quarantine_table, ind, ["raw"])
    found += _quarantined_in(settings, settings.quarantine_table, ind, ["payload", "data"])
    return found
