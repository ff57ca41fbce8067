"""``pinpipe bench``: measure the pipeline's speeds on this machine and print them.

Each benchmark runs against its own resources (temporary state directory, free ports, its
own database) so it never disturbs the demo stack.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pinpipe.benchmarks.measurement import Goal, Measurement, bench_settings
from pinpipe.benchmarks.pipeline import bench_batch, bench_ingest
from pinpipe.benchmarks.writers import bench_writers

if TYPE_CHECKING:
    from pinpipe.benchmarks.streaming_latency import RateStep


def bench_stack_startup() -> list[Measurement]:
    """Cold start of the native stack (fresh state directory) and a warm `stack up`."""
    from services.stack.native_stack import NativeStack

    with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
        settings = bench_settings(Path(tmp))
        stack = NativeStack(settings)
        try:
            started = time.perf_counter()
            steps = stack.up()
            cold = time.perf_counter() - started
            started = time.perf_counter()
            stack.up()
            warm = time.perf_counter() - started
        finally:
            stack.down()
    per_service = ", ".join(f"{s.service} {s.seconds:.1f}s" for s in steps)
    return [
        Measurement("stack up (cold)", cold, "s", per_service),
        Measurement("stack up (already running)", warm, "s"),
    ]


def bench_broker() -> list[Measurement]:
    """The native Kafka broker: first start (storage formatted), restart, memory."""
    import psutil

    from services.stack.kafka_broker import BrokerService

    with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
        broker = BrokerService(bench_settings(Path(tmp)))
        try:
            started = time.perf_counter()
            broker.up()
            cold = time.perf_counter() - started
            pid = broker.proc.pid
            assert pid is not None
            time.sleep(5)  # settled: the log cleaner and coordinators have started
            rss = psutil.Process(pid).memory_info().rss / 2**20
            broker.down()
            started = time.perf_counter()
            broker.up()
            warm = time.perf_counter() - started
        finally:
            broker.down()
    return [
        Measurement(
            "broker start (new log: format + start)", cold, "s", "until list_topics answers"
        ),
        Measurement("broker restart (log kept)", warm, "s", "clean shutdown before"),
        Measurement(
            "broker resident memory, idle", rss, "MB", f"heap -Xmx{broker.settings.broker_heap}"
        ),
    ]


def bench_jars() -> list[Measurement]:
    """What `make setup` downloads from Maven Central on a new machine: each pom, cold."""
    import subprocess

    from services.core.settings import PROJECT_ROOT

    results = []
    for name, pom in (("kafka", "services/kafka/pom.xml"), ("spark", "spark/jars/pom.xml")):
        with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
            out = Path(tmp) / "jars"
            started = time.perf_counter()
            subprocess.run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "-f",
                    str(PROJECT_ROOT / pom),
                    f"-Dmaven.repo.local={tmp}/m2",
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={out}",
                ],
                check=True,
                capture_output=True,
            )
            seconds = time.perf_counter() - started
            jars = list(out.glob("*.jar"))
            size = sum(j.stat().st_size for j in jars) / 1e6
            cache = sum(f.stat().st_size for f in (Path(tmp) / "m2").rglob("*") if f.is_file())
        results += [
            Measurement(f"{name} jars: cold download", seconds, "s", f"empty Maven cache ({pom})"),
            Measurement(
                f"{name} jars: size",
                size,
                "MB",
                f"{len(jars)} jars; Maven cache {cache / 1e6:.0f} MB incl. Maven's own plugins",
            ),
        ]
    return results


def bench_seed(posts: int = 1_000_000) -> list[Measurement]:
    """Bulk seeding of the source database: generation and LOAD DATA together."""
    from services.source_db.database import SourceDatabase
    from services.stack.mysql_server import MySQLService

    with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
        settings = bench_settings(Path(tmp))
        MySQLService(settings).ensure_database_and_user()
        db = SourceDatabase.connect(settings.db)
        try:
            result = db.seed(posts, seed=1)
            db.truncate()
        finally:
            db.engine.dispose()
    return [
        Measurement(f"seed {posts:,} posts ({result.rows:,} rows)", result.seconds, "s"),
        Measurement("seed rate", result.rows_per_second, "rows/s"),
        Measurement("seed rate (posts)", result.posts / result.seconds, "posts/s"),
    ]


# ---- stream -------------------------------------------------------------------------------
STREAM_STEADY_RATE = 10.0
STREAM_CEILING_RATE = 40.0  # about what API Gateway -> Kinesis takes here
STREAM_RAMP = (10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0)
STREAM_TRIGGER_S = 1.0
GOAL_P95_S = 3.0
GOAL_BATCH_SHARE = 0.5  # "well under its trigger": at most half of it


def bench_stream(
    steady_rate: float = STREAM_STEADY_RATE,
    steady_seconds: float = 60.0,
    ceiling_rate: float = STREAM_CEILING_RATE,
    ceiling_seconds: float = 300.0,
    ramp: tuple[float, ...] = STREAM_RAMP,
    step_seconds: float = 30.0,
) -> list[Measurement | Goal]:
    """Streaming latency (PUT through API Gateway to row in Delta), micro-batch time, five
    minutes at the API's ceiling, and the max sustained rate."""
    from pinpipe.benchmarks.streaming_latency import GROWTH_FACTOR, measure
    from services.stack.native_stack import NativeStack
    from spark.session import get_spark

    trigger = STREAM_TRIGGER_S
    with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
        settings = bench_settings(Path(tmp), seed_posts=5_000, stream_trigger_seconds=trigger)
        stack = NativeStack(settings)
        try:
            stack.up()  # seeds the bench database when it is empty
            spark = get_spark(settings, "pinpipe-bench-stream")

            def run(name: str, rate: float, seconds: float, direct: bool = False) -> RateStep:
                # Fresh streams each time: kinesis-mock slows down as a stream fills.
                step_settings = settings.model_copy(update={"user_id": f"bench-{name}"})
                return measure(spark, step_settings, rate, seconds, seed=round(rate), direct=direct)

            run("warmup", steady_rate, 10.0)  # the JVM's first batches are slow
            steady = run("steady", steady_rate, steady_seconds)
            ceiling = run("ceiling", ceiling_rate, ceiling_seconds)
            ramp_steps: list[RateStep] = []
            direct = False
            for rate in ramp:
                name = f"{'direct' if direct else 'api'}{rate:.0f}"
                ramp_steps.append(run(name, rate, step_seconds, direct))
                last = ramp_steps[-1]
                if not last.bounded or (last.input_bound and direct):
                    break
                # Past API Gateway's ceiling, put records straight into Kinesis to find the
                # streaming job's own.
                direct = direct or last.input_bound
        finally:
            stack.down()
    rows = len(steady.latencies)
    early, late = ceiling.halves()
    allowed = early * GROWTH_FACTOR + trigger
    unseen = f"; {ceiling.unseen} rows never visible" if ceiling.unseen else ""
    return [
        Goal(
            f"4a. stream p95 latency @ {steady_rate:g} events/s ≤ {GOAL_P95_S:g} s",
            steady.percentile(95),
            f"PUT via API Gateway → row in Delta, {rows} rows, {trigger:g} s trigger",
            GOAL_P95_S,
            "the goal",
            1.0,
        ),
        Goal(
            f"4b. micro-batch @ {steady_rate:g} events/s well under its trigger",
            steady.batch_percentile(95),
            f"p95 of {len(steady.batch_seconds)} micro-batches (triggerExecution)",
            trigger,
            "the trigger interval",
            GOAL_BATCH_SHARE,
        ),
        Goal(
            f"4c. {ceiling_seconds / 60:g} min @ {ceiling_rate:g} events/s: latency bounded",
            late if not ceiling.unseen else float("inf"),
            f"median latency, later half (earlier half {early:.2f} s; "
            f"{ceiling.achieved:.1f} events/s taken){unseen}",
            allowed,
            f"{GROWTH_FACTOR:g} x the earlier half + one trigger",
            1.0,
        ),
        Measurement(
            f"stream latency p50 @ {steady_rate:g} events/s",
            steady.percentile(50),
            "s",
            f"PUT via API Gateway → row in Delta; {rows} rows, {trigger:g} s trigger",
        ),
        Measurement(f"stream latency p95 @ {steady_rate:g} events/s", steady.percentile(95), "s"),
        Measurement(
            f"micro-batch p50 / p95 @ {steady_rate:g} events/s",
            steady.batch_percentile(50),
            "s",
            f"p95 {steady.batch_percentile(95):.2f} s",
        ),
        Measurement(
            f"stream latency p95 @ {ceiling.achieved:.0f} events/s, {ceiling_seconds:g} s",
            ceiling.percentile(95),
            "s",
            f"micro-batch p95 {ceiling.batch_percentile(95):.2f} s",
        ),
        _max_rate("stream max sustained rate (via API)", [s for s in ramp_steps if not s.direct]),
        _max_rate("stream max sustained rate (job)", ramp_steps),
    ]


def _max_rate(name: str, steps: list[RateStep]) -> Measurement:
    """The highest rate taken with bounded latency, and why the ramp went no higher."""
    best = max((s for s in steps if s.bounded), key=lambda s: s.achieved, default=None)
    last = steps[-1]
    if not last.bounded:
        early, late = last.halves()
        why = f"at {last.achieved:.0f}/s latency grew (p50 {early:.1f}s → {late:.1f}s)"
    elif last.input_bound:
        how = "boto3" if last.direct else "API Gateway"
        why = f"input-bound: {how} took {last.achieved:.0f}/s of {last.rate:g}/s asked"
    else:
        why = f"bounded up to the last step ({last.rate:g}/s)"
    value = best.achieved if best else 0.0
    return Measurement(
        name,
        value,
        "events/s",
        f"{why}; p95 {best.percentile(95):.1f}s at {best.achieved:.0f}/s" if best else why,
    )


BENCHMARKS: dict[str, Callable[[], Sequence[Measurement | Goal]]] = {
    "jars": bench_jars,
    "broker": bench_broker,
    "stack": bench_stack_startup,
    "seed": bench_seed,
    "stream": bench_stream,
    "ingest": bench_ingest,
    "batch": bench_batch,
    "writers": bench_writers,
}
