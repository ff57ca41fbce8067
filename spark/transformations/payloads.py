"""Kinesis records to raw rows: decode the payload, parse it with an explicit schema.

The API Gateway template base64-encodes the request's ``Data`` value, so Kinesis holds that
value's JSON text: an object arrives as ``{"index": 2, ...}``, while a client that sent
``Data`` already base64-encoded arrives as a JSON string literal holding the base64 text
(``"eyJpbmRleCI6Mn0="``). Both decode to the same row here. Records that can't be decoded
are kept apart with the reason, never dropped silently.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark.sources.loading import CORRUPT, with_corrupt_column
from spark.transformations.cleaning import (
    POSITION,
    REASON,
    Table,
    named_columns,
    split_quarantine,
)
from spark.transformations.schemas import RAW_SCHEMAS

PAYLOAD: Final = "payload"
DECODE_REASON: Final = "decode_reason"
ROW: Final = "_row"

REJECT_NOT_BASE64: Final = "Data is a string but not base64"
REJECT_MALFORMED: Final = "malformed JSON record"

# Parsing the text as the value of a one-field object reads any JSON value into a string:
# a string literal comes out unescaped, anything else as its own JSON text.
_AS_STRING_SCHEMA: Final = "v STRING"


def _is_json_string(text: Column) -> Column:
    return F.ltrim(text).startswith('"')


def _json_string_value(text: Column) -> Column:
    return F.from_json(F.concat(F.lit('{"v":'), text, F.lit("}")), _AS_STRING_SCHEMA)["v"]


def _decoded_payload(data: Column) -> Column:
    """The row's JSON text: the record itself, or the base64 text it holds, decoded."""
    text = data.cast("string")
    unwrapped = F.try_to_binary(_json_string_value(text), F.lit("base64")).cast("string")
    return F.when(_is_json_string(text), unwrapped).otherwise(text)


def parse_records(records: DataFrame, table: Table) -> DataFrame:
    """Kinesis records plus ``payload`` (the decoded JSON text), ``table``'s raw fields, and
    ``decode_reason``: why the payload is not a JSON object, or null.

    A record that fails to decode gets no fields at all, so cleaning's key check can never
    keep it, whatever a lenient parser salvaged.
    """
    payload, row, reason, fields = _parse_columns(table)
    return (
        records.withColumn(PAYLOAD, payload)
        .withColumn(ROW, row)
        .withColumn(DECODE_REASON, reason)
        .select(*named_columns(*records.columns, PAYLOAD), *fields, *named_columns(DECODE_REASON))
    )


@cache
def _parse_columns(table: Table) -> tuple[Column, Column, Column, list[Column]]:
    """``parse_records``' payload, parsed row, reason and raw fields (built once per process:
    each micro-batch would otherwise pay the round trips to the JVM that build them)."""
    schema = with_corrupt_column(RAW_SCHEMAS[table])
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    text = F.col("data").cast("string")
    payload = F.col(PAYLOAD)
    row = F.col(ROW)
    reason = F.when(_is_json_string(text) & payload.isNull(), F.lit(REJECT_NOT_BASE64)).when(
        row.isNull() | row[CORRUPT].isNotNull(), F.lit(REJECT_MALFORMED)
    )
    ok = F.col(DECODE_REASON).isNull()
    return (
        _decoded_payload(F.col("data")),
        F.from_json(payload, schema, options),
        reason,
        [F.when(ok, row[c]).alias(c) for c in RAW_SCHEMAS[table].fieldNames()],
    )


def arrival_position() -> Column:
    """Where a Kinesis record stands in its stream: arrival time, then sequence number (a
    decimal of up to 128 digits, zero-padded so that it sorts as a number)."""
    return F.struct(
        F.col("approximateArrivalTimestamp"), F.lpad(F.col("sequenceNumber"), 128, "0")
    ).alias(POSITION)


def split_payloads(records: DataFrame, table: Table) -> tuple[DataFrame, DataFrame]:
    """Raw rows ready for cleaning (with their ``_position``), and the records quarantined
    with their ``reason``.

    The quarantined keep every Kinesis column plus ``payload``; a record fails when it can't
    be decoded or parsed, or when its key is missing or not an integer (cleaning's rule).
    """
    kept, quarantined = split_quarantine(parse_records(records, table), table)
    position, why = _split_columns()
    return (
        kept.select(*named_columns(*RAW_SCHEMAS[table].fieldNames()), position),
        quarantined.select(*named_columns(*records.columns, PAYLOAD), why),
    )


@cache
def _split_columns() -> tuple[Column, Column]:
    return arrival_position(), F.coalesce(F.col(DECODE_REASON), F.col(REASON)).alias(REASON)
