"""The SparkSession: local mode natively, the cluster's own session elsewhere."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from services.settings import Settings


def get_spark(settings: Settings, app_name: str = "pinpipe") -> SparkSession:
    """Reuse an active session (spark-submit, Databricks) or start a local one."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Workers must run the same interpreter, which has the project installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
    )
    if not os.environ.get("SPARK_REMOTE") and "spark.master" not in os.environ.get(
        "PYSPARK_SUBMIT_ARGS", ""
    ):
        builder = builder.master(settings.spark_master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
