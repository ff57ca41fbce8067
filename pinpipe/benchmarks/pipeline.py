"""Ingest and batch benchmarks for ``pinpipe bench``: each number from one run, on a throw-away stack.

``ingest`` puts the REST proxy (directly and through API Gateway) next to a direct produce
on the same broker, and the S3 sink next to the raw PUT rate of the same LocalStack.
``batch`` times the batch job on the sink's layout next to downloading the same objects and
next to what public implementations do (``spark.read.json`` with schema inference).

The load generator runs on the same machine as the services it measures, so on a small
machine it competes with them for the CPU: the notes say how many cores it used.
"""

from __future__ import annotations

import json
import logging
import resource
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spark.sources.sink_objects import FETCH_THREADS, s3_client

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from pinpipe.benchmarks.measurement import Goal, Measurement
    from services.core.settings import Settings

log = logging.getLogger(__name__)

# ---- ingest ------------------------------------------------------------------------------
CONTENT_TYPE = "application/vnd.kafka.json.v2+json"
ACCEPT = "application/vnd.kafka.v2+json"
BATCH_RECORDS = 500
# Enough requests for a few seconds each on 2 busy cores, few enough to keep `make bench` short.
DIRECT_SINGLE_REQUESTS = 4_000
DIRECT_BATCH_REQUESTS = 200
GATEWAY_SINGLE_REQUESTS = 1_000
GATEWAY_BATCH_REQUESTS = 60
PRODUCE_RECORDS = 100_000
SINGLE_CONNECTIONS = 16
BATCH_CONNECTIONS = 8
WARM_UP_REQUESTS = 20
SINK_SMALL_RECORDS = 3_000
SINK_LARGE_RECORDS = 100_000
SINK_LARGE_FLUSH = 10_000
PUT_OBJECTS = 1_000

# ---- batch -------------------------------------------------------------------------------
SMALL_POSTS = 10_000  # x 3 tables = 30,000 one-record objects
LARGE_POSTS = 340_000  # x 3 tables = 1,020,000 rows
LARGE_OBJECT_RECORDS = 10_000
WARM_UP_POSTS = 100
# As many GET threads as the batch job's reader (spark/sources/sink_objects.py).
DOWNLOAD_THREADS = FETCH_THREADS
PUT_THREADS = 16
DELETE_BATCH = 1_000


def bench_user_id() -> str:
    """A user id of its own, so concurrent benches never share a bucket or topic name."""
    return f"bench{secrets.token_hex(4)}"


# ---- ingest: REST proxy, API Gateway, direct produce, sink ---------------------------------
@dataclass(frozen=True)
class LoadResult:
    """What one load run got acknowledged, in how long, and the CPU the load generator used."""

    requests: int
    records: int
    failed: int
    seconds: float
    client_cpu_s: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def client_cores(self) -> float:
        return self.client_cpu_s / self.seconds


def cpu_seconds() -> float:
    """CPU time of this process, all threads (the load generator's cost)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def produce_body(value: dict[str, Any], records: int) -> bytes:
    """A REST proxy v2 produce body carrying ``records`` copies of ``value``."""
    return json.dumps({"records": [{"value": value}] * records}).encode()


def post_load(
    base_url: str,
    topic: str,
    body: bytes,
    records_per_request: int,
    requests: int,
    connections: int,
) -> LoadResult:
    """POST the same body ``requests`` times over ``connections`` concurrent connections."""
    import httpx

    url = f"{base_url.rstrip('/')}/topics/{topic}"
    with httpx.Client(
        timeout=60,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"Content-Type": CONTENT_TYPE, "Accept": ACCEPT},
    ) as http:

        def send(_: int) -> int:
            """Records of one request acknowledged with an offset (0 if the request failed)."""
            try:
                resp = http.post(url, content=body)
            except httpx.HTTPError as exc:
                log.warning("POST %s failed: %s", url, exc)
                return 0
            if resp.status_code != 200:
                log.warning("POST %s: HTTP %d %s", url, resp.status_code, resp.text[:200])
                return 0
            return sum(1 for o in resp.json()["offsets"] if o.get("error_code") is None)

        with ThreadPoolExecutor(connections) as pool:
            # Untimed: opens the connections and fills the proxy's topic metadata cache.
            list(pool.map(send, range(WARM_UP_REQUESTS)))
            cpu, started = cpu_seconds(), time.perf_counter()
            acked = sum(pool.map(send, range(requests)))
            seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    total = requests * records_per_request
    if acked == 0:
        raise RuntimeError(f"no record posted to {url} was acknowledged")
    return LoadResult(requests, acked, total - acked, seconds, cpu)


def produce_load(settings: Settings, topic: str, value: bytes, records: int) -> LoadResult:
    """Produce straight to the broker with the proxy's guarantees (acks=all, idempotence)."""
    from confluent_kafka import Producer

    failed = 0

    def delivered(err: object, _msg: object) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )
    producer.produce(topic, value)  # untimed: metadata and the producer id
    producer.flush(30)
    cpu, started = cpu_seconds(), time.perf_counter()
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, value, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.01)
        producer.poll(0)
    unsent = producer.flush(120)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return LoadResult(records, records - failed - unsent, failed + unsent, seconds, cpu)


def _load_note(result: LoadResult, connections: int) -> str:
    failed = f", {result.failed:,} failed" if result.failed else ""
    return (
        f"{result.records:,} records in {result.requests:,} requests, {connections} connections, "
        f"load generator {result.client_cores:.2f} cores{failed}"
    )


def bench_ingest() -> list[Measurement]:
    """REST proxy and API Gateway records/s next to a direct produce; sink next to raw PUTs."""
    from pinpipe.benchmarks.measurement import bench_settings
    from services.stack.native_stack import NativeStack

    with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
        settings = bench_settings(Path(tmp), user_id=bench_user_id())
        stack = NativeStack(settings)
        try:
            stack.up()
            try:
                return _ingest(settings)
            finally:
                drop_bucket(settings)
        finally:
            stack.down()


def _ingest(settings: Settings) -> list[Measurement]:
    from confluent_kafka.admin import AdminClient, NewTopic

    from pinpipe.benchmarks.measurement import Measurement
    from pinpipe.benchmarks.sink_rates import pin_row, raw_put_rate, sink_throughput

    # Outside the stack's topics.regex, so the stack's own sink leaves these records alone.
    topic = f"ingest-{secrets.token_hex(4)}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])[topic].result(timeout=15)
    value = json.loads(pin_row(1))
    single, batch = produce_body(value, 1), produce_body(value, BATCH_RECORDS)
    gateway = settings.resolved_api_invoke_url()
    if not gateway:
        raise RuntimeError("the bench stack recorded no API Gateway invoke URL")
    try:
        direct_1 = post_load(
            settings.rest_proxy_url, topic, single, 1, DIRECT_SINGLE_REQUESTS, SINGLE_CONNECTIONS
        )
        direct_n = post_load(
            settings.rest_proxy_url,
            topic,
            batch,
            BATCH_RECORDS,
            DIRECT_BATCH_REQUESTS,
            BATCH_CONNECTIONS,
        )
        produced = produce_load(
            settings, topic, json.dumps(value, separators=(",", ":")).encode(), PRODUCE_RECORDS
        )
        gateway_1 = post_load(
            gateway, topic, single, 1, GATEWAY_SINGLE_REQUESTS, SINGLE_CONNECTIONS
        )
        gateway_n = post_load(
            gateway, topic, batch, BATCH_RECORDS, GATEWAY_BATCH_REQUESTS, BATCH_CONNECTIONS
        )
    finally:
        admin.delete_topics([topic])
    put_rate = raw_put_rate(settings, objects=PUT_OBJECTS)
    sink_1 = sink_throughput(settings, records=SINK_SMALL_RECORDS, flush_size=1)
    sink_n = sink_throughput(settings, records=SINK_LARGE_RECORDS, flush_size=SINK_LARGE_FLUSH)
    rec_s = "records/s"
    return [
        Measurement(
            "REST proxy, 1 record/request",
            direct_1.records_per_s,
            rec_s,
            f"{direct_1.records_per_s:,.0f} req/s; " + _load_note(direct_1, SINGLE_CONNECTIONS),
        ),
        Measurement(
            f"REST proxy, {BATCH_RECORDS} records/request",
            direct_n.records_per_s,
            rec_s,
            _load_note(direct_n, BATCH_CONNECTIONS),
        ),
        Measurement(
            "direct produce, same broker (ceiling)",
            produced.records_per_s,
            rec_s,
            f"confluent-kafka, acks=all, idempotent, linger.ms=5, {produced.records:,} records"
            + (f", {produced.failed:,} failed" if produced.failed else ""),
        ),
        Measurement(
            "API Gateway -> REST proxy, 1 record/request",
            gateway_1.records_per_s,
            rec_s,
            f"{gateway_1.records_per_s:,.0f} req/s; " + _load_note(gateway_1, SINGLE_CONNECTIONS),
        ),
        Measurement(
            f"API Gateway -> REST proxy, {BATCH_RECORDS} records/request",
            gateway_n.records_per_s,
            rec_s,
            _load_note(gateway_n, BATCH_CONNECTIONS),
        ),
        Measurement(
            "raw S3 PUT rate, same LocalStack (ceiling for flush.size=1)",
            put_rate,
            "objects/s",
            f"{PUT_OBJECTS:,} objects of 500 B, 8 threads",
        ),
        Measurement(
            "sink, flush.size=1",
            sink_1.records_per_s,
            rec_s,
            f"{sink_1.records:,} records = objects, consume to last PUT and commit",
        ),
        Measurement(
            f"sink, flush.size={SINK_LARGE_FLUSH:,}",
            sink_n.records_per_s,
            rec_s,
            f"{sink_n.records:,} records in {sink_n.records // sink_n.flush_size} objects",
        ),
    ]


# ---- batch: the sink's layout in the bench bucket -------------------------------------------
def json_lines(table: pa.Table) -> list[bytes]:
    """Rows as the sink stores them: compact JSON, datetimes as the emulator sends them."""
    from emulator.sampler import jsonable

    return [
        json.dumps(jsonable(row), separators=(",", ":")).encode() + b"\n"
        for row in table.to_pylist()
    ]


def sink_objects(settings: Settings, posts: int, per_object: int) -> Iterator[tuple[str, bytes]]:
    """Keys and bodies of the objects a sink with ``flush.size=per_object`` writes for ``posts``."""
    from services.core.settings import TABLES
    from services.core.sink_keys import SinkKeys
    from services.source_db.generator import SourceGenerator

    keys = SinkKeys()
    offset = 0
    for chunk in SourceGenerator(seed=settings.seed).chunks(posts):
        for table in TABLES:
            lines = json_lines(getattr(chunk, table))
            for start in range(0, len(lines), per_object):
                key = keys.key(settings.topics[table], 0, offset + start)
                yield key, b"".join(lines[start : start + per_object])
        offset += chunk.posts


def put_objects(s3: Any, bucket: str, objects: Iterable[tuple[str, bytes]]) -> int:
    """PUT every object from a thread pool; return how many."""

    def put(obj: tuple[str, bytes]) -> None:
        s3.put_object(Bucket=bucket, Key=obj[0], Body=obj[1])

    with ThreadPoolExecutor(PUT_THREADS) as pool:
        return sum(1 for _ in pool.map(put, objects))


def list_all(settings: Settings) -> list[str]:
    """Every key of the three topics, listed as the batch job's reader lists them."""
    from spark.sources.loading import topic_prefix
    from spark.sources.sink_objects import list_objects

    s3 = s3_client(settings, 16)
    return [
        key
        for table in settings.topics
        for key, _ in list_objects(s3, settings.bucket, topic_prefix(settings, table))
    ]


def empty_bucket(s3: Any, bucket: str) -> None:
    """Delete every object of the bucket, a thousand per call."""
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    batches = [keys[i : i + DELETE_BATCH] for i in range(0, len(keys), DELETE_BATCH)]
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda b: s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in b], "Quiet": True}
                ),
                batches,
            )
        )


def drop_bucket(settings: Settings) -> None:
    """Delete the bench bucket: LocalStack keeps a folder per bucket outside its state dir."""
    s3 = s3_client(settings, 4)
    empty_bucket(s3, settings.bucket)
    s3.delete_bucket(Bucket=settings.bucket)


@dataclass(frozen=True)
class Download:
    """How long listing and GETting every object to a local folder took."""

    objects: int
    bytes: int
    list_s: float
    seconds: float


def download(settings: Settings, s3: Any, root: Path) -> Download:
    """List like the reader, then GET every object to ``root`` (same layout) in parallel."""
    started = time.perf_counter()
    keys = list_all(settings)
    listed = time.perf_counter() - started

    def fetch(key: str) -> int:
        body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return len(body)

    with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        size = sum(pool.map(fetch, keys))
    return Download(len(keys), size, listed, time.perf_counter() - started)


# ---- batch: the timed runs --------------------------------------------------------------------
@dataclass(frozen=True)
class JobRun:
    """One batch job run: wall time, rows read and the seconds of each of its phases."""

    seconds: float
    rows: int
    phases: dict[str, float]


def timed_job(spark: SparkSession, settings: Settings, workdir: Path) -> JobRun:
    """Run the batch job once, from a cold cache, into its own warehouse."""
    from spark.jobs.batch_job import run

    # The job leaves its inputs and answers cached: clear them so that every run reads for
    # itself and none runs in the memory the previous one left behind.
    spark.catalog.clearCache()
    started = time.perf_counter()
    result = run(spark, settings, workdir / "batch-report.html")
    seconds = time.perf_counter() - started
    spark.catalog.clearCache()
    return JobRun(seconds, sum(result.rows_read.values()), result.phases)


def _check_rows(what: str, rows: int, expected: int) -> None:
    if rows != expected:
        raise RuntimeError(f"{what} read {rows:,} rows, expected {expected:,}")


def get_all(settings: Settings, threads: int) -> Download:
    """List like the reader, then GET every object into memory from ``threads`` threads."""
    s3 = s3_client(settings, threads)
    started = time.perf_counter()
    keys = list_all(settings)
    listed = time.perf_counter() - started
    with ThreadPoolExecutor(threads) as pool:
        size = sum(
            pool.map(
                lambda k: len(s3.get_object(Bucket=settings.bucket, Key=k)["Body"].read()), keys
            )
        )
    return Download(len(keys), size, listed, time.perf_counter() - started)


def explicit_read(spark: SparkSession, settings: Settings, root: Path) -> float:
    """``spark.read.json`` of each topic's local copy with the table's schema, then a count."""
    from services.core.settings import TABLES
    from spark.transformations.schemas import RAW_SCHEMAS

    started = time.perf_counter()
    rows = 0
    for table in TABLES:
        path = root / "topics" / settings.topics[table] / "partition=0"
        rows += spark.read.schema(RAW_SCHEMAS[table]).json(str(path)).count()
    seconds = time.perf_counter() - started
    log.info("explicit read: %d rows in %.1f s", rows, seconds)
    return seconds


# ---- batch: the goals ---------------------------------------------------------------------
DEMO_POSTS = 1_000  # `make demo`: 1,000 events = 3,000 one-record objects
GROWTH_ROWS = (10_000, 100_000)  # and the 1,020,000 of the large scenario
GOAL_DEMO = 3.0
GOAL_LARGE = 3.0
GOAL_SMALL_OBJECTS = 1.2


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment under which a new process reads the same settings as ``settings``."""
    import os

    fields = ("user_id", "state_dir", "db_creds_file", "localstack_port", "warehouse_uri")
    values = settings.model_dump(include=set(fields))
    env = {**os.environ, **{f"PINPIPE_{k.upper()}": str(v) for k, v in values.items()}}
    env.pop("PINPIPE_VERBOSE", None)
    return env


def timed_process(args: list[str], env: dict[str, str]) -> float:
    """Wall time of a new process, from its start to its exit (which must be 0)."""
    import subprocess

    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}… exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


SESSION_AND_COUNT = """
from services.core.settings import get_settings
from spark.session import get_spark
spark = get_spark(get_settings(), "pinpipe-bench-reference")
assert spark.range(1000).count() == 1000
spark.stop()
"""


def demo_goal(settings: Settings, s3: Any, workdir: Path) -> list[Goal | Measurement]:
    """Goal 1: ``pinpipe batch run`` on the demo's data, as a person runs it (a new process),
    against a new process that starts the same local Spark session and counts a small
    DataFrame."""
    import sys

    from pinpipe.benchmarks.measurement import Goal, Measurement

    workdir.mkdir(parents=True)
    put_objects(s3, settings.bucket, sink_objects(settings, DEMO_POSTS, 1))
    try:
        env = settings_env(settings.model_copy(update={"warehouse_uri": str(workdir / "wh")}))
        reference = timed_process([sys.executable, "-c", SESSION_AND_COUNT], env)
        report = workdir / "batch-report.html"
        # As `pinpipe demo` runs its batch step: a `pinpipe` process of its own.
        job = timed_process(
            [
                sys.executable,
                "-m",
                "pinpipe.cli",
                "batch",
                "run",
                "--json",
                "--report",
                str(report),
            ],
            env,
        )
    finally:
        empty_bucket(s3, settings.bucket)
    return [
        Goal(
            "1. demo size: the job ≤ 3x a Spark session + count",
            job,
            f"`pinpipe batch run`, new process, {DEMO_POSTS * 3:,} one-record objects",
            reference,
            "new process: local Spark session + count(1,000 rows)",
            GOAL_DEMO,
        ),
        Measurement("demo size: batch run (new process)", job, "s", "start to exit"),
        Measurement("Spark session + count (new process)", reference, "s", "start to exit"),
    ]


def _phases(run: JobRun) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in run.phases.items())


def small_objects_goal(
    spark: SparkSession, settings: Settings, s3: Any, workdir: Path
) -> list[Goal | Measurement]:
    """Goal 3: 30,000 one-record objects: the job against GETting every object with the
    reader's parallelism."""
    from pinpipe.benchmarks.measurement import Goal, Measurement

    workdir.mkdir(parents=True)
    objects = put_objects(s3, settings.bucket, sink_objects(settings, SMALL_POSTS, 1))
    try:
        job = timed_job(spark, settings.model_copy(update={"warehouse_uri": str(workdir)}), workdir)
        _check_rows("batch job", job.rows, SMALL_POSTS * 3)
        fetched = get_all(settings, FETCH_THREADS)
    finally:
        empty_bucket(s3, settings.bucket)
    return [
        Goal(
            "3. 30,000 one-record objects: the job ≤ 1.2x GET of every object",
            job.seconds,
            f"batch job, {objects:,} objects, warm session",
            fetched.seconds,
            f"list + GET every object, {FETCH_THREADS} threads",
            GOAL_SMALL_OBJECTS,
        ),
        Measurement(
            "30,000 one-record objects: batch job", job.seconds, "s", f"phases: {_phases(job)}"
        ),
    ]


def growth(
    spark: SparkSession, settings: Settings, s3: Any, workdir: Path
) -> list[Goal | Measurement]:
    """Goals 2 and 5: the job at 10k, 100k and 1.02M rows (large objects), the last against
    a download + ``spark.read.json`` with the explicit schema + count of the same bucket."""
    from pinpipe.benchmarks.measurement import Goal, Measurement

    found: list[Goal | Measurement] = []
    for rows in (*GROWTH_ROWS, LARGE_POSTS * 3):
        posts = -(-rows // 3)
        folder = workdir / f"rows-{rows}"
        folder.mkdir(parents=True)
        objects = put_objects(
            s3, settings.bucket, sink_objects(settings, posts, LARGE_OBJECT_RECORDS)
        )
        try:
            job = timed_job(
                spark, settings.model_copy(update={"warehouse_uri": str(folder / "wh")}), folder
            )
            _check_rows("batch job", job.rows, posts * 3)
            found.append(
                Measurement(
                    f"5. cost growth: batch job, {posts * 3:,} rows",
                    job.seconds,
                    "s",
                    f"{objects} objects; phases: {_phases(job)}",
                )
            )
            if posts == LARGE_POSTS:
                fetched = download(settings, s3, folder / "download")
                read = explicit_read(spark, settings, folder / "download")
                found.append(
                    Goal(
                        "2. 1M rows in 102 objects: the job ≤ 3x download + read + count",
                        job.seconds,
                        f"batch job, {posts * 3:,} rows in {objects} objects, warm session",
                        fetched.seconds + read,
                        f"download {fetched.seconds:.1f} s ({fetched.bytes / 1e6:,.0f} MB) + "
                        f"read.json, explicit schema, + count {read:.1f} s",
                        GOAL_LARGE,
                    ),
                )
        finally:
            empty_bucket(s3, settings.bucket)
    return found


def warm_up(spark: SparkSession, settings: Settings, s3: Any, workdir: Path) -> None:
    """One small untimed run, so the first timed run doesn't pay the JVM's warm-up alone."""
    workdir.mkdir(parents=True)
    put_objects(s3, settings.bucket, sink_objects(settings, WARM_UP_POSTS, 1))
    try:
        timed_job(spark, settings.model_copy(update={"warehouse_uri": str(workdir)}), workdir)
    finally:
        empty_bucket(s3, settings.bucket)


def bench_batch() -> list[Goal | Measurement]:
    """The batch job's speed goals: demo size in a new process; 30,000 one-record objects;
    10k, 100k and 1M rows in large objects (the last against a plain read)."""
    from pinpipe.benchmarks.measurement import bench_settings
    from services.stack.native_stack import NativeStack
    from spark.session import get_spark

    with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
        work = Path(tmp)
        settings = bench_settings(work, user_id=bench_user_id())
        stack = NativeStack(settings)
        try:
            stack.up()
            s3 = s3_client(settings, max(PUT_THREADS, DOWNLOAD_THREADS))
            try:
                demo = demo_goal(settings, s3, work / "demo")
                spark = get_spark(settings, "pinpipe-bench-batch")
                try:
                    warm_up(spark, settings, s3, work / "warm-up")
                    small = small_objects_goal(spark, settings, s3, work / "small")
                    large = growth(spark, settings, s3, work / "growth")
                finally:
                    spark.stop()
            finally:
                drop_bucket(settings)
            return [*demo, *large, *small]  # goals 1, 2 (and 5), 3
        finally:
            stack.down()
