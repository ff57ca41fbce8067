"""One local SparkSession for all Spark tests: two cores, two shuffle partitions, UTC."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A local SparkSession, started once and stopped at the end of the session."""
    with pytest.MonkeyPatch.context() as mp:
        # Python workers must run this venv's interpreter, not whatever `python` is on PATH.
        mp.setenv("PYSPARK_PYTHON", sys.executable)
        # PySpark converts collected timestamps to the process's local time: pin it to the
        # session time zone so expected datetimes read as written.
        mp.setenv("TZ", "UTC")
        time.tzset()
        session = (
            SparkSession.builder.master("local[2]")
            .appName("pinpipe-tests")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.host", "127.0.0.1")
            # Short runs of tiny jobs: the quick JIT tier and a serial GC leave more of the two
            # cores to the tests themselves.
            .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()
