"""A local session's JVM writes to the log under the state dir, not the terminal (unless verbose)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from services.core.settings import Settings
from spark.session import SESSION_TIME_ZONE, get_spark

pytestmark = pytest.mark.integration

PROGRAM = """
from services.core.settings import Settings
from spark.session import get_spark
spark = get_spark(Settings(spark_master="local[1]"), "pinpipe-quiet-test")
print("rows", spark.range(3).count(), flush=True)
spark.stop()
"""
# What Spark 4 on Java 17+ always says at start-up, from the JVM itself and from log4j.
JVM_NOISE = ("Using incubator modules", "WARN")


def start_session(state: Path, verbose: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PINPIPE_STATE_DIR": str(state)}
    env.pop("PINPIPE_VERBOSE", None)
    if verbose:
        env["PINPIPE_VERBOSE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=300
    )


def test_the_jvm_writes_to_spark_log_and_the_terminal_stays_quiet(tmp_path: Path) -> None:
    done = start_session(tmp_path, verbose=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "rows 3"
    assert not any(noise in done.stderr for noise in JVM_NOISE), done.stderr
    log = (tmp_path / "logs" / "spark.log").read_text()
    assert all(noise in log for noise in JVM_NOISE), log


def test_verbose_keeps_the_jvm_on_the_terminal(tmp_path: Path) -> None:
    done = start_session(tmp_path, verbose=True)
    assert done.returncode == 0, done.stderr
    assert "Using incubator modules" in done.stderr
    assert not (tmp_path / "logs" / "spark.log").exists()


def test_a_reused_session_left_in_another_zone_parses_and_dates_in_utc(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As spark-submit and Databricks hand it over: the active session, in its own zone.
    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: spark))
    spark.conf.set(SESSION_TIME_ZONE, "Pacific/Kiritimati")  # UTC+14
    try:
        assert get_spark(Settings()) is spark
        assert spark.conf.get(SESSION_TIME_ZONE) == "UTC"
        row = spark.sql(
            "SELECT year(to_timestamp('2020-12-31 23:30:00')) AS y,"
            " unix_timestamp(to_timestamp('2020-12-31 23:30:00')) AS epoch"
        ).first()
        assert row is not None
        assert (row.y, row.epoch) == (2020, 1609457400)
    finally:
        spark.conf.set(SESSION_TIME_ZONE, "UTC")


def test_a_local_session_keeps_its_caches_uncompressed(spark: SparkSession) -> None:
    # Started by get_spark like the jobs' sessions: a cache on the driver's own memory is
    # cheaper to build uncompressed, and a cached frame still reads back whole.
    assert spark.conf.get("spark.sql.inMemoryColumnarStorage.compressed") == "false"
    df = spark.range(1_000).selectExpr("id", "cast(id % 7 AS string) AS s").cache()
    try:
        assert df.count() == 1_000
        assert df.filter("s = '3'").count() == 143
    finally:
        df.unpersist()
