"""The contract's eight queries over the cleaned pin, geo and user tables.

Shared decisions, so every answer is deterministic and explainable:
- each query inner-joins, on ``ind``, only the tables it reads;
- a grouping key that is null (country, category, age group, year) forms no group: a
  missing category isn't a popular category, and ages under 18 belong to no group;
- the top row of a group has the largest count (or follower count), ties going to the
  smallest name (category, poster_name, country);
- medians are exact (``F.median``) over the users whose follower count is known;
- outputs are sorted by their grouping keys, age groups in age order.
"""

from __future__ import annotations

from typing import Final

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark.transformations.cleaning import IND

# (label, youngest, oldest); None: no upper bound.
AGE_GROUPS: Final = (("18-24", 18, 24), ("25-35", 25, 35), ("36-50", 36, 50), ("+50", 51, None))
POST_YEARS: Final = (2018, 2022)
JOIN_YEARS: Final = (2015, 2020)

AGE_GROUP: Final = "age_group"
POST_YEAR: Final = "post_year"
CATEGORY_COUNT: Final = "category_count"
FOLLOWER_COUNT: Final = "follower_count"
MEDIAN_FOLLOWER_COUNT: Final = "median_follower_count"
NUMBER_USERS_JOINED: Final = "number_users_joined"

_RANK: Final = "_rank"


# ---- shared pieces ------------------------------------------------------------------------
def age_group(age: Column) -> Column:
    """The contract's age group of an age; under 18 or unknown: null."""
    return F.coalesce(
        *(
            F.when(
                age >= youngest if oldest is None else age.between(youngest, oldest), F.lit(label)
            )
            for label, youngest, oldest in AGE_GROUPS
        )
    )


def _age_group_order() -> Column:
    """Sort key putting ``age_group`` in age order rather than text order ("+50" last)."""
    labels = F.array(*(F.lit(label) for label, _, _ in AGE_GROUPS))
    return F.array_position(labels, F.col(AGE_GROUP))


def _ordered(df: DataFrame, *keys: str | Column) -> DataFrame:
    """``df`` sorted by ``keys`` in one partition: an answer is small (a row per country at
    most), and a global ``orderBy`` would first sample it in a Spark job of its own."""
    return df.coalesce(1).sortWithinPartitions(*keys)


def _top_per_group(df: DataFrame, group: list[str], by: str, name: str) -> DataFrame:
    """One row per group: the largest ``by``, ties going to the smallest ``name``."""
    ranking = Window.partitionBy(*group).orderBy(F.col(by).desc(), F.col(name).asc())
    return df.withColumn(_RANK, F.row_number().over(ranking)).filter(F.col(_RANK) == 1).drop(_RANK)


def _most_popular_category(df: DataFrame, group: str) -> DataFrame:
    """Per group, the category with the most posts and that count."""
    counts = (
        df.filter(F.col(group).isNotNull() & F.col("category").isNotNull())
        .groupBy(group, "category")
        .agg(F.count(F.lit(1)).alias(CATEGORY_COUNT))
    )
    return _top_per_group(counts, [group], by=CATEGORY_COUNT, name="category").select(
        group, "category", CATEGORY_COUNT
    )


def _posts(pin: DataFrame, geo: DataFrame) -> DataFrame:
    """Posts with their geolocation, ``post_year`` from the geo timestamp.

    Only the columns the queries read: the join (and a job's cache of it) stays narrow.
    """
    return (
        pin.select(IND, "category", "poster_name", FOLLOWER_COUNT)
        .join(geo.select(IND, "country", "timestamp"), on=IND, how="inner")
        .withColumn(POST_YEAR, F.year("timestamp"))
    )


def _users(pin: DataFrame, user: DataFrame) -> DataFrame:
    """Users with their post's follower count, age group and ``post_year`` of joining."""
    return (
        user.select(IND, "age", "date_joined")
        .join(pin.select(IND, "category", FOLLOWER_COUNT), on=IND, how="inner")
        .withColumn(AGE_GROUP, age_group(F.col("age")))
        .withColumn(POST_YEAR, F.year("date_joined"))
    )


def _joined_between(df: DataFrame) -> DataFrame:
    """Only users who joined in the joining-year range of queries 6 to 8."""
    return df.filter(F.col(POST_YEAR).between(*JOIN_YEARS))


def _median_followers(df: DataFrame, group: list[str]) -> DataFrame:
    """Exact median follower count per group, over users whose count is known."""
    return (
        df.filter(F.col(FOLLOWER_COUNT).isNotNull())
        .groupBy(*group)
        .agg(F.median(FOLLOWER_COUNT).alias(MEDIAN_FOLLOWER_COUNT))
    )


# ---- the queries --------------------------------------------------------------------------
# Each query reads one of two joins: ``posts`` (pin with geo, ``_posts``) or ``users`` (user
# with pin, ``_users``); query 6 reads the user table alone. The ``*_from`` functions take a
# join, so that a job computing all answers joins (and may cache) each pair once.
def q1_from(posts: DataFrame) -> DataFrame:
    return _most_popular_category(posts, "country").transform(_ordered, "country")


def q2_from(posts: DataFrame) -> DataFrame:
    in_years = posts.filter(F.col(POST_YEAR).between(*POST_YEARS))
    return _most_popular_category(in_years, POST_YEAR).transform(_ordered, POST_YEAR)


def q3a_from(posts: DataFrame) -> DataFrame:
    # A nameless poster or an unknown count can't be "the user with the most followers".
    known = posts.filter(
        F.col("country").isNotNull()
        & F.col("poster_name").isNotNull()
        & F.col(FOLLOWER_COUNT).isNotNull()
    )
    return (
        _top_per_group(known, ["country"], by=FOLLOWER_COUNT, name="poster_name")
        .select("country", "poster_name", FOLLOWER_COUNT)
        .transform(_ordered, "country")
    )


def q3b_from(posts: DataFrame) -> DataFrame:
    return (
        q3a_from(posts)
        .transform(_ordered, F.col(FOLLOWER_COUNT).desc(), F.col("country").asc())
        .limit(1)
        .select("country", FOLLOWER_COUNT)
    )


def q4_from(users: DataFrame) -> DataFrame:
    return _most_popular_category(users, AGE_GROUP).transform(_ordered, _age_group_order())


def q5_from(users: DataFrame) -> DataFrame:
    grouped = users.filter(F.col(AGE_GROUP).isNotNull())
    return (
        _median_followers(grouped, [AGE_GROUP])
        .select(AGE_GROUP, MEDIAN_FOLLOWER_COUNT)
        .transform(_ordered, _age_group_order())
    )


def q7_from(users: DataFrame) -> DataFrame:
    return (
        _median_followers(_joined_between(users), [POST_YEAR])
        .select(POST_YEAR, MEDIAN_FOLLOWER_COUNT)
        .transform(_ordered, POST_YEAR)
    )


def q8_from(users: DataFrame) -> DataFrame:
    grouped = _joined_between(users).filter(F.col(AGE_GROUP).isNotNull())
    return (
        _median_followers(grouped, [AGE_GROUP, POST_YEAR])
        .select(AGE_GROUP, POST_YEAR, MEDIAN_FOLLOWER_COUNT)
        .transform(_ordered, _age_group_order(), POST_YEAR)
    )


def q1_popular_category_by_country(pin: DataFrame, geo: DataFrame) -> DataFrame:
    """1. Most popular category per country: country, category, category_count."""
    return q1_from(_posts(pin, geo))


def q2_popular_category_by_year(pin: DataFrame, geo: DataFrame) -> DataFrame:
    """2. Most popular category per year, 2018-2022: post_year, category, category_count."""
    return q2_from(_posts(pin, geo))


def q3_top_user_per_country(pin: DataFrame, geo: DataFrame) -> DataFrame:
    """3a. User with the most followers per country: country, poster_name, follower_count."""
    return q3a_from(_posts(pin, geo))


def q3_country_with_top_user(pin: DataFrame, geo: DataFrame) -> DataFrame:
    """3b. The country whose top user has the most followers, one row: country, follower_count."""
    return q3b_from(_posts(pin, geo))


def q4_popular_category_by_age_group(pin: DataFrame, user: DataFrame) -> DataFrame:
    """4. Most popular category per age group: age_group, category, category_count."""
    return q4_from(_users(pin, user))


def q5_median_followers_by_age_group(pin: DataFrame, user: DataFrame) -> DataFrame:
    """5. Median follower count per age group: age_group, median_follower_count."""
    return q5_from(_users(pin, user))


def q6_users_joined_by_year(user: DataFrame) -> DataFrame:
    """6. Users joined per year, 2015-2020: post_year, number_users_joined."""
    joined = user.withColumn(POST_YEAR, F.year("date_joined")).transform(_joined_between)
    return (
        joined.groupBy(POST_YEAR)
        .agg(F.count(F.lit(1)).alias(NUMBER_USERS_JOINED))
        .select(POST_YEAR, NUMBER_USERS_JOINED)
        .transform(_ordered, POST_YEAR)
    )


def q7_median_followers_by_join_year(pin: DataFrame, user: DataFrame) -> DataFrame:
    """7. Median follower count by joining year, 2015-2020: post_year, median_follower_count."""
    return q7_from(_users(pin, user))


def q8_median_followers_by_age_group_and_join_year(pin: DataFrame, user: DataFrame) -> DataFrame:
    """8. Median follower count by age group and joining year, 2015-2020."""
    return q8_from(_users(pin, user))


def joined(pin: DataFrame, geo: DataFrame, user: DataFrame) -> tuple[DataFrame, DataFrame]:
    """The two joins the queries read: posts (pin with geo) and users (user with pin)."""
    return _posts(pin, geo), _users(pin, user)


def answers_from(posts: DataFrame, users: DataFrame, user: DataFrame) -> dict[str, DataFrame]:
    """All eight answers (query 3 in two parts) from the two joins, in the contract's order."""
    return {
        "q1_popular_category_by_country": q1_from(posts),
        "q2_popular_category_by_year": q2_from(posts),
        "q3_top_user_per_country": q3a_from(posts),
        "q3_country_with_top_user": q3b_from(posts),
        "q4_popular_category_by_age_group": q4_from(users),
        "q5_median_followers_by_age_group": q5_from(users),
        "q6_users_joined_by_year": q6_users_joined_by_year(user),
        "q7_median_followers_by_join_year": q7_from(users),
        "q8_median_followers_by_age_group_and_join_year": q8_from(users),
    }


def run_all(pin: DataFrame, geo: DataFrame, user: DataFrame) -> dict[str, DataFrame]:
    """All eight answers (query 3 in two parts), keyed by name, in the contract's order."""
    return answers_from(*joined(pin, geo, user), user)
