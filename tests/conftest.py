"""Session fixtures: one native stack of the tests' own (ports, state, database, user id)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.settings import Settings, get_settings, load_db_credentials
from services.core.waiting import free_port


def unique_name(prefix: str = "t") -> str:
    """A short unique name for a test's own topic, bucket, table or stream."""
    return f"{prefix}{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of the test stack, exported for this process and the CLIs it runs."""
    state = tmp_path_factory.mktemp("pinpipe-state")
    base = load_db_credentials(Path(os.environ.get("PINPIPE_DB_CREDS_FILE", "db_creds.yaml")))
    # A server that already listens is used as it is. Where none does, the session starts
    # its own MariaDB, on a port of its own: another test session on the machine (a
    # worktree's, a helper's) must neither use it nor see it stopped under its feet.
    from services.stack.process import port_open

    port = base.PORT if port_open(base.HOST, base.PORT) else free_port()
    creds = state / "db_creds.yaml"
    creds.write_text(
        yaml.safe_dump(
            {
                "HOST": base.HOST,
                "USER": f"pinpipe_{secrets.token_hex(3)}",
                "PASSWORD": secrets.token_hex(8),
                "DATABASE": f"pinterest_data_{secrets.token_hex(3)}",
                "PORT": port,
            }
        )
    )
    env = {
        "PINPIPE_USER_ID": f"t{secrets.token_hex(5)}",
        "PINPIPE_STATE_DIR": str(state),
        "PINPIPE_DB_CREDS_FILE": str(creds),
        "PINPIPE_BROKER_PORT": str(free_port()),
        "PINPIPE_BROKER_CONTROLLER_PORT": str(free_port()),
        "PINPIPE_LOCALSTACK_PORT": str(free_port()),
        "PINPIPE_REST_PROXY_PORT": str(free_port()),
        "PINPIPE_AIRFLOW_PORT": str(free_port()),
        "PINPIPE_SEED_POSTS": "2000",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def native_stack(stack_env: dict[str, str]) -> Iterator[Settings]:
    """The native stack, started once for the whole test session and stopped at its end."""
    from services.stack.mysql_server import MySQLService
    from services.stack.native_stack import NativeStack

    settings = Settings()
    stack = NativeStack(settings)
    try:
        stack.up()
        yield settings
    finally:
        # A server the stack started lives in the session's temporary state directory and
        # goes with it; on a server that was already there, drop what the session created.
        try:
            if MySQLService(settings).proc.pid is None:
                drop_database_and_user(settings)
        finally:
            stack.down()


def drop_database_and_user(settings: Settings) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(
        f"mysql+pymysql://{settings.mysql_admin_user}:{settings.mysql_admin_password}"
        f"@{settings.db.HOST}:{settings.db.PORT}/"
    )
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{settings.db.DATABASE}`"))
            for host in ("localhost", "%"):
                conn.execute(text(f"DROP USER IF EXISTS '{settings.db.USER}'@'{host}'"))
    finally:
        admin.dispose()


# Short runs of tiny jobs: the quick JIT tier and a serial GC leave more of the two cores to
# the tests themselves.
TEST_SPARK_CONFIG = {
    "spark.sql.shuffle.partitions": "2",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local SparkSession for every Spark test, as the jobs get it (s3a and Delta jars
    loaded), in UTC; started once and stopped at the end of the session."""
    from spark.session import get_spark

    with pytest.MonkeyPatch.context() as mp:
        # PySpark converts collected timestamps to the process's local time: pin it to the
        # session time zone so expected datetimes read as written.
        mp.setenv("TZ", "UTC")
        time.tzset()
        session = get_spark(
            Settings(spark_master="local[2]"), "pinpipe-tests", extra=TEST_SPARK_CONFIG
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


INGESTED_EVENTS = 300


def user_of_its_own(settings: Settings, prefix: str) -> Settings:
    """The test stack seen by a new user id: its own topics (1 partition) and bucket."""
    import boto3
    from confluent_kafka.admin import AdminClient, NewTopic

    own = settings.model_copy(update={"user_id": unique_name(prefix)})
    admin = AdminClient({"bootstrap.servers": own.kafka_bootstrap_servers})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in own.topics.values()]).values():
        future.result(timeout=15)
    boto3.client("s3", **own.boto3_kwargs()).create_bucket(Bucket=own.bucket)
    return own


def start_sink(settings: Settings, flush_size: int = 1) -> subprocess.Popen[bytes]:
    """A sink process for ``settings.user_id``'s topics and bucket (the stack's serves its own)."""
    return subprocess.Popen(
        [sys.executable, "-m", "services.s3_sink", "--flush-size", str(flush_size)],
        env={**os.environ, "PINPIPE_USER_ID": settings.user_id},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def ingested_bucket(native_stack: Settings) -> Iterator[Settings]:
    """A user of its own after the emulator posted events through API Gateway into S3.

    Events are sampled with replacement (seed 1), so some inds arrive more than once. No
    other test writes to this user's topics or bucket.
    """
    from emulator.batch_mode import EmulationOptions, run_batch
    from pinpipe.hops import wait_for_bucket

    settings = user_of_its_own(native_stack, "ing")
    sink = start_sink(settings)
    try:
        summary = run_batch(
            settings, EmulationOptions(count=INGESTED_EVENTS, seed=1, batch_size=100)
        )
        assert summary.failed == 0, summary.errors
        expected = {t: INGESTED_EVENTS for t in settings.topics.values()}
        counts = wait_for_bucket(settings, expected, timeout=180)
        assert counts.records == expected, counts
    finally:
        sink.terminate()
        sink.wait(timeout=30)
    yield settings
