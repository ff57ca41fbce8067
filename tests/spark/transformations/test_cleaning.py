"""Every cleaning rule of the contract, each on a tiny inline DataFrame of raw records.

Spark jobs are what cost time, so the one-record cases of each table are cleaned together
in one job (the ``cleaned`` fixture) and each parametrized test looks up its own case.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from services.core.settings import TABLES
from spark.transformations import cleaning as cl
from spark.transformations.schemas import CLEAN_SCHEMAS, RAW_SCHEMAS
from tests import contract_values as c

pytestmark = pytest.mark.unit

Record = dict[str, str | None]
Cleaned = dict[str, object]

PIN: Record = {
    "index": "1",
    "unique_id": "8a4b0c2e-0000-4000-8000-000000000001",
    "title": "Cosy Reading Nook",
    "description": "Ideas for a reading corner.",
    "poster_name": "Nook Co",
    "follower_count": "874",
    "tag_list": "nook,reading",
    "is_image_or_video": "image",
    "image_src": "https://i.pinimg.com/originals/8a/4b/0c/8a4b0c2e.jpg",
    "downloaded": "1",
    "save_location": "Local save in /data/home-decor",
    "category": "home-decor",
}
GEO: Record = {
    "ind": "1",
    "timestamp": "2020-08-28 03:52:47",
    "latitude": "-5.9",
    "longitude": "-165.5",
    "country": "Bouvet Island (Bouvetoya)",
}
USER: Record = {
    "ind": "1",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "age": "36",
    "date_joined": "2016-06-26 05:42:09",
}
DEFAULTS = {"pin": PIN, "geo": GEO, "user": USER}
KEYS = {"pin": "index", "geo": "ind", "user": "ind"}
CLEAN_COLUMNS = {
    "pin": c.PIN_CLEAN_COLUMNS,
    "geo": c.GEO_CLEAN_COLUMNS,
    "user": c.USER_CLEAN_COLUMNS,
}

POSTED = datetime(2020, 8, 28, 3, 52, 47)
JOINED = datetime(2016, 6, 26, 5, 42, 9)

SENTINELS = [(column, value) for column, values in c.PIN_SENTINELS.items() for value in values]
SAVE_LOCATIONS = [
    ("Local save in /data/art", "/data/art"),
    ("/data/art", "/data/art"),
    ("Saved: Local save in /data/art", "Saved: Local save in /data/art"),
]
COORDINATES = [
    ("12.345678", "1e-7", [12.345678, 1e-7]),
    (None, "12", None),
    ("12", "", None),
    ("north", "12", None),
]
USER_NAMES = [
    ("Ada", "Lovelace", "Ada Lovelace"),
    (None, "Lovelace", "Lovelace"),
    ("Ada", " ", "Ada"),
    ("", None, None),
]
AGES = [("36", 36), ("36.0", 36), ("36.5", None), ("old", None)]
FOLLOWER_COUNTS = [
    ("874", 874),
    ("0", 0),
    ("51k", 51_000),
    ("1.5k", 1_500),
    ("2M", 2_000_000),
    ("2.3M", 2_300_000),
    ("1B", 1_000_000_000),
    (" 874 ", 874),
    ("1.2345k", 1_235),
    (c.USER_INFO_ERROR, None),
    ("garbage", None),
    ("1.5K", 1_500),
    ("2m", 2_000_000),
    ("1b", 1_000_000_000),
    ("2 M", None),
    ("k", None),
    ("-5", None),
    ("1,000", None),
    ("9999999999B", None),
    (None, None),
]
INTEGERS = [
    ("42", 42),
    (" 42 ", 42),
    ("42.0", 42),
    ("4.2", None),
    ("abc", None),
    ("9223372036854775808", None),
    (None, None),
]
TIMESTAMPS = [
    ("2020-08-28 03:52:47", POSTED),
    ("2020-08-28T03:52:47", POSTED),
    ("2020-08-28T03:52:47.250000", datetime(2020, 8, 28, 3, 52, 47, 250_000)),
    ("2020-08-28 03:52:47.5", datetime(2020, 8, 28, 3, 52, 47, 500_000)),
    ("2020-08-28", None),
    ("2020-02-30 00:00:00", None),
    ("yesterday", None),
    (None, None),
]
PARSERS = {
    "follower_count": (cl.parse_follower_count, FOLLOWER_COUNTS),
    "integer": (cl.parse_integer, INTEGERS),
    "timestamp": (cl.parse_timestamp, TIMESTAMPS),
}


def blanks(table: str, blank: str) -> Record:
    """A record of ``table`` whose every column but the key is ``blank``."""
    return {name: blank for name in RAW_SCHEMAS[table].fieldNames() if name != KEYS[table]}


# One-record cases per table, each keyed by a tuple naming the rule and its input.
CASES: dict[str, dict[tuple[object, ...], Record]] = {
    "pin": {
        ("default",): {},
        **{("sentinel", col, value): {col: value} for col, value in SENTINELS},
        **{("save_location", text): {"save_location": text} for text, _ in SAVE_LOCATIONS},
        **{("blank", blank): blanks("pin", blank) for blank in c.BLANKS},
    },
    "geo": {
        ("default",): {},
        ("iso",): {"timestamp": "2020-08-28T03:52:47"},
        **{
            ("coordinates", lat, lon): {"latitude": lat, "longitude": lon}
            for lat, lon, _ in COORDINATES
        },
        **{("blank", blank): blanks("geo", blank) for blank in c.BLANKS},
    },
    "user": {
        ("default",): {},
        ("iso",): {"date_joined": "2016-06-26T05:42:09"},
        **{
            ("user_name", first, last): {"first_name": first, "last_name": last}
            for first, last, _ in USER_NAMES
        },
        **{("age", text): {"age": text} for text, _ in AGES},
        **{("blank", blank): blanks("user", blank) for blank in c.BLANKS},
    },
}


def raw(spark: SparkSession, table: str, *changes: Record) -> DataFrame:
    """Raw records of ``table``: the table's default record with each change applied."""
    schema = RAW_SCHEMAS[table]
    rows = [{**DEFAULTS[table], **change} for change in changes]
    return spark.createDataFrame([tuple(r[n] for n in schema.fieldNames()) for r in rows], schema)


@pytest.fixture(scope="module")
def cleaned(spark: SparkSession) -> dict[str, dict[tuple[object, ...], Cleaned]]:
    """Every case of CASES cleaned, one job per table: ``cleaned[table][case]``."""
    result = {}
    for table, cases in CASES.items():
        records = [{**change, KEYS[table]: str(i)} for i, change in enumerate(cases.values(), 1)]
        rows = {
            r.ind: r.asDict() for r in cl.CLEANERS[table](raw(spark, table, *records)).collect()
        }
        result[table] = {case: rows[i] for i, case in enumerate(cases, 1)}
    return result


@pytest.fixture(scope="module")
def parsed(spark: SparkSession) -> dict[str, dict[str | None, object]]:
    """Each parser applied to each of its texts, in one job: ``parsed[parser][text]``."""
    texts = sorted({text for _, cases in PARSERS.values() for text, _ in cases}, key=str)
    df = spark.createDataFrame([(text,) for text in texts], "v string")
    rows = df.select(
        "v", *(parse(F.col("v")).alias(name) for name, (parse, _) in PARSERS.items())
    ).collect()
    return {name: {r.v: r[name] for r in rows} for name in PARSERS}


# ---- schemas ------------------------------------------------------------------------------
def test_raw_schemas_read_every_source_column_as_text() -> None:
    sources = {
        "pin": c.PIN_SOURCE_COLUMNS,
        "geo": c.GEO_SOURCE_COLUMNS,
        "user": c.USER_SOURCE_COLUMNS,
    }
    for table, columns in sources.items():
        assert tuple(RAW_SCHEMAS[table].fieldNames()) == columns
        assert {f.dataType for f in RAW_SCHEMAS[table].fields} == {StringType()}


def test_every_table_has_a_cleaner_and_schemas() -> None:
    assert set(cl.CLEANERS) == set(RAW_SCHEMAS) == set(CLEAN_SCHEMAS) == set(TABLES)


@pytest.mark.parametrize("table", TABLES)
def test_cleaned_schema_is_the_contract(spark: SparkSession, table: str) -> None:
    cleaned_table = cl.CLEANERS[table](raw(spark, table, {}))
    assert cleaned_table.schema == CLEAN_SCHEMAS[table]
    assert tuple(cleaned_table.columns) == CLEAN_COLUMNS[table]


def test_json_numbers_and_number_strings_read_alike(spark: SparkSession, tmp_path: Path) -> None:
    lines = [
        '{"ind": 1, "timestamp": "2020-08-28 03:52:47", "latitude": -5.9, "longitude": 12}',
        '{"ind": "2", "timestamp": "2020-08-28T03:52:47", "latitude": "-5.9", "longitude": "12"}',
    ]
    path = tmp_path / "geo.json"
    path.write_text("\n".join(lines))
    cleaned_geo = cl.clean_geo(spark.read.schema(RAW_SCHEMAS["geo"]).json(str(path)))
    rows = sorted(tuple(r) for r in cleaned_geo.collect())
    assert rows == [(1, None, [-5.9, 12.0], POSTED), (2, None, [-5.9, 12.0], POSTED)]


# ---- whole rows ---------------------------------------------------------------------------
def test_clean_pin_row(spark: SparkSession) -> None:
    raw_pin = raw(spark, "pin", {"index": "7", "follower_count": "1.5k"})
    expected = spark.createDataFrame(
        [
            (
                7,
                PIN["unique_id"],
                PIN["title"],
                PIN["description"],
                1500,
                PIN["poster_name"],
                PIN["tag_list"],
                PIN["is_image_or_video"],
                PIN["image_src"],
                "/data/home-decor",
                "home-decor",
            )
        ],
        CLEAN_SCHEMAS["pin"],
    )
    assert_df_equality(cl.clean_pin(raw_pin), expected)


def test_clean_geo_row(spark: SparkSession) -> None:
    expected = spark.createDataFrame(
        [(1, "Bouvet Island (Bouvetoya)", [-5.9, -165.5], POSTED)], CLEAN_SCHEMAS["geo"]
    )
    assert_df_equality(cl.clean_geo(raw(spark, "geo", {})), expected)


def test_clean_user_row(spark: SparkSession) -> None:
    expected = spark.createDataFrame([(1, "Ada Lovelace", 36, JOINED)], CLEAN_SCHEMAS["user"])
    assert_df_equality(cl.clean_user(raw(spark, "user", {})), expected)


# ---- one rule at a time -------------------------------------------------------------------
@pytest.mark.parametrize(("column", "sentinel"), SENTINELS)
def test_pin_sentinels_become_null(cleaned: dict, column: str, sentinel: str) -> None:
    assert cleaned["pin"][("sentinel", column, sentinel)][column] is None
    assert cleaned["pin"][("default",)][column] is not None


@pytest.mark.parametrize("blank", c.BLANKS, ids=["empty", "space"])
@pytest.mark.parametrize("table", TABLES)
def test_blanks_become_null_in_every_column(cleaned: dict, table: str, blank: str) -> None:
    row = dict(cleaned[table][("blank", blank)])
    assert row.pop("ind") is not None
    assert set(row.values()) == {None}


@pytest.mark.parametrize(("text", "expected"), FOLLOWER_COUNTS)
def test_parse_follower_count(parsed: dict, text: str | None, expected: int | None) -> None:
    assert parsed["follower_count"][text] == expected


@pytest.mark.parametrize(("text", "expected"), INTEGERS)
def test_parse_integer(parsed: dict, text: str | None, expected: int | None) -> None:
    assert parsed["integer"][text] == expected


# Texts either side of the long cast's line: its fast path must read what the exact
# decimal path reads, and leave the rest to it.
INTEGER_EDGES = [
    *(text for text, _ in INTEGERS),
    *("+42", "-42", "042", "-0", "0.0", "42.000", "-42.0", "4.2e1", "4.25e1", "1e3", "42."),
    *(".5", "\t42", "42\n", "4 2", "0x2A", "42L", "", " ", "--42", "9223372036854775807"),
    *("-9223372036854775808", "-9223372036854775809", "2147483647", "2147483648", "1e19"),
]


@pytest.mark.parametrize("data_type", [LongType(), IntegerType()], ids=["long", "int"])
def test_parse_integer_fast_path_reads_as_the_exact_path(
    spark: SparkSession, data_type: DataType
) -> None:
    df = spark.createDataFrame([(t,) for t in INTEGER_EDGES], "v string")
    text = F.trim(F.col("v"))
    rows = df.select(
        "v",
        cl.parse_integer(F.col("v"), data_type).alias("fast"),
        cl._parse_integer_exact(text, data_type).alias("exact"),
    ).collect()
    assert len(rows) == len(INTEGER_EDGES)
    assert {r.v: r.fast for r in rows} == {r.v: r.exact for r in rows}
    assert {r.v: r.fast for r in rows}["-42.0"] == -42


@pytest.mark.parametrize(("text", "expected"), TIMESTAMPS)
def test_parse_timestamp(parsed: dict, text: str | None, expected: datetime | None) -> None:
    assert parsed["timestamp"][text] == expected


@pytest.mark.parametrize(("text", "expected"), SAVE_LOCATIONS)
def test_save_location_keeps_only_the_path(cleaned: dict, text: str, expected: str) -> None:
    assert cleaned["pin"][("save_location", text)]["save_location"] == expected


def test_downloaded_is_dropped(cleaned: dict) -> None:
    assert "downloaded" not in cleaned["pin"][("default",)]


def test_both_datetime_forms_clean_to_the_same_timestamp(cleaned: dict) -> None:
    assert cleaned["geo"][("iso",)]["timestamp"] == cleaned["geo"][("default",)]["timestamp"]
    assert cleaned["geo"][("iso",)]["timestamp"] == POSTED
    assert cleaned["user"][("iso",)]["date_joined"] == JOINED


@pytest.mark.parametrize(("latitude", "longitude", "expected"), COORDINATES)
def test_coordinates_need_both_parts(
    cleaned: dict, latitude: str | None, longitude: str | None, expected: list[float] | None
) -> None:
    assert cleaned["geo"][("coordinates", latitude, longitude)]["coordinates"] == expected


@pytest.mark.parametrize(("first_name", "last_name", "expected"), USER_NAMES)
def test_user_name_joins_the_names_it_has(
    cleaned: dict, first_name: str | None, last_name: str | None, expected: str | None
) -> None:
    assert cleaned["user"][("user_name", first_name, last_name)]["user_name"] == expected


@pytest.mark.parametrize(("text", "expected"), AGES)
def test_age_is_an_integer(cleaned: dict, text: str, expected: int | None) -> None:
    assert cleaned["user"][("age", text)]["age"] == expected


# ---- one row per ind ----------------------------------------------------------------------
@pytest.mark.parametrize("arrival", ["forward", "reversed"])
def test_one_pin_row_per_ind(spark: SparkSession, arrival: str) -> None:
    records = [
        {"index": "1", "unique_id": "a"},
        {"index": "1", "unique_id": "a"},
        {"index": "2", "unique_id": "c"},
        {"index": "2", "unique_id": "b"},
        {"index": "3", "unique_id": "d"},
        {"index": "3.0", "unique_id": "d"},
    ]
    if arrival == "reversed":
        records.reverse()
    cleaned_pin = cl.clean_pin(raw(spark, "pin", *records))
    assert sorted((r.ind, r.unique_id) for r in cleaned_pin.collect()) == [
        (1, "a"),
        (2, "b"),
        (3, "d"),
    ]


@pytest.mark.parametrize("arrival", ["in order", "reversed"])
def test_with_a_source_position_the_first_record_wins_whatever_its_values(
    spark: SparkSession, arrival: str
) -> None:
    # Offset 9 sorts before offset 10 (zero-padded keys); in one object, line 0 before 1.
    early, late = ("topics/t/t+0+0000000009.json", 1), ("topics/t/t+0+0000000010.json", 0)
    if arrival == "reversed":
        early, late = late, early
    versions = [("z-sorts-last", early), ("a-sorts-first", late)]
    schema = StructType(
        [
            *RAW_SCHEMAS["pin"].fields,
            StructField(
                "_position",
                StructType([StructField("key", StringType()), StructField("line", IntegerType())]),
            ),
        ]
    )
    rows = [
        (*({**PIN, "unique_id": uid}[n] for n in RAW_SCHEMAS["pin"].fieldNames()), position)
        for uid, position in versions
    ]
    cleaned_pin = cl.clean_pin(spark.createDataFrame(rows, schema))
    assert cleaned_pin.columns == list(c.PIN_CLEAN_COLUMNS)
    first = min(versions, key=lambda v: v[1])[0]
    assert [r.unique_id for r in cleaned_pin.collect()] == [first]
    if arrival == "in order":
        assert first == "z-sorts-last"  # position, not the values, decided


def test_duplicates_in_either_datetime_form_collapse(spark: SparkSession) -> None:
    geo = raw(spark, "geo", {}, {"timestamp": "2020-08-28T03:52:47"})
    user = raw(spark, "user", {}, {"date_joined": "2016-06-26T05:42:09"})
    assert [tuple(r) for r in cl.clean_geo(geo).collect()] == [
        (1, GEO["country"], [-5.9, -165.5], POSTED)
    ]
    assert [tuple(r) for r in cl.clean_user(user).collect()] == [(1, "Ada Lovelace", 36, JOINED)]


# ---- building blocks ----------------------------------------------------------------------
def test_nullify_values_touches_only_its_columns_and_values(spark: SparkSession) -> None:
    df = spark.createDataFrame([("x", "x"), ("y", "y"), (None, None)], "a string, b string")
    nulled = df.transform(cl.nullify_values({"a": ["x"]}))
    assert [tuple(r) for r in nulled.collect()] == [(None, "x"), ("y", "y"), (None, None)]


# ---- quarantined rows and quality figures -----------------------------------------------------
def test_rows_without_an_integer_ind_are_split_out_with_a_reason(spark: SparkSession) -> None:
    indexes = [None, "", " ", "abc", "1.5", "7"]
    raw_pin = raw(spark, "pin", *({"index": index} for index in indexes))

    good, quarantined = cl.split_quarantine(raw_pin, "pin")

    assert [r["index"] for r in good.collect()] == ["7"]
    assert quarantined.columns == [*c.PIN_SOURCE_COLUMNS, cl.REASON]
    assert [(r["index"], r.reason) for r in quarantined.collect()] == [
        (None, cl.REJECT_MISSING_IND),
        ("", cl.REJECT_MISSING_IND),
        (" ", cl.REJECT_MISSING_IND),
        ("abc", cl.REJECT_NON_INTEGER_IND),
        ("1.5", cl.REJECT_NON_INTEGER_IND),
    ]
    assert [r.ind for r in cl.clean_pin(raw_pin).collect()] == [7]


def quality_report(raw_df: DataFrame, table: cl.Table) -> list[dict[str, object]]:
    """The quality rows as the batch job makes them: observed while the table is cleaned."""
    observed = Observation()
    kept = cl.CLEANERS[table](raw_df, observed).count()
    return cl.quality_rows(table, observed.get, clean_rows=kept)


BAD_KEYS = [None, "", " ", "abc", "1.5", "1e400"]


def dirty_records(table: str) -> list[Record]:
    """Every dirty value this module tries, one record each (own ind), plus bad keys and a
    duplicate: for comparing two ways of cleaning the same input."""
    values: list[tuple[str, str | None]] = {
        "pin": [
            *SENTINELS,
            *(("save_location", text) for text, _ in SAVE_LOCATIONS),
            *(("follower_count", text) for text, _ in FOLLOWER_COUNTS),
            ("follower_count", ""),
            ("follower_count", None),
        ],
        "geo": [
            *(("timestamp", text) for text, _ in TIMESTAMPS),
            *(("latitude", lat) for lat, _, _ in COORDINATES),
            *(("longitude", lon) for _, lon, _ in COORDINATES),
            ("country", ""),
        ],
        "user": [
            *(("first_name", first) for first, _, _ in USER_NAMES),
            *(("age", text) for text, _ in AGES),
            *(("date_joined", text) for text, _ in TIMESTAMPS),
            ("age", " "),
        ],
    }[table]
    key = KEYS[table]
    records: list[Record] = [{key: str(i), column: v} for i, (column, v) in enumerate(values, 2)]
    records += [{key: bad} for bad in BAD_KEYS]
    return [*records, {key: "2.0"}, {key: " 3 "}]


@pytest.mark.parametrize("table", TABLES)
def test_observed_cleaning_matches_plain_cleaning_and_raw_quality(
    spark: SparkSession, table: cl.Table
) -> None:
    """The batch job cleans and observes in one pass, parsing each value once: the same
    rows as the plain cleaner, and the same figures as the aggregates over the raw rows."""
    raw_df = raw(spark, table, *dirty_records(table))
    observed, from_raw = Observation(), Observation()

    plain = cl.CLEANERS[table](raw_df.observe(from_raw, *cl.quality_aggregates(table)))
    checked = cl.CLEANERS[table](raw_df, observed)

    assert_df_equality(checked, plain, ignore_row_order=True)
    kept = plain.count()
    expected = cl.quality_rows(table, from_raw.get, clean_rows=kept)
    assert cl.quality_rows(table, observed.get, clean_rows=kept) == expected
    figures = quality(expected)
    assert figures[(KEYS[table], cl.RULE_QUARANTINED, cl.REJECT_MISSING_IND)] == 3
    assert figures[("ind", cl.RULE_DUPLICATE, None)] == 2
    assert any(rule == cl.RULE_UNPARSEABLE for _, rule, _ in figures)


def quality(rows: list[dict[str, object]]) -> dict[tuple[object, object, object], object]:
    """The non-zero figures of a quality report, keyed by (column, rule, value)."""
    return {(r["column"], r["rule"], r["value"]): r["count"] for r in rows if r["count"]}


def test_quality_figures_pin(spark: SparkSession) -> None:
    error = c.USER_INFO_ERROR
    raw_pin = raw(
        spark,
        "pin",
        {"title": c.TITLE_SENTINEL, "poster_name": error, "follower_count": error},
        {"title": c.TITLE_SENTINEL, "poster_name": error, "follower_count": error},
        {"index": "2", "title": "", "description": "Untitled", "follower_count": "lots"},
        {"index": "3", "title": " ", "follower_count": "1.5k"},
        {"index": None},
        {"index": "x"},
    )

    # The duplicate count is the rows with a usable ind less the rows the cleaner keeps.
    report = quality_report(raw_pin, "pin")

    assert all(list(r) == cl.QUALITY_SCHEMA.fieldNames() for r in report)
    assert quality(report) == {
        (None, cl.RULE_ROWS, None): 6,
        ("index", cl.RULE_QUARANTINED, cl.REJECT_MISSING_IND): 1,
        ("index", cl.RULE_QUARANTINED, cl.REJECT_NON_INTEGER_IND): 1,
        ("ind", cl.RULE_DUPLICATE, None): 1,
        ("title", cl.RULE_SENTINEL, c.TITLE_SENTINEL): 2,
        ("title", cl.RULE_BLANK, ""): 1,
        ("title", cl.RULE_BLANK, " "): 1,
        ("description", cl.RULE_SENTINEL, "Untitled"): 1,
        ("poster_name", cl.RULE_SENTINEL, error): 2,
        ("follower_count", cl.RULE_SENTINEL, error): 2,
        ("follower_count", cl.RULE_UNPARSEABLE, None): 1,
    }


def test_quality_figures_unparseable_typed_columns(spark: SparkSession) -> None:
    raw_user = raw(spark, "user", {"age": "old", "date_joined": "yesterday"}, {"age": ""})
    assert quality(quality_report(raw_user, "user")) == {
        (None, cl.RULE_ROWS, None): 2,
        ("ind", cl.RULE_DUPLICATE, None): 1,
        ("age", cl.RULE_BLANK, ""): 1,
        ("age", cl.RULE_UNPARSEABLE, None): 1,
        ("date_joined", cl.RULE_UNPARSEABLE, None): 1,
    }
