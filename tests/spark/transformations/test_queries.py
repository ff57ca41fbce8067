"""The eight queries on hand-made cleaned tables whose answers were worked out by hand."""

from __future__ import annotations

from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark.transformations import queries as q
from spark.transformations.schemas import CLEAN_SCHEMAS
from tests.contract_values import ANSWER_COLUMNS

pytestmark = pytest.mark.unit


def pins(spark: SparkSession, *rows: tuple[int, str | None, str | None, int | None]) -> DataFrame:
    """A cleaned pin table from (ind, category, poster_name, follower_count)."""
    return spark.createDataFrame(
        [
            (ind, f"uid-{ind}", "title", "description", followers, poster, "tags", "image",
             "https://i.pinimg.com/x.jpg", f"/data/{category}", category)
            for ind, category, poster, followers in rows
        ],
        CLEAN_SCHEMAS["pin"],
    )  # fmt: skip


def geos(spark: SparkSession, *rows: tuple[int, str | None, int]) -> DataFrame:
    """A cleaned geo table from (ind, country, year posted)."""
    return spark.createDataFrame(
        [(ind, country, [0.0, 0.0], datetime(year, 6, 1, 12)) for ind, country, year in rows],
        CLEAN_SCHEMAS["geo"],
    )


def users(spark: SparkSession, *rows: tuple[int, int | None, int | None]) -> DataFrame:
    """A cleaned user table from (ind, age, year joined)."""
    return spark.createDataFrame(
        [
            (ind, f"User {ind}", age, None if year is None else datetime(year, 3, 1, 8))
            for ind, age, year in rows
        ],
        CLEAN_SCHEMAS["user"],
    )


def expect(spark: SparkSession, actual: DataFrame, schema: str, rows: list[tuple]) -> None:
    """``actual`` has exactly ``rows``, in this order, under this schema."""
    expected = spark.createDataFrame(rows, schema)
    assert_df_equality(actual, expected, ignore_nullable=True)


# ---- queries 1 to 3: posts and where they were posted -------------------------------------
def test_q1_most_popular_category_per_country(spark: SparkSession) -> None:
    pin = pins(
        spark,
        (1, "art", "A", 1),
        (2, "art", "A", 1),
        (3, "beauty", "A", 1),
        (4, "travel", "A", 1),
        (5, "diy-and-crafts", "A", 1),  # ties with travel, wins by name
        (6, None, "A", 1),
        (7, None, "A", 1),  # two posts without a category don't make one popular
        (8, "quotes", "A", 1),
        (9, "art", "A", 1),  # no country
        (10, "vehicles", "A", 1),  # no geo row
    )
    geo = geos(
        spark,
        (1, "Aland", 2020),
        (2, "Aland", 2020),
        (3, "Aland", 2020),
        (4, "Bhutan", 2020),
        (5, "Bhutan", 2020),
        (6, "Chad", 2020),
        (7, "Chad", 2020),
        (8, "Chad", 2020),
        (9, None, 2020),
        (11, "Denmark", 2020),  # no post
    )
    expect(
        spark,
        q.q1_popular_category_by_country(pin, geo),
        "country string, category string, category_count long",
        [("Aland", "art", 2), ("Bhutan", "diy-and-crafts", 1), ("Chad", "quotes", 1)],
    )


def test_q2_most_popular_category_per_year_2018_to_2022(spark: SparkSession) -> None:
    posts = [
        (1, "art", 2017),
        (2, "art", 2017),
        (3, "art", 2017),  # 2017 is out of range, however popular
        (4, "beauty", 2018),
        (5, "art", 2018),  # ties with beauty, wins by name
        (6, "travel", 2019),
        (7, "travel", 2019),
        (8, "art", 2019),
        (9, "vehicles", 2022),
        (10, None, 2022),
        (11, None, 2022),
        (12, "art", 2023),
    ]
    pin = pins(spark, *((ind, category, "A", 1) for ind, category, _ in posts))
    geo = geos(spark, *((ind, "Aland", year) for ind, _, year in posts))
    expect(
        spark,
        q.q2_popular_category_by_year(pin, geo),
        "post_year int, category string, category_count long",
        [(2018, "art", 1), (2019, "travel", 2), (2022, "vehicles", 1)],
    )


@pytest.fixture(scope="module")
def top_users(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    """Posters and their follower counts in three countries, with ties and gaps."""
    posts = [
        (1, "Zed", 500, "Aland"),
        (2, "Amy", 500, "Aland"),  # ties with Zed, wins by name
        (3, "Bob", 100, "Aland"),
        (4, "Cat", 2_000_000, "Bhutan"),  # ties with Eve's Chad, Bhutan wins by name
        (5, None, 9_999_999_999, "Bhutan"),  # nameless
        (6, "Dan", None, "Bhutan"),  # unknown count
        (7, "Eve", 2_000_000, "Chad"),
        (8, "Fay", 5_000_000_000, None),  # no country
    ]
    pin = pins(spark, *((ind, "art", poster, n) for ind, poster, n, _ in posts))
    geo = geos(spark, *((ind, country, 2020) for ind, _, _, country in posts))
    return pin, geo


def test_q3_top_user_per_country(
    spark: SparkSession, top_users: tuple[DataFrame, DataFrame]
) -> None:
    expect(
        spark,
        q.q3_top_user_per_country(*top_users),
        "country string, poster_name string, follower_count long",
        [("Aland", "Amy", 500), ("Bhutan", "Cat", 2_000_000), ("Chad", "Eve", 2_000_000)],
    )


def test_q3_country_with_top_user(
    spark: SparkSession, top_users: tuple[DataFrame, DataFrame]
) -> None:
    expect(
        spark,
        q.q3_country_with_top_user(*top_users),
        "country string, follower_count long",
        [("Bhutan", 2_000_000)],
    )


# ---- queries 4 and 5: age groups ----------------------------------------------------------
def test_age_group_boundaries(spark: SparkSession) -> None:
    ages = [17, 18, 24, 25, 35, 36, 50, 51, None]
    df = spark.createDataFrame([(age,) for age in ages], "age int")
    groups = [r.group for r in df.select(q.age_group(F.col("age")).alias("group")).collect()]
    assert groups == [None, "18-24", "18-24", "25-35", "25-35", "36-50", "36-50", "+50", None]


@pytest.fixture(scope="module")
def ages(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    """Users at every age-group boundary, with their post's category and follower count."""
    people = [
        (1, 17, "art", 1_000),  # minors belong to no group
        (2, 17, "art", 1_000),
        (3, 18, "beauty", 10),
        (4, 24, "beauty", 20),
        (5, 20, "art", None),  # unknown count: left out of the median
        (6, 25, "travel", 5),
        (7, 35, "art", 7),  # ties with travel, wins by name
        (8, 36, "quotes", 100),
        (9, 50, "quotes", 300),
        (10, 40, None, 200),
        (11, 51, "vehicles", 1),
        (12, None, "art", 50),  # unknown age
    ]
    pin = pins(spark, *((ind, category, "A", n) for ind, _, category, n in people))
    user = users(spark, *((ind, age, 2016) for ind, age, _, _ in people), (13, 30, 2016))
    return pin, user


def test_q4_most_popular_category_per_age_group(
    spark: SparkSession, ages: tuple[DataFrame, DataFrame]
) -> None:
    expect(
        spark,
        q.q4_popular_category_by_age_group(*ages),
        "age_group string, category string, category_count long",
        [
            ("18-24", "beauty", 2),
            ("25-35", "art", 1),
            ("36-50", "quotes", 2),
            ("+50", "vehicles", 1),
        ],
    )


def test_q5_median_follower_count_per_age_group(
    spark: SparkSession, ages: tuple[DataFrame, DataFrame]
) -> None:
    expect(
        spark,
        q.q5_median_followers_by_age_group(*ages),
        "age_group string, median_follower_count double",
        [("18-24", 15.0), ("25-35", 6.0), ("36-50", 200.0), ("+50", 1.0)],
    )


# ---- queries 6 to 8: the year users joined ------------------------------------------------
@pytest.fixture(scope="module")
def joined(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    """Users who joined from 2014 to 2021, with their age and their post's follower count."""
    people = [
        (1, 20, 2014, 999),  # before the range
        (2, 20, 2015, 10),
        (3, 30, 2015, 30),
        (4, 40, 2015, 20),
        (5, 20, 2016, 10),
        (6, 22, 2016, 20),
        (7, 60, 2020, 100),
        (8, 60, 2020, None),  # unknown count
        (9, 16, 2020, 50),  # a minor: in queries 6 and 7, in no age group for 8
        (10, 30, 2021, 5),  # after the range
    ]
    pin = pins(spark, *((ind, "art", "A", n) for ind, _, _, n in people))
    user = users(
        spark,
        *((ind, age, year) for ind, age, year, _ in people),
        (11, 30, 2018),  # a user without a post: joined, but no follower count
        (12, 30, None),  # never known to have joined
    )
    return pin, user


def test_q6_users_joined_per_year(spark: SparkSession, joined: tuple[DataFrame, DataFrame]) -> None:
    _, user = joined
    expect(
        spark,
        q.q6_users_joined_by_year(user),
        "post_year int, number_users_joined long",
        [(2015, 3), (2016, 2), (2018, 1), (2020, 3)],
    )


def test_q7_median_follower_count_by_join_year(
    spark: SparkSession, joined: tuple[DataFrame, DataFrame]
) -> None:
    expect(
        spark,
        q.q7_median_followers_by_join_year(*joined),
        "post_year int, median_follower_count double",
        [(2015, 20.0), (2016, 15.0), (2020, 75.0)],
    )


def test_q8_median_follower_count_by_age_group_and_join_year(
    spark: SparkSession, joined: tuple[DataFrame, DataFrame]
) -> None:
    expect(
        spark,
        q.q8_median_followers_by_age_group_and_join_year(*joined),
        "age_group string, post_year int, median_follower_count double",
        [
            ("18-24", 2015, 10.0),
            ("18-24", 2016, 15.0),
            ("25-35", 2015, 30.0),
            ("36-50", 2015, 20.0),
            ("+50", 2020, 100.0),
        ],
    )


def test_run_all_names_every_answer_and_its_columns(spark: SparkSession) -> None:
    answers = q.run_all(pins(spark), geos(spark), users(spark))
    columns = {name: df.columns for name, df in answers.items()}
    assert list(columns.items()) == list(ANSWER_COLUMNS.items())
