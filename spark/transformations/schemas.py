"""Explicit schemas of the raw records as the sinks deliver them, and of the cleaned tables.

Every raw field is read as a string. The S3 sink writes each record's JSON as the client
sent it, and clients disagree on types: most send ``"index": 5``, some send ``"index": "5"``.
Spark's JSON reader turns a JSON number into its text for a string field, but turns a
string into null (and the record into a corrupt one) for a numeric field. Reading text
keeps every value, so cleaning casts it once, in one place, and counts what fails to cast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from pyspark.sql.types import (
    ArrayType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from services.core import contract as c


def _struct(columns: Iterable[str], types: Mapping[str, DataType] | None = None) -> StructType:
    """Nullable fields in the given order; a column not in ``types`` is a string."""
    types = types or {}
    return StructType([StructField(name, types.get(name, StringType())) for name in columns])


PIN_RAW_SCHEMA: Final = _struct(c.PIN_SOURCE_COLUMNS)
GEO_RAW_SCHEMA: Final = _struct(c.GEO_SOURCE_COLUMNS)
USER_RAW_SCHEMA: Final = _struct(c.USER_SOURCE_COLUMNS)

PIN_CLEAN_SCHEMA: Final = _struct(
    c.PIN_CLEAN_COLUMNS, {"ind": LongType(), "follower_count": LongType()}
)
GEO_CLEAN_SCHEMA: Final = _struct(
    c.GEO_CLEAN_COLUMNS,
    {"ind": LongType(), "coordinates": ArrayType(DoubleType()), "timestamp": TimestampType()},
)
USER_CLEAN_SCHEMA: Final = _struct(
    c.USER_CLEAN_COLUMNS,
    {"ind": LongType(), "age": IntegerType(), "date_joined": TimestampType()},
)

RAW_SCHEMAS: Final = {"pin": PIN_RAW_SCHEMA, "geo": GEO_RAW_SCHEMA, "user": USER_RAW_SCHEMA}
CLEAN_SCHEMAS: Final = {"pin": PIN_CLEAN_SCHEMA, "geo": GEO_CLEAN_SCHEMA, "user": USER_CLEAN_SCHEMA}
