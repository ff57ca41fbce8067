"""Cleaning shared by the batch and streaming jobs: raw sink records in, contract tables out.

Each table's rules are data (``_Rules``): its key column, the placeholder values that mean
"no value", and how text columns parse to numbers and timestamps. The cleaners, the split
of quarantined rows and the quality report all read the same rules, so they can't disagree.

Nothing here triggers an action. The streaming job calls the cleaners inside
``foreachBatch``, where each micro-batch is a static DataFrame, so the one window
(``dedupe_by_ind``) is allowed there too; duplicates across micro-batches are the sink's
job (an insert-only merge on ``ind``). One rule holds on both paths: per ``ind``, the first
record by source position wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Final, Literal, Protocol

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from services.core import contract as c

Table = Literal["pin", "geo", "user"]
Transform = Callable[[DataFrame], DataFrame]
Parser = Callable[[Column], Column]

IND: Final = "ind"
PIN_KEY: Final = "index"
REASON: Final = "reason"

REJECT_MISSING_IND: Final = "missing ind"
REJECT_NON_INTEGER_IND: Final = "ind is not an integer"

# Datetimes arrive naive, as str() or isoformat() writes them; both read in the session
# time zone, which the jobs set to UTC. "[.SSSSSS]" accepts 1 to 6 fraction digits.
TIMESTAMP_FORMATS: Final = ("yyyy-MM-dd HH:mm:ss[.SSSSSS]", "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]")

# Exact decimal arithmetic: "1.5k" must be 1500, with no float rounding on the way. Its
# 29 integer digits hold any long, so overflow shows up in the final cast, not before.
_WIRE_DECIMAL: Final = DecimalType(38, 9)
_MULTIPLIER: Final = DecimalType(10, 0)
_LONG: Final = LongType()
# Suffixes in either case: "1.5K" and "2m" are as unambiguous as "1.5k" and "2M".
_FOLLOWER_PATTERN: Final = (
    rf"^(\d+(?:\.\d+)?)((?i:{'|'.join(map(re.escape, c.FOLLOWER_SUFFIXES))}))?$"
)
_SAVE_LOCATION_PREFIX_PATTERN: Final = f"^{re.escape(c.SAVE_LOCATION_PREFIX)}"
_ROW_NUMBER: Final = "_row_number"
# Where a raw record stood in its source; optional (see dedupe_by_ind).
POSITION: Final = "_position"


# ---- building blocks ----------------------------------------------------------------------
@cache
def named_columns(*names: str) -> tuple[Column, ...]:
    """``F.col`` of each name, built once per process.

    A select by name strings builds a new Column per name every time it runs, three round
    trips to the JVM each: a streaming micro-batch selected about 140 names, which cost
    45 ms of its 360 (p50, in a micro-benchmark of the streaming sink's Spark work).
    """
    return tuple(F.col(name) for name in names)


def nullify_values(values_by_column: Mapping[str, Iterable[str]]) -> Transform:
    """Return a transform that nulls each column where it equals one of its given values."""
    values = {name: tuple(vals) for name, vals in values_by_column.items()}

    def transform(df: DataFrame) -> DataFrame:
        return df.withColumns(_nulled(tuple(values.items())))

    return transform


@cache
def _nulled(values: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, Column]:
    # Built once per process, like every cached expression here: a Column costs a round
    # trip to the JVM per function and value, which each streaming micro-batch would pay.
    return {name: F.when(~F.col(name).isin(*vals), F.col(name)) for name, vals in values}


def parse_integer(col: Column, data_type: DataType = _LONG) -> Column:
    """Integer text ("874", also "874.0") to ``data_type``; fractions, garbage, overflow: null.

    Plain digits take a long cast; only what that refuses ("874.0", "8.74e2", garbage)
    takes the exact decimal path, which gives the same value for anything the long cast
    reads. Every key is parsed this way, and the decimal path alone was a tenth of the
    batch job's CPU on a million rows (a ``BigDecimal`` per value).
    """
    text = F.trim(col)
    whole = text.try_cast(_LONG)
    if data_type != _LONG:
        whole = whole.try_cast(data_type)
    return F.coalesce(whole, _parse_integer_exact(text, data_type))


def _parse_integer_exact(text: Column, data_type: DataType) -> Column:
    """``parse_integer`` through an exact decimal: any integral value the text writes."""
    number = text.try_cast(_WIRE_DECIMAL)
    return F.when(number == F.floor(number), number.try_cast(data_type))


def parse_double(col: Column) -> Column:
    """Decimal text to a double; garbage: null."""
    return F.trim(col).try_cast(DoubleType())


def parse_follower_count(col: Column) -> Column:
    """Follower text to a long: "874", "51k", "1.5k" (1500), "2M", "1B"; anything else: null.

    Suffixes count in either case ("1.5K", "2m", "1b"): the contract writes them ``k``,
    ``M``, ``B``, and no other reading of an upper ``K`` or a lower ``m`` exists for a count.
    A product that keeps a fraction ("1.2345k") is rounded half up.
    """
    text = F.trim(col)
    number = F.regexp_extract(text, _FOLLOWER_PATTERN, 1).try_cast(_WIRE_DECIMAL)
    suffix = F.lower(F.regexp_extract(text, _FOLLOWER_PATTERN, 2))
    multiplier = F.try_element_at(_follower_multipliers(), suffix)
    return F.round(F.try_multiply(number, multiplier), 0).try_cast(_LONG)


def parse_timestamp(col: Column) -> Column:
    """Naive datetime text, space- or ISO-separated, fraction optional, to a timestamp."""
    text = F.trim(col)
    return F.coalesce(*(F.try_to_timestamp(text, F.lit(fmt)) for fmt in TIMESTAMP_FORMATS))


def dedupe_by_ind(df: DataFrame) -> DataFrame:
    """Keep one row per ``ind``: the first to arrive, by ``_position`` where the input has it.

    ``_position`` orders records as their source delivered them: batch, the object key
    (zero-padded Kafka start offset) and the line within it; streaming, the Kinesis arrival
    time and sequence number. The streaming sink's insert-only MERGE keeps the first arrival
    across micro-batches, so both paths keep the same row for conflicting duplicates. Ties,
    and inputs without a position, fall back to the other columns ascending (nulls last),
    which keeps the choice independent of partitioning.
    """
    row_number, first, kept = _first_per_ind(tuple(df.columns))
    return df.withColumn(_ROW_NUMBER, row_number).filter(first).select(*kept)


@cache
def _first_per_ind(columns: tuple[str, ...]) -> tuple[Column, Column, tuple[Column, ...]]:
    """``dedupe_by_ind``'s row number, its filter and the columns kept, for these columns."""
    order = [F.col(POSITION).asc_nulls_last()] if POSITION in columns else []
    order += [F.col(name).asc_nulls_last() for name in columns if name not in (IND, POSITION)]
    row_number = F.row_number().over(Window.partitionBy(IND).orderBy(*order))
    kept = named_columns(*(name for name in columns if name != POSITION))
    return row_number, F.col(_ROW_NUMBER) == 1, kept


def _with_position(df: DataFrame, columns: Iterable[str]) -> DataFrame:
    """The contract's columns, in order, and ``_position`` when the input carries it."""
    return df.select(*named_columns(*columns, *([POSITION] if POSITION in df.columns else [])))


@cache
def _follower_multipliers() -> Column:
    """Map of suffix to multiplier; no suffix multiplies by one."""
    factors = {"": 1, **{suffix.lower(): n for suffix, n in c.FOLLOWER_SUFFIXES.items()}}
    return F.create_map(
        *(
            part
            for suffix, factor in factors.items()
            for part in (F.lit(suffix), F.lit(factor).cast(_MULTIPLIER))
        )
    )


# ---- the rules of each table ------------------------------------------------------------
@dataclass(frozen=True)
class _Rules:
    """What cleaning one table means: key column, placeholder values, parsers."""

    key: str
    columns: tuple[str, ...]
    sentinels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    parsers: Mapping[str, Parser] = field(default_factory=dict)

    def null_values(self) -> dict[str, tuple[str, ...]]:
        """Per column but the key (a blank key quarantines the row), its sentinels, then blanks."""
        return {
            name: (*self.sentinels.get(name, ()), *c.BLANKS)
            for name in self.columns
            if name != self.key
        }


# Blanks mean "no value" in every column, not only in contract.PIN_BLANKABLE: a blank
# category or country would otherwise become a group of its own in the queries.
_RULES: Final[Mapping[str, _Rules]] = {
    "pin": _Rules(
        key=PIN_KEY,
        columns=c.PIN_SOURCE_COLUMNS,
        sentinels=c.PIN_SENTINELS,
        parsers={"follower_count": parse_follower_count},
    ),
    "geo": _Rules(
        key=IND,
        columns=c.GEO_SOURCE_COLUMNS,
        parsers={
            "timestamp": parse_timestamp,
            "latitude": parse_double,
            "longitude": parse_double,
        },
    ),
    "user": _Rules(
        key=IND,
        columns=c.USER_SOURCE_COLUMNS,
        parsers={
            "age": partial(parse_integer, data_type=IntegerType()),
            "date_joined": parse_timestamp,
        },
    ),
}


@cache
def _quarantine_reason(key: str) -> Column:
    """Why a raw row can't be kept (its key is missing or not an integer), else null."""
    return _reason_of(F.col(key), parse_integer(F.col(key)))


def _reason_of(raw: Column, parsed: Column) -> Column:
    """``_quarantine_reason`` of a raw key, given that key already parsed."""
    return F.when(raw.isNull() | raw.isin(*c.BLANKS), F.lit(REJECT_MISSING_IND)).when(
        parsed.isNull(), F.lit(REJECT_NON_INTEGER_IND)
    )


def _standardise(table: Table, observation: Observation | None = None) -> Transform:
    """Drop quarantined rows, null the placeholders, parse the typed columns; with an
    ``observation``, observe the quality figures (``quality_aggregates``) on the way."""
    if observation is not None:
        return partial(_standardise_observed, table=table, observation=observation)
    rules = _RULES[table]

    def transform(df: DataFrame) -> DataFrame:
        keep, key, parsed = _standard_columns(table)
        return (
            df.filter(keep)
            .withColumn(rules.key, key)
            .transform(nullify_values(rules.null_values()))
            .withColumns(parsed)
        )

    return transform


# Hidden columns of the observed path: every value parsed once, before the quality figures.
_PARSED_KEY: Final = "_parsed_key"
_REASON: Final = "_reason"


def _parsed_name(name: str) -> str:
    return f"_parsed_{name}"


def _standardise_observed(df: DataFrame, table: Table, observation: Observation) -> DataFrame:
    """``_standardise`` that also observes the quality figures, parsing each value once.

    The quality figures count values that fail to parse, and cleaning parses them: the
    key and the typed columns are parsed into hidden columns first, and both the figures
    (``quality_aggregates`` over those columns) and the cleaned columns read them. On a
    million rows, parsing twice was a third of cleaning's time (0.35-0.5 s per table).
    Without an observation the plain path stays: a streaming micro-batch of 30 rows costs
    its plan, not its parsing, and the hidden columns' extra steps made it slower (its
    cleaning 22 ms to 42 ms a table, in a micro-benchmark of the streaming sink).
    """
    rules = _RULES[table]
    staged, reason, parsed, cleaned = _observed_columns(table)
    return (
        df.withColumns(staged)
        .withColumn(_REASON, reason)
        .observe(observation, *quality_aggregates(table, F.col(_REASON), parsed))
        .filter(F.col(_REASON).isNull())
        .withColumn(rules.key, F.col(_PARSED_KEY))
        .transform(nullify_values(rules.null_values()))
        .withColumns(cleaned)
        .drop(*staged, _REASON)
    )


@cache
def _observed_columns(
    table: Table,
) -> tuple[dict[str, Column], Column, dict[str, Column], dict[str, Column]]:
    """``_standardise_observed``'s parsed columns, reason, their names for the figures and
    the cleaned typed columns (a placeholder, nulled by then, stays null)."""
    rules = _RULES[table]
    staged = {_PARSED_KEY: parse_integer(F.col(rules.key))}
    staged |= {_parsed_name(name): parse(F.col(name)) for name, parse in rules.parsers.items()}
    parsed = {name: F.col(_parsed_name(name)) for name in rules.parsers}
    cleaned = {
        name: F.when(F.col(name).isNotNull(), F.col(_parsed_name(name))) for name in rules.parsers
    }
    return staged, _reason_of(F.col(rules.key), F.col(_PARSED_KEY)), parsed, cleaned


@cache
def _standard_columns(table: Table) -> tuple[Column, Column, dict[str, Column]]:
    """``_standardise``'s row filter, parsed key and parsed typed columns."""
    rules = _RULES[table]
    return (
        _quarantine_reason(rules.key).isNull(),
        parse_integer(F.col(rules.key)),
        {name: parse(F.col(name)) for name, parse in rules.parsers.items()},
    )


# ---- public entry points ----------------------------------------------------------------
def split_quarantine(df: DataFrame, table: Table) -> tuple[DataFrame, DataFrame]:
    """Split raw rows into those with a usable ind and the rest, with a ``reason`` column."""
    reason, kept, rejected = _split_columns(table)
    return df.filter(kept), df.withColumn(REASON, reason).filter(rejected)


@cache
def _split_columns(table: Table) -> tuple[Column, Column, Column]:
    reason = _quarantine_reason(_RULES[table].key)
    return reason, reason.isNull(), F.col(REASON).isNotNull()


def clean_pin(df: DataFrame, observation: Observation | None = None) -> DataFrame:
    """Raw pin records to the contract's pin table (rows with a bad index are left out)."""
    return (
        df.transform(_standardise("pin", observation))
        .withColumn("save_location", _save_location())
        .withColumnRenamed(PIN_KEY, IND)
        .transform(partial(_with_position, columns=c.PIN_CLEAN_COLUMNS))
        .transform(dedupe_by_ind)
    )


def clean_geo(df: DataFrame, observation: Observation | None = None) -> DataFrame:
    """Raw geo records to the contract's geo table (rows with a bad ind are left out)."""
    return (
        df.transform(_standardise("geo", observation))
        .withColumn("coordinates", _coordinates())
        .transform(partial(_with_position, columns=c.GEO_CLEAN_COLUMNS))
        .transform(dedupe_by_ind)
    )


def clean_user(df: DataFrame, observation: Observation | None = None) -> DataFrame:
    """Raw user records to the contract's user table (rows with a bad ind are left out)."""
    return (
        df.transform(_standardise("user", observation))
        .withColumn("user_name", _user_name())
        .transform(partial(_with_position, columns=c.USER_CLEAN_COLUMNS))
        .transform(dedupe_by_ind)
    )


@cache
def _save_location() -> Column:
    return F.regexp_replace("save_location", _SAVE_LOCATION_PREFIX_PATTERN, "")


@cache
def _coordinates() -> Column:
    latitude, longitude = F.col("latitude"), F.col("longitude")
    # Half a coordinate locates nothing: either part missing makes the pair null.
    return F.when(latitude.isNotNull() & longitude.isNotNull(), F.array(latitude, longitude))


@cache
def _user_name() -> Column:
    first_name, last_name = F.col("first_name"), F.col("last_name")
    # concat_ws skips nulls: one missing name leaves the other alone, both missing is null.
    return F.when(
        first_name.isNotNull() | last_name.isNotNull(), F.concat_ws(" ", first_name, last_name)
    )


class Cleaner(Protocol):
    """A table's cleaner: raw rows in, the contract's table out; with an ``observation``,
    the table's quality figures (``quality_aggregates``) are observed while it cleans."""

    def __call__(self, df: DataFrame, observation: Observation | None = None) -> DataFrame: ...


CLEANERS: Final[Mapping[str, Cleaner]] = {
    "pin": clean_pin,
    "geo": clean_geo,
    "user": clean_user,
}


# ---- data quality -------------------------------------------------------------------------
RULE_ROWS: Final = "rows"
RULE_QUARANTINED: Final = "quarantined"
RULE_DUPLICATE: Final = "duplicate"
RULE_SENTINEL: Final = "sentinel"
RULE_BLANK: Final = "blank"
RULE_UNPARSEABLE: Final = "unparseable"
# Rows with a usable ind: not a figure of the report, the duplicate count derives from it.
_RULE_KEPT: Final = "kept"

QUALITY_SCHEMA: Final = StructType(
    [
        StructField("table", StringType(), False),
        StructField("column", StringType()),
        StructField("rule", StringType(), False),
        StructField("value", StringType()),
        StructField("count", LongType(), False),
    ]
)


@dataclass(frozen=True)
class QualityCheck:
    """One figure of the quality report: an aggregate over the raw rows of one table."""

    column: str | None
    rule: str
    value: str | None
    count: Column


def quality_checks(
    table: Table, reason: Column | None = None, parsed: Mapping[str, Column] | None = None
) -> list[QualityCheck]:
    """The aggregates behind ``quality_rows``: every one a count over the raw rows.

    Rows: all input rows; quarantined rows per reason; rows with a usable ind (the duplicate
    count is those less the rows the cleaner keeps, so no distinct count is needed); per
    column, each sentinel and blank value nulled; per typed column, values that were not
    placeholders yet failed to parse. No distinct, no shuffle: the batch job computes them
    with ``DataFrame.observe`` while it cleans, in the same pass.

    ``reason`` and ``parsed`` (per typed column) are the quarantine reason and the parsed
    values when the caller has them as columns already; by default they are computed from
    the raw columns.
    """
    rules = _RULES[table]
    reason = _quarantine_reason(rules.key) if reason is None else reason
    parsed = parsed or {}
    checks = [
        QualityCheck(None, RULE_ROWS, None, F.count(F.lit(1))),
        *(
            QualityCheck(rules.key, RULE_QUARANTINED, why, F.count_if(reason == why))
            for why in (REJECT_MISSING_IND, REJECT_NON_INTEGER_IND)
        ),
        QualityCheck(IND, _RULE_KEPT, None, F.count_if(reason.isNull())),
    ]
    null_values = rules.null_values()
    for name, values in null_values.items():
        checks.extend(
            QualityCheck(
                name,
                RULE_BLANK if value in c.BLANKS else RULE_SENTINEL,
                value,
                F.count_if(F.col(name) == value),
            )
            for value in values
        )
    for name, parse in rules.parsers.items():
        raw = F.col(name)
        value = parsed[name] if name in parsed else parse(raw)
        failed = raw.isNotNull() & ~raw.isin(*null_values[name]) & value.isNull()
        checks.append(QualityCheck(name, RULE_UNPARSEABLE, None, F.count_if(failed)))
    return checks


def quality_aggregates(
    table: Table, reason: Column | None = None, parsed: Mapping[str, Column] | None = None
) -> list[Column]:
    """``quality_checks`` as named aggregate columns (``q0``, ``q1``…), for ``agg`` or ``observe``."""
    checks = quality_checks(table, reason, parsed)
    return [check.count.alias(f"q{i}") for i, check in enumerate(checks)]


def quality_rows(
    table: Table, values: Mapping[str, int], clean_rows: int
) -> list[dict[str, object]]:
    """The report's rows (``QUALITY_SCHEMA``) from the aggregates' values and the clean count."""
    rows: list[dict[str, object]] = []
    for i, check in enumerate(quality_checks(table)):
        count = int(values[f"q{i}"])
        rule = check.rule
        if rule == _RULE_KEPT:  # kept rows less the cleaned ones: the duplicates dropped
            rule, count = RULE_DUPLICATE, count - clean_rows
        rows.append(
            {
                "table": table,
                "column": check.column,
                "rule": rule,
                "value": check.value,
                "count": count,
            }
        )
    return rows
