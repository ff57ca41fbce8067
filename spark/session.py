"""The SparkSession: local mode natively, the cluster's own session elsewhere.

Natively the session loads the Maven Central jars `make setup` put in ``.jars/spark``
(spark/jars/pom.xml): s3a, so that ``--reader spark`` reads ``s3a://user-<uid>-bucket``
from LocalStack, and Delta Lake, so that ``--writer spark-delta`` writes with Spark's own
Delta. The compose images carry the same jars beside pyspark's, with spark-defaults.conf.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from services.core.errors import PrerequisiteError
from services.core.settings import Settings

# `--verbose` on the command line sets it: the JVM's output back on the terminal.
VERBOSE_ENV = "PINPIPE_VERBOSE"
SPARK_LOG = "spark.log"

DELTA_JAR = "io.delta.delta-spark_2.13-*.jar"
HADOOP_AWS_JAR = "org.apache.hadoop.hadoop-aws-*.jar"


def local_jars(settings: Settings) -> list[Path]:
    """The jars of ``.jars/spark``; none when `make setup` has not fetched them."""
    folder = settings.spark_jars
    return sorted(folder.glob("*.jar")) if folder.is_dir() else []


def jar_config(settings: Settings, jars: list[Path]) -> dict[str, str]:
    """Spark settings that load the jars: s3a (to the settings' S3 endpoint) and Delta."""
    delta = [str(j) for j in jars if j.match(DELTA_JAR)]
    config = {
        **{f"spark.hadoop.fs.s3a.{k}": v for k, v in s3a_options(settings).items()},
        "spark.jars": ",".join(str(j) for j in jars),
        # The Python side of delta-spark (delta.tables) ships inside its jar.
        "spark.submit.pyFiles": ",".join(delta),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Delta rebuilds a table's state in 50 tasks by default: far too many on 2 cores.
        "spark.databricks.delta.snapshotPartitions": "2",
    }
    return config


def s3a_options(settings: Settings) -> dict[str, str]:
    """S3A's endpoint and credentials for the settings' S3 (none: AWS and its default chain)."""
    options = {"endpoint.region": settings.aws_region}
    endpoint = settings.aws_endpoint_url
    if endpoint:
        aws = settings.boto3_kwargs()
        options |= {
            "endpoint": endpoint,
            "path.style.access": "true",
            "connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
            "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
            "access.key": aws["aws_access_key_id"],
            "secret.key": aws["aws_secret_access_key"],
        }
    return options


def use_s3a(spark: SparkSession, settings: Settings, uri: str) -> None:
    """Point S3A at the settings' S3 for the bucket of ``uri`` (an ``s3a://`` one).

    Per bucket and at run time: one session may serve several stacks (tests), and S3A
    reads a bucket's options when it first opens that bucket.
    """
    if not uri.startswith("s3a://"):
        return
    bucket = uri.removeprefix("s3a://").split("/", 1)[0]
    for key, value in s3a_options(settings).items():
        spark.conf.set(f"fs.s3a.bucket.{bucket}.{key}", value)


def require_jars(settings: Settings) -> None:
    """What the reader and writer settings need from ``.jars/spark``, with what to do if absent."""
    jars = local_jars(settings)
    s3a = settings.batch_reader == "spark" and settings.source_root.startswith("s3a://")
    if s3a and not any(j.match(HADOOP_AWS_JAR) for j in jars):
        raise PrerequisiteError(
            f"--reader spark on s3a:// needs hadoop-aws in {settings.spark_jars}: run `make setup`."
        )
    if settings.table_writer == "spark-delta" and not any(j.match(DELTA_JAR) for j in jars):
        raise PrerequisiteError(
            f"--writer spark-delta needs delta-spark in {settings.spark_jars}: run `make setup`."
        )


SESSION_TIME_ZONE = "spark.sql.session.timeZone"


# A local session's caches live in the driver's own memory, for one run: compressing them
# costs more than it saves. On a million rows, building the batch job's caches spent about
# a tenth of its CPU choosing and applying encodings; uncompressed, the job took 21-24 s
# against 26-27 s. A cluster (Databricks) keeps its own setting.
LOCAL_SESSION = {"spark.sql.inMemoryColumnarStorage.compressed": "false"}


def get_spark(
    settings: Settings, app_name: str = "pinpipe", extra: Mapping[str, str] | None = None
) -> SparkSession:
    """Reuse an active session (spark-submit, Databricks) or start a local one.

    ``extra`` settings go to a local session only (tests tune the JVM for tiny jobs).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        # UTC decides how naive datetimes parse and what year() says; a shared session
        # (a Databricks cluster's) may have been left in another zone.
        active.conf.set(SESSION_TIME_ZONE, "UTC")
        return active
    # Workers must run the same interpreter, which has the project installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .config(SESSION_TIME_ZONE, "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
    )
    local = not os.environ.get("SPARK_REMOTE") and "spark.master" not in os.environ.get(
        "PYSPARK_SUBMIT_ARGS", ""
    )
    if local:
        builder = builder.master(settings.spark_master)
        require_jars(settings)
        jars = local_jars(settings)
        local_config = {
            **LOCAL_SESSION,
            **(jar_config(settings, jars) if jars else {}),
            **(extra or {}),
        }
        for key, value in local_config.items():
            builder = builder.config(key, value)
    with jvm_output(settings):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def spark_log(settings: Settings) -> Path:
    """Where a local session's JVM writes its log (Spark's WARNs, the JVM's own warnings)."""
    return settings.logs_dir / SPARK_LOG


@contextmanager
def jvm_output(settings: Settings) -> Iterator[None]:
    """Send the output of a JVM started inside the block to the log under the state dir.

    Spark's JVM inherits the process's stdout and stderr, and its noise (loopback hostname,
    native-hadoop, incubator modules, streaming batches falling behind) would mix with the
    project's own output: the descriptors point at the log while it starts, and the JVM and
    its Python workers keep them. ``PINPIPE_VERBOSE=1`` (``--verbose``) leaves them alone.
    """
    if os.environ.get(VERBOSE_ENV) == "1":
        yield
        return
    log = spark_log(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log.open("ab") as target:
        try:
            os.dup2(target.fileno(), 1)
            os.dup2(target.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
