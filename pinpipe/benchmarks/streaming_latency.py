"""End-to-end latency of the streaming path: PUT through API Gateway to the row visible in Delta.

Each measurement gets fresh streams, tables and checkpoint (kinesis-mock slows down as a
stream grows), starts the query, waits for its first trigger, then posts sampled events
at a steady rate through the API while a watcher polls the three Delta tables. A row's
latency runs from the monotonic time its PUT request was sent to the first poll that sees
its ``ind``; posts drawn again after they became visible are not counted twice. The
emulator runs in a process of its own, like a real client.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import statistics
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from emulator.kinesis_client import Record
from emulator.streaming_mode import StreamEmulationOptions, run_stream
from pinpipe.stream_demo import KEY
from services.core.settings import TABLES, Settings
from spark.jobs.streaming_job import StreamOptions, start, stop
from spark.sinks.delta_stream import delta_inds
from spark.sinks.tables import storage_options, table_uri

log = logging.getLogger(__name__)

POLL_S = 0.1
# Latency "grows without bound" when the later half of a run waits this much longer than
# the earlier half (relative, plus one trigger of slack for batch boundaries).
GROWTH_FACTOR = 1.5


@dataclass
class RateStep:
    """One steady-rate run: target and achieved rates, and each row's latency in send order."""

    rate: float
    direct: bool = False
    achieved: float = 0.0
    latencies: list[float] = field(default_factory=list)
    unseen: int = 0
    trigger_seconds: float = 1.0
    # Wall time of each micro-batch that read records (Spark's triggerExecution), in order.
    batch_seconds: list[float] = field(default_factory=list)

    def batch_percentile(self, q: float) -> float:
        """The ``q``-th percentile of the micro-batches' durations, in seconds."""
        found = self.batch_seconds
        if len(found) < 2:
            return found[0] if found else float("nan")
        return statistics.quantiles(found, n=100, method="inclusive")[round(q) - 1]

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the latencies (0 < q < 100), in seconds."""
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q) - 1]

    def halves(self) -> tuple[float, float]:
        """Median latency of the rows sent in the first and in the second half."""
        middle = len(self.latencies) // 2
        return (
            statistics.median(self.latencies[:middle] or [0.0]),
            statistics.median(self.latencies[middle:] or [0.0]),
        )

    @property
    def input_bound(self) -> bool:
        """The emulator couldn't put events in as fast as asked."""
        return self.achieved < 0.9 * self.rate

    @property
    def bounded(self) -> bool:
        """Every row became visible and the later rows didn't wait markedly longer."""
        early, late = self.halves()
        return self.unseen == 0 and late <= early * GROWTH_FACTOR + self.trigger_seconds


class _Watch(threading.Thread):
    """Polls the cleaned tables; notes when each row sent first becomes visible."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="delta-watch")
        self.settings = settings
        self.sent: dict[str, dict[int, float]] = {t: {} for t in TABLES}
        self.seen: dict[str, set[int]] = {t: set() for t in TABLES}
        self.latencies: list[tuple[float, float]] = []  # (sent at, latency)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.versions: dict[str, int] = {}
        self.events = 0
        self.first_sent, self.last_sent = float("inf"), float("-inf")

    def achieved(self) -> float:
        """Events per second over the sending itself (sampling before it doesn't count)."""
        span = self.last_sent - self.first_sent
        return self.events / span if span > 0 else 0.0

    def note_sent(self, table: str, inds: list[int], sent_at: float) -> None:
        with self.lock:
            self.first_sent = min(self.first_sent, sent_at)
            self.last_sent = max(self.last_sent, sent_at)
            if table == "pin":  # one pin row per event
                self.events += len(inds)
            for ind in inds:
                if ind not in self.seen[table]:
                    self.sent[table].setdefault(ind, sent_at)

    def unseen(self) -> int:
        with self.lock:
            return sum(len(set(self.sent[t]) - self.seen[t]) for t in TABLES)

    def run(self) -> None:
        while not self.done.wait(POLL_S):
            for table in TABLES:
                self._poll(table)

    def _poll(self, table: str) -> None:
        from deltalake import DeltaTable

        uri = table_uri(self.settings, self.settings.delta_tables[table])
        storage = storage_options(self.settings) or None
        if not DeltaTable.is_deltatable(uri, storage_options=storage):
            return
        version = DeltaTable(uri, storage_options=storage).version()
        if self.versions.get(table) == version:
            return
        self.versions[table] = version
        now = time.monotonic()
        visible = set(delta_inds(self.settings, table))
        with self.lock:
            for ind in visible - self.seen[table]:
                if ind in self.sent[table]:
                    sent_at = self.sent[table][ind]
                    self.latencies.append((sent_at, now - sent_at))
            self.seen[table] |= visible


class _Batches(StreamingQueryListener):
    """Notes how long each micro-batch of one query took (only those that read records)."""

    def __init__(self) -> None:
        self.query_id = ""
        self.seconds: list[float] = []

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        if str(progress.id) == self.query_id and progress.numInputRows:
            self.seconds.append(progress.durationMs.get("triggerExecution", 0) / 1000)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass


def _emulate(settings: Settings, opts: StreamEmulationOptions, sent: Queue[Any]) -> None:
    """The emulator, in a process of its own; each request's inds and send time go to ``sent``."""

    def note(table: str, records: list[Record], sent_at: float) -> None:
        sent.put((table, [int(row[KEY[table]]) for _, row in records], sent_at))

    try:
        run_stream(settings, opts, on_sent=note)
    finally:
        sent.put(None)


def _streams(settings: Settings, create: bool) -> None:
    import boto3

    kinesis = boto3.client("kinesis", **settings.boto3_kwargs())
    for stream in settings.streams.values():
        if create:
            kinesis.create_stream(StreamName=stream, ShardCount=settings.stream_shards)
        else:
            kinesis.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
    if create:
        waiter = kinesis.get_waiter("stream_exists")
        for stream in settings.streams.values():
            waiter.wait(StreamName=stream, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})


def measure(
    spark: SparkSession,
    settings: Settings,
    rate: float,
    seconds: float,
    drain_timeout: float = 60.0,
    seed: int = 1,
    direct: bool = False,
) -> RateStep:
    """Post ``rate`` events/s for ``seconds`` through the API; return the rows' latencies.

    ``settings`` names streams of this measurement's own: they are created and deleted here.
    ``direct`` puts the records into Kinesis with boto3, past the API Gateway's ceiling.
    """
    _streams(settings, create=True)
    step = RateStep(rate, direct=direct, trigger_seconds=settings.stream_trigger_seconds)
    watch = _Watch(settings)
    batches = _Batches()
    spark.streams.addListener(batches)
    query, _ = start(
        spark,
        settings,
        StreamOptions(trigger_seconds=settings.stream_trigger_seconds),
    )
    batches.query_id = str(query.id)
    try:
        while query.isActive and query.lastProgress is None:
            time.sleep(POLL_S)
        watch.start()
        emulation = StreamEmulationOptions(
            count=round(rate * seconds),
            rate=rate,
            concurrency=8,
            batch_size=500,
            seed=seed,
            direct=direct,
        )
        # Its own process: in this one, the query's driver code would hold the GIL and
        # throttle the emulator. Monotonic clocks are comparable across processes.
        context = multiprocessing.get_context("spawn")
        sent: Queue[Any] = context.Queue()
        emulator = context.Process(target=_emulate, args=(settings, emulation, sent))
        emulator.start()
        while True:
            try:
                note = sent.get(timeout=1.0)
            except queue.Empty:
                if emulator.is_alive():
                    continue
                break  # died without its last word: what it sent still counts
            if note is None:
                break
            watch.note_sent(*note)
        emulator.join()
        step.achieved = watch.achieved()
        deadline = time.monotonic() + drain_timeout
        while watch.unseen() and time.monotonic() < deadline and query.isActive:
            time.sleep(POLL_S)
    finally:
        watch.done.set()
        stop(query, grace=5)
        spark.streams.removeListener(batches)
        _streams(settings, create=False)
    watch.join()
    step.batch_seconds = list(batches.seconds)
    step.unseen = watch.unseen()
    step.latencies = [latency for _, latency in sorted(watch.latencies)]
    log.info(
        "rate %.0f/s%s: achieved %.1f/s, %d rows, p50 %.2fs, p95 %.2fs, unseen %d, "
        "micro-batch p95 %.2fs",
        rate,
        " (direct)" if direct else "",
        step.achieved,
        len(step.latencies),
        step.percentile(50),
        step.percentile(95),
        step.unseen,
        step.batch_percentile(95),
    )
    return step
