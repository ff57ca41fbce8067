"""The batch job end to end on what the ingestion path wrote to LocalStack S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from emulator.sampler import RowSampler
from services.core.settings import Settings
from services.source_db.database import make_engine
from spark.jobs.batch_job import (
    MALFORMED,
    QUICK_JIT,
    SMALL_INPUT_BYTES,
    BatchResult,
    run,
    small_input_jvm,
)
from spark.session import get_spark
from spark.sinks.tables import read_delta
from spark.sources.loading import raw_spool
from tests import contract_values as c
from tests.conftest import INGESTED_EVENTS, unique_name

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def batch_run(
    ingested_bucket: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, BatchResult]:
    out = tmp_path_factory.mktemp("batch")
    settings = ingested_bucket.model_copy(update={"warehouse_uri": str(out / "warehouse")})
    # A record the job can't parse must be quarantined with its reason, not dropped.
    topic = settings.topics["geo"]
    boto3.client("s3", **settings.boto3_kwargs()).put_object(
        Bucket=settings.bucket,
        Key=f"topics/{topic}/partition=0/{topic}+0+9999999999.json",
        Body=b'{"ind": 1, "timestamp": "2020-01-01 00:00:00", "country": \n',
    )
    result = run(get_spark(settings), settings, out / "report.html")
    return settings, result


def test_every_record_is_read_and_cleaned_to_one_row_per_ind(
    batch_run, ingested_bucket: Settings
) -> None:
    settings, result = batch_run
    engine = make_engine(settings.db)
    distinct = len({e.ind for e in RowSampler(engine, seed=1).sample(INGESTED_EVENTS)})
    engine.dispose()
    assert result.rows_read == {
        "pin": INGESTED_EVENTS,
        "geo": INGESTED_EVENTS + 1,
        "user": INGESTED_EVENTS,
    }
    assert result.rows_clean == {"pin": distinct, "geo": distinct, "user": distinct}
    assert result.quarantined == {"geo": {MALFORMED: 1}}


def test_tables_are_written_as_delta_with_the_contract_columns(batch_run) -> None:
    _, result = batch_run
    for table, columns in (
        ("pin", c.PIN_CLEAN_COLUMNS),
        ("geo", c.GEO_CLEAN_COLUMNS),
        ("user", c.USER_CLEAN_COLUMNS),
    ):
        dt = DeltaTable(result.tables[f"{table}_clean"])
        assert tuple(dt.schema().to_arrow().names) == columns
        assert _read(result.tables[f"{table}_clean"]).num_rows == result.rows_clean[table]
    quarantined = _read(result.tables["quarantine"]).to_pylist()
    assert [(r["table"], r["reason"]) for r in quarantined] == [("geo", MALFORMED)]
    assert quarantined[0]["raw"].startswith('{"ind": 1')
    for name, columns in c.ANSWER_COLUMNS.items():
        assert list(result.answers[name].columns) == columns
        assert _read(result.tables[name]).num_rows == len(result.answers[name])


def test_answers_agree_with_the_cleaned_tables(batch_run) -> None:
    _, result = batch_run
    joined = result.answers["q6_users_joined_by_year"]
    users = _read(result.tables["user_clean"]).to_pandas()
    in_range = users[users.date_joined.dt.year.between(2015, 2020)]
    assert joined.number_users_joined.sum() == len(in_range)
    assert len(result.answers["q3_country_with_top_user"]) == 1


def test_report_is_written(batch_run) -> None:
    _, result = batch_run
    text = Path(result.report).read_text()
    assert "Data quality" in text and MALFORMED in text
    assert json.loads(json.dumps(result.summary()))["rows"]["read"]["pin"] == INGESTED_EVENTS


@pytest.mark.parametrize(
    ("reader", "writer"),
    [("spark", "delta-rs"), ("boto3", "spark-delta")],
    ids=["spark-reader", "spark-delta-writer"],
)
def test_both_readers_and_both_writers_give_the_same_tables_and_answers(
    batch_run, tmp_path: Path, reader: str, writer: str
) -> None:
    settings, reference = batch_run
    other = settings.model_copy(
        update={
            "batch_reader": reader,
            "table_writer": writer,
            "warehouse_uri": str(tmp_path / "warehouse"),
        }
    )
    result = run(get_spark(other), other, tmp_path / "report.html")
    assert (result.rows_read, result.rows_clean, result.quarantined) == (
        reference.rows_read,
        reference.rows_clean,
        reference.quarantined,
    )
    assert set(result.tables) == set(reference.tables)
    for name, uri in reference.tables.items():
        assert table_rows(result.tables[name]) == table_rows(uri), name
    for name, answer in reference.answers.items():
        assert result.answers[name].equals(answer), name


def _read(uri: str) -> pa.Table:
    """A Delta table read with delta-rs (its query engine: see ``read_delta``)."""
    table = read_delta(uri)
    assert table is not None, f"no Delta table at {uri}"
    return table


def table_rows(uri: str) -> list[tuple[Any, ...]]:
    """A Delta table's rows, in a fixed order, read with delta-rs whoever wrote it."""
    rows = _read(uri).to_pylist()
    return sorted((tuple(r.items()) for r in rows), key=repr)


# ---- a small input with answers worked out by hand ------------------------------------
# (ind, category, follower_count, poster_name, country, posted, age, joined)
HAND_POSTS = [
    (1, "art", "1.5k", "Ann", "Aland", "2018-03-01 10:00:00", 20, "2015-05-01 08:00:00"),
    (2, "art", "800", "Bob", "Aland", "2018-06-01 10:00:00", 30, "2016-01-01 08:00:00"),
    (3, "beauty", "2M", "Cy", "Borea", "2019-01-01 10:00:00", 40, "2016-06-01 08:00:00"),
    (
        4,
        "beauty",
        "User Info Error",
        "User Info Error",
        "Borea",
        "2019-02-02 10:00:00",
        55,
        "2017-01-01 08:00:00",
    ),
    (5, "travel", "50k", "Di", "Borea", "2023-01-01 10:00:00", 16, "2014-01-01 08:00:00"),
    # Three join-2016 users: a mean (666,936.67) is not their median (800).
    (6, "art", "10", "Eve", "Aland", "2018-09-01 10:00:00", 33, "2016-03-01 08:00:00"),
]
HAND_ANSWERS = {
    "q1_popular_category_by_country": [("Aland", "art", 3), ("Borea", "beauty", 2)],
    "q2_popular_category_by_year": [(2018, "art", 3), (2019, "beauty", 2)],
    "q3_top_user_per_country": [("Aland", "Ann", 1500), ("Borea", "Cy", 2_000_000)],
    "q3_country_with_top_user": [("Borea", 2_000_000)],
    "q4_popular_category_by_age_group": [
        ("18-24", "art", 1),
        ("25-35", "art", 2),
        ("36-50", "beauty", 1),
        ("+50", "beauty", 1),
    ],
    # ind 4's follower count is a placeholder: +50 has no known count, so no median.
    "q5_median_followers_by_age_group": [
        ("18-24", 1500.0),
        ("25-35", 405.0),
        ("36-50", 2_000_000.0),
    ],
    "q6_users_joined_by_year": [(2015, 1), (2016, 3), (2017, 1)],
    "q7_median_followers_by_join_year": [(2015, 1500.0), (2016, 800.0)],
    "q8_median_followers_by_age_group_and_join_year": [
        ("18-24", 2015, 1500.0),
        ("25-35", 2016, 405.0),
        ("36-50", 2016, 2_000_000.0),
    ],
}


def hand_rows(post: tuple[Any, ...]) -> dict[str, dict[str, Any]]:
    ind, category, followers, poster, country, posted, age, joined = post
    return {
        "pin": {
            "index": ind,
            "unique_id": f"00000000-0000-4000-8000-{ind:012d}",
            "title": f"Post {ind}",
            "description": "A post",
            "poster_name": poster,
            "follower_count": followers,
            "tag_list": "a,b",
            "is_image_or_video": "image",
            "image_src": f"https://i.pinimg.com/originals/{ind}.jpg",
            "downloaded": 1,
            "save_location": f"Local save in /data/{category}",
            "category": category,
        },
        "geo": {
            "ind": ind,
            "timestamp": posted,
            "latitude": 1.5,
            "longitude": 2.5,
            "country": country,
        },
        "user": {
            "ind": ind,
            "first_name": "U",
            "last_name": str(ind),
            "age": age,
            "date_joined": joined,
        },
    }


@pytest.fixture(scope="module")
def hand_run(native_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> BatchResult:
    out = tmp_path_factory.mktemp("hand")
    settings = native_stack.model_copy(
        update={"user_id": unique_name("h"), "warehouse_uri": str(out / "warehouse")}
    )
    s3 = boto3.client("s3", **settings.boto3_kwargs())
    s3.create_bucket(Bucket=settings.bucket)
    posted = [*HAND_POSTS, HAND_POSTS[0]]  # post 1 arrives twice
    for offset, post in enumerate(posted):
        for table, row in hand_rows(post).items():
            topic = settings.topics[table]
            s3.put_object(
                Bucket=settings.bucket,
                Key=f"topics/{topic}/partition=0/{topic}+0+{offset:010d}.json",
                Body=json.dumps(row).encode(),
            )
    return run(get_spark(settings), settings, out / "report.html")


@pytest.mark.parametrize("name", list(HAND_ANSWERS))
def test_each_answer_is_the_hand_worked_one(hand_run: BatchResult, name: str) -> None:
    answer = hand_run.answers[name]
    assert [tuple(row) for row in answer.itertuples(index=False)] == HAND_ANSWERS[name]


def test_the_small_input_cleans_to_one_row_per_post(hand_run: BatchResult) -> None:
    assert hand_run.rows_read == {"pin": 7, "geo": 7, "user": 7}
    assert hand_run.rows_clean == {"pin": 6, "geo": 6, "user": 6}
    pins = _read(hand_run.tables["pin_clean"]).to_pylist()
    followers = {r["ind"]: (r["follower_count"], r["poster_name"]) for r in pins}
    assert followers == {
        1: (1500, "Ann"),
        2: (800, "Bob"),
        3: (2_000_000, "Cy"),
        4: (None, None),
        5: (50_000, "Di"),
        6: (10, "Eve"),
    }


def test_a_started_spool_knows_its_input_size_and_a_small_one_gets_the_quick_jit(
    ingested_bucket: Settings, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", **ingested_bucket.boto3_kwargs())
    listed = [
        (o["Key"], o["Size"])
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=ingested_bucket.bucket, Prefix="topics/"
        )
        for o in page.get("Contents", [])
        if o["Key"].endswith(".json")
    ]
    spool = raw_spool(ingested_bucket, tmp_path / "spool").start()
    assert {key for _, (key, _) in spool.listed or []} == {key for key, _ in listed}
    assert spool.size == sum(size for _, size in listed) > 0
    spool.wait()
    assert small_input_jvm(spool.size) == QUICK_JIT
    assert small_input_jvm(SMALL_INPUT_BYTES) == {}
