"""Spark's cleaning and answers against an independent reference on generated data.

The generator's rows go to disk as the S3 sink stores them (JSON lines, datetimes as text),
with duplicates and a few unusable rows added. Spark cleans and queries them with the
project's code; the reference cleans them in plain Python and answers in DuckDB SQL, both
written from the contract alone. Every cleaned row and every answer must agree.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from pyspark.sql import DataFrame, SparkSession

from services.source_db.generator import SourceGenerator
from spark.transformations.cleaning import CLEANERS
from spark.transformations.queries import run_all
from spark.transformations.schemas import RAW_SCHEMAS
from tests import contract_values as c

pytestmark = pytest.mark.unit

SEED = 7
POSTS = 3000
DUPLICATED_INDS = 150
KEYS = {"pin": "index", "geo": "ind", "user": "ind"}
DATETIME_COLUMNS = {"pin": (), "geo": ("timestamp",), "user": ("date_joined",)}

Record = dict[str, Any]


# ---- the wire -----------------------------------------------------------------------------
def resent(record: Record, table: str) -> Record:
    """The same source row as another client sends it: ISO datetimes, numbers as strings."""
    copy = {k: (str(v) if isinstance(v, int | float) else v) for k, v in record.items()}
    for column in DATETIME_COLUMNS[table]:
        copy[column] = record[column].isoformat()
    return copy


def wire_records(seed: int, posts: int) -> dict[str, list[Record]]:
    """Generated rows, some posted twice (the second time in the other wire form), shuffled."""
    chunk = SourceGenerator(seed=seed).generate(posts)
    tables = {
        "pin": chunk.pin.to_pylist(),
        "geo": chunk.geo.to_pylist(),
        "user": chunk.user.to_pylist(),
    }
    rng = random.Random(seed)
    twice = rng.sample(range(posts), DUPLICATED_INDS)
    wire = {}
    for table, records in tables.items():
        unusable = [
            {**records[0], KEYS[table]: None},
            {**records[1], KEYS[table]: "not-a-number"},
        ]
        wire[table] = records + [resent(records[i], table) for i in twice] + unusable
        rng.shuffle(wire[table])
    return wire


@pytest.fixture(scope="module")
def sink_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One JSON-lines file per table, written the way the original client serialises rows."""
    folder = tmp_path_factory.mktemp("sink")
    paths = {}
    for table, records in wire_records(SEED, POSTS).items():
        paths[table] = folder / f"{table}.json"
        paths[table].write_text("\n".join(json.dumps(r, default=str) for r in records) + "\n")
    return paths


# ---- the reference: plain Python cleaning -------------------------------------------------
FOLLOWERS = re.compile(r"(\d+(?:\.\d+)?)([kmb]?)", re.IGNORECASE)
MULTIPLIERS = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


def text(value: Any, sentinels: tuple[str, ...] = ()) -> str | None:
    """The value as text, or None for a blank or one of ``sentinels``."""
    return None if value is None or value in c.BLANKS or value in sentinels else str(value)


def integer(value: Any) -> int | None:
    """The value as an int, or None where it is not one."""
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def followers(value: Any) -> int | None:
    """Follower text ("874", "1.5k", "2M", "1B") to an exact int, else None."""
    match = FOLLOWERS.fullmatch(str(value).strip()) if value is not None else None
    if match is None:
        return None
    exact = Decimal(match[1]) * MULTIPLIERS[match[2].lower()]
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


def moment(value: Any) -> datetime | None:
    """Datetime text in either wire form to a naive datetime."""
    return None if text(value) is None else datetime.fromisoformat(str(value))


def number(value: Any) -> float | None:
    """Decimal text (or a JSON number) to a float."""
    return None if text(value) is None else float(value)


def reference_pin(r: Record) -> tuple:
    """One raw pin record cleaned, in the contract's column order."""
    s = c.PIN_SENTINELS
    location = text(r["save_location"])
    return (
        integer(r["index"]),
        text(r["unique_id"]),
        text(r["title"], s["title"]),
        text(r["description"], s["description"]),
        followers(text(r["follower_count"], s["follower_count"])),
        text(r["poster_name"], s["poster_name"]),
        text(r["tag_list"], s["tag_list"]),
        text(r["is_image_or_video"]),
        text(r["image_src"], s["image_src"]),
        location.removeprefix(c.SAVE_LOCATION_PREFIX) if location else None,
        text(r["category"]),
    )


def reference_geo(r: Record) -> tuple:
    """One raw geo record cleaned, in the contract's column order."""
    lat, lon = number(r["latitude"]), number(r["longitude"])
    both = lat is not None and lon is not None
    return (
        integer(r["ind"]),
        text(r["country"]),
        [lat, lon] if both else None,
        moment(r["timestamp"]),
    )


def reference_user(r: Record) -> tuple:
    """One raw user record cleaned, in the contract's column order."""
    names = [n for n in (text(r["first_name"]), text(r["last_name"])) if n is not None]
    return (integer(r["ind"]), " ".join(names) or None, integer(r["age"]), moment(r["date_joined"]))


REFERENCE_CLEANERS = {"pin": reference_pin, "geo": reference_geo, "user": reference_user}


@pytest.fixture(scope="module")
def reference_clean(sink_files: dict[str, Path]) -> dict[str, list[tuple]]:
    """Cleaned rows per table, sorted by ind; duplicates must clean to the same row."""
    tables = {}
    for table, path in sink_files.items():
        rows: dict[int, tuple] = {}
        for line in path.read_text().splitlines():
            row = REFERENCE_CLEANERS[table](json.loads(line))
            if row[0] is not None:
                assert rows.setdefault(row[0], row) == row
        tables[table] = [rows[ind] for ind in sorted(rows)]
    return tables


# ---- the reference: DuckDB answers --------------------------------------------------------
AGE_GROUP = """CASE WHEN age BETWEEN 18 AND 24 THEN '18-24' WHEN age BETWEEN 25 AND 35 THEN '25-35'
    WHEN age BETWEEN 36 AND 50 THEN '36-50' WHEN age > 50 THEN '+50' END"""
AGE_ORDER = "list_position(['18-24', '25-35', '36-50', '+50'], age_group)"
USERS_SQL = f"""(SELECT u.*, p.follower_count, p.category, year(u.date_joined) AS post_year,
    {AGE_GROUP} AS age_group FROM users u JOIN pin p USING (ind))"""
POSTS_SQL = "(SELECT *, year(timestamp) AS post_year FROM pin JOIN geo USING (ind))"
TOP_USERS = f"""SELECT country, poster_name, follower_count FROM {POSTS_SQL}
    WHERE country IS NOT NULL AND poster_name IS NOT NULL AND follower_count IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY country ORDER BY follower_count DESC, poster_name) = 1"""


def popular(source: str, group: str, where: str = "TRUE") -> str:
    """SQL: per ``group``, the category with the most rows of ``source`` (ties by name)."""
    return f"""SELECT {group}, category, count(*) AS category_count FROM {source}
        WHERE {group} IS NOT NULL AND category IS NOT NULL AND {where} GROUP BY {group}, category
        QUALIFY row_number() OVER (PARTITION BY {group} ORDER BY count(*) DESC, category) = 1"""


def medians(group: str, where: str = "TRUE") -> str:
    """SQL: the median known follower count of users per ``group``."""
    return f"""SELECT {group}, median(follower_count) AS median_follower_count FROM {USERS_SQL}
        WHERE follower_count IS NOT NULL AND {where} GROUP BY {group}"""


JOINED = "post_year BETWEEN 2015 AND 2020"
REFERENCE_SQL = {
    "q1_popular_category_by_country": f"{popular(POSTS_SQL, 'country')} ORDER BY country",
    "q2_popular_category_by_year": (
        f"{popular(POSTS_SQL, 'post_year', 'post_year BETWEEN 2018 AND 2022')} ORDER BY post_year"
    ),
    "q3_top_user_per_country": f"{TOP_USERS} ORDER BY country",
    "q3_country_with_top_user": f"""SELECT country, follower_count FROM ({TOP_USERS})
        ORDER BY follower_count DESC, country LIMIT 1""",
    "q4_popular_category_by_age_group": f"{popular(USERS_SQL, 'age_group')} ORDER BY {AGE_ORDER}",
    "q5_median_followers_by_age_group": (
        f"{medians('age_group', 'age_group IS NOT NULL')} ORDER BY {AGE_ORDER}"
    ),
    "q6_users_joined_by_year": f"""SELECT post_year, count(*) AS number_users_joined
        FROM (SELECT year(date_joined) AS post_year FROM users) WHERE {JOINED}
        GROUP BY post_year ORDER BY post_year""",
    "q7_median_followers_by_join_year": f"{medians('post_year', JOINED)} ORDER BY post_year",
    "q8_median_followers_by_age_group_and_join_year": f"""
        SELECT age_group, post_year, median_follower_count FROM (
            {medians("age_group, post_year", f"{JOINED} AND age_group IS NOT NULL")})
        ORDER BY {AGE_ORDER}, post_year""",
}

ARROW_SCHEMAS = {
    "pin": pa.schema(
        [
            (n, pa.int64() if n in ("ind", "follower_count") else pa.string())
            for n in c.PIN_CLEAN_COLUMNS
        ]
    ),
    "geo": pa.schema(
        [
            ("ind", pa.int64()),
            ("country", pa.string()),
            ("coordinates", pa.list_(pa.float64())),
            ("timestamp", pa.timestamp("us")),
        ]
    ),
    "users": pa.schema(
        [
            ("ind", pa.int64()),
            ("user_name", pa.string()),
            ("age", pa.int32()),
            ("date_joined", pa.timestamp("us")),
        ]
    ),
}


@pytest.fixture(scope="module")
def reference_answers(reference_clean: dict[str, list[tuple]]) -> dict[str, tuple[list, list]]:
    """Each answer as (column names, rows), computed by DuckDB from the reference tables."""
    con = duckdb.connect()
    for name, table in (("pin", "pin"), ("geo", "geo"), ("users", "user")):
        schema = ARROW_SCHEMAS[name]
        rows = [dict(zip(schema.names, row, strict=True)) for row in reference_clean[table]]
        con.register(name, pa.Table.from_pylist(rows, schema=schema))
    answers = {}
    for name, sql in REFERENCE_SQL.items():
        result = con.sql(sql)
        answers[name] = (result.columns, result.fetchall())
    con.close()
    return answers


# ---- Spark --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spark_clean(spark: SparkSession, sink_files: dict[str, Path]) -> Iterator[dict[str, DataFrame]]:
    """The project's cleaning over the sink files, cached for the queries."""
    tables = {}
    for table, path in sink_files.items():
        raw = spark.read.schema(RAW_SCHEMAS[table]).json(str(path))
        tables[table] = CLEANERS[table](raw).cache()
    yield tables
    for df in tables.values():
        df.unpersist()


@pytest.fixture(scope="module")
def spark_answers(spark_clean: dict[str, DataFrame]) -> dict[str, tuple[list, list]]:
    """Each answer as (column names, rows), computed by the project's queries."""
    answers = run_all(spark_clean["pin"], spark_clean["geo"], spark_clean["user"])
    return {name: (df.columns, [tuple(r) for r in df.collect()]) for name, df in answers.items()}


@pytest.mark.parametrize("table", ["pin", "geo", "user"])
def test_cleaned_tables_match_the_reference(
    spark_clean: dict[str, DataFrame], reference_clean: dict[str, list[tuple]], table: str
) -> None:
    rows = [tuple(r) for r in spark_clean[table].orderBy("ind").collect()]
    assert len(rows) == POSTS
    assert rows == reference_clean[table]


@pytest.mark.parametrize("name", list(REFERENCE_SQL))
def test_answers_match_the_reference(
    spark_answers: dict[str, tuple[list, list]],
    reference_answers: dict[str, tuple[list, list]],
    name: str,
) -> None:
    columns, rows = spark_answers[name]
    expected_columns, expected_rows = reference_answers[name]
    assert columns == expected_columns
    assert rows, "an empty answer would match trivially"
    assert rows == expected_rows


def test_reference_covers_every_answer(spark_answers: dict[str, tuple[list, list]]) -> None:
    assert list(spark_answers) == list(REFERENCE_SQL)
