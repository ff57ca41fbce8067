"""Load the S3 sink's layout into raw DataFrames, with explicit schemas, never inferred.

Both readers give the same columns: the raw fields of the table (all strings), the
object the record came from (``_source``), where in the topic it stood (``_position``: the
object key, whose zero-padded start offset sorts as the log does, and the line within the
object) and ``_corrupt_record`` (the line, when it was not a JSON object of the expected
shape).
"""

from __future__ import annotations

import re
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from services.core.settings import Settings
from services.core.sink_keys import SinkKeys
from spark.session import use_s3a
from spark.sources.sink_objects import Spool
from spark.transformations.cleaning import POSITION
from spark.transformations.schemas import RAW_SCHEMAS

SOURCE = "_source"
CORRUPT = "_corrupt_record"


def with_corrupt_column(schema: StructType) -> StructType:
    return StructType([*schema.fields, StructField(CORRUPT, StringType())])


def topic_prefix(settings: Settings, table: str) -> str:
    """Where the S3 sink puts a table's topic (the connector's topics.dir)."""
    return SinkKeys.of(settings).topic_prefix(settings.topics[table])


def parse_lines(lines: DataFrame, table: str) -> DataFrame:
    """JSON lines (``key``, ``line``, ``value``) of one table's topic to its raw columns, plus
    ``_source``, ``_position`` and ``_corrupt_record``."""
    schema = with_corrupt_column(RAW_SCHEMAS[table])
    parsed = F.from_json(
        "value", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    )
    return lines.select(
        parsed.alias("r"),
        F.col("key").alias(SOURCE),
        F.struct(F.col("key"), F.col("line")).alias(POSITION),
    ).select("r.*", SOURCE, POSITION)


def _lines(objects: DataFrame) -> DataFrame:
    """Objects (``key``, ``body``) to their numbered lines (``key``, ``line``, ``value``).

    Split on "\\n" only and numbered from 0 over every line, blank ones too (which are then
    left out), so a record's ``line`` is the same whichever reader read its object.
    """
    return objects.select("*", F.posexplode(F.split("body", "\n")).alias("line", "value")).filter(
        F.col("value").rlike(r"\S")
    )


def _read_with_spark(spark: SparkSession, settings: Settings, table: str) -> DataFrame:
    """Spark's own reader (s3a on compose and Databricks): each object whole, split into its
    numbered lines, so that records keep their place in the topic."""
    root = settings.source_root.rstrip("/")
    use_s3a(spark, settings, root)
    path = f"{root}/{topic_prefix(settings, table)}"
    objects = (
        spark.read.option("wholetext", "true")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.json")
        .text(path)
        # The object's key, as the boto3 reader gives it: the path under the root.
        .select(
            F.regexp_replace(F.input_file_name(), f"^{re.escape(root)}/", "").alias("key"),
            F.col("value").alias("body"),
        )
    )
    return parse_lines(_lines(objects).select("key", "line", "value"), table)


def raw_spool(settings: Settings, folder: Path) -> Spool:
    """The boto3 reader's spool of every topic's objects, in ``folder``."""
    prefixes = {table: topic_prefix(settings, table) for table in settings.topics}
    return Spool(settings, prefixes, folder)


def load_raw_tables(
    spark: SparkSession, settings: Settings, spool: Spool | None = None
) -> dict[str, DataFrame]:
    """Raw records of the three tables, read with the configured reader.

    The boto3 reader lists and fetches every topic's objects on the driver in one pass
    into ``spool`` (``raw_spool``: a folder the caller removes once it is done with the
    tables), so each object is fetched once however many actions follow.
    """
    if settings.batch_reader == "spark":
        return {t: _read_with_spark(spark, settings, t) for t in settings.topics}
    if spool is None:
        raise ValueError("the boto3 reader needs a spool (raw_spool) for the fetched objects")
    folder = spool.wait()
    # Not cached: the spool is on local disk, and it holds each table's objects in row
    # groups of their own, so a table's read skips the others' (Parquet statistics).
    lines = _lines(spark.read.parquet(folder.as_uri())).drop("body")
    return {
        table: parse_lines(lines.filter(F.col("name") == table), table) for table in settings.topics
    }
