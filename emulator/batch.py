"""Batch mode: sampled posts go to the Kafka topics through the REST proxy API."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from emulator.kafka_rest import KafkaRestClient, ProduceResult
from emulator.sampler import Event, RowSampler
from services.errors import ConfigError
from services.settings import TABLES, Settings
from services.source_db.database import make_engine

SAMPLE_CHUNK = 2_000
# A partly filled batch is sent after this long, so a low --rate doesn't hold records back.
MAX_BATCH_DELAY_S = 0.25


@dataclass
class EmulationOptions:
    count: int | None = 1_000
    duration: float | None = None
    rate: float | None = None
    concurrency: int = 4
    batch_size: int = 100
    seed: int | None = None
    direct: bool = False
    classic: bool = False
    max_attempts: int = 5
    # Keep where every acknowledged record was written (Summary.offsets): for checks that
    # follow records through the pipeline; off for long runs.
    keep_offsets: bool = False


@dataclass
class Summary:
    """What the emulator did: nothing counts as acknowledged unless the proxy said so."""

    target: str
    events: int = 0
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    missing_rows: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    acknowledged_by_topic: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    offsets: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        summary = {k: v for k, v in asdict(self).items() if k != "offsets"}
        return {**summary, "events_per_second": round(self.events_per_second, 1)}


class Tally:
    """Thread-safe counters shared by the sending threads."""

    def __init__(
        self,
        summary: Summary,
        on_records: Callable[[int], None] | None,
        keep_offsets: bool = False,
    ) -> None:
        self.summary = summary
        self.keep_offsets = keep_offsets
        self.errors: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.on_records = on_records

    def add(self, topic: str, n: int, result: ProduceResult) -> None:
        with self.lock:
            s = self.summary
            s.sent += n
            s.requests += 1
            s.retries += max(result.attempts - 1, 0)
            s.acknowledged += result.acknowledged
            s.failed += result.failed
            s.acknowledged_by_topic[topic] = (
                s.acknowledged_by_topic.get(topic, 0) + result.acknowledged
            )
            self.errors.update(result.errors)
            if self.keep_offsets:
                s.offsets.setdefault(topic, []).extend(result.offsets)
        if self.on_records:
            self.on_records(n)


class Pacer:
    """Spaces events evenly at ``rate`` per second (no pacing when rate is None)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next > now:
            time.sleep(self.next - now)
        self.next = max(self.next, now) + self.interval


def target_url(settings: Settings, direct: bool) -> str:
    """The API Gateway invoke URL, or the REST proxy itself with ``direct``."""
    if direct:
        return settings.rest_proxy_url
    url = settings.resolved_api_invoke_url()
    if not url:
        raise ConfigError(
            "No API Gateway invoke URL: run `pinpipe stack up`, set PINPIPE_API_INVOKE_URL, "
            "or pass --direct to post to the REST proxy."
        )
    return url


def run_batch(
    settings: Settings,
    opts: EmulationOptions,
    on_records: Callable[[int], None] | None = None,
) -> Summary:
    """Sample posts and send each table's row to its topic; return the summary."""
    url = target_url(settings, opts.direct)
    engine = make_engine(settings.db)
    sampler = RowSampler(engine, opts.seed)
    client = KafkaRestClient(url, max_attempts=opts.max_attempts, pool=max(opts.concurrency, 1) * 2)
    summary = Summary(target=url)
    tally = Tally(summary, on_records, opts.keep_offsets)
    started = time.monotonic()
    deadline = started + opts.duration if opts.duration else None
    try:
        if opts.classic:
            _run_classic(settings, opts, sampler, client, tally, deadline)
        else:
            _run_batched(settings, opts, sampler, client, tally, deadline)
    finally:
        summary.seconds = time.monotonic() - started
        summary.errors = dict(tally.errors)
        client.close()
        engine.dispose()
    return summary


def sampled_events(
    sampler: RowSampler, opts: EmulationOptions, deadline: float | None, summary: Summary
):  # type: ignore[no-untyped-def]
    # A paced run samples about a second of events at a time: the first is sent at once.
    size = min(SAMPLE_CHUNK, opts.count or SAMPLE_CHUNK, math.ceil(opts.rate or SAMPLE_CHUNK))
    for chunk in sampler.chunks(opts.count, chunk=size):
        for event in chunk:
            if deadline is not None and time.monotonic() >= deadline:
                return
            summary.events += 1
            yield event


def event_rows(event: Event, summary: Summary) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) of an event; a row the source lacks is counted as missing."""
    for table, row in event.by_table().items():
        if row is None:
            summary.missing_rows += 1
        else:
            yield table, row


def _run_classic(
    settings: Settings,
    opts: EmulationOptions,
    sampler: RowSampler,
    client: KafkaRestClient,
    tally: Tally,
    deadline: float | None,
) -> None:
    """The original script: one record per request, three tables per event, 0-1 s sleeps."""
    rng = np.random.default_rng(opts.seed)
    for event in sampled_events(sampler, opts, deadline, tally.summary):
        for table, row in event_rows(event, tally.summary):
            topic = settings.topics[table]
            tally.add(topic, 1, client.produce(topic, [row]))
        time.sleep(float(rng.uniform(0, 1)))


def _run_batched(
    settings: Settings,
    opts: EmulationOptions,
    sampler: RowSampler,
    client: KafkaRestClient,
    tally: Tally,
    deadline: float | None,
) -> None:
    pacer = Pacer(opts.rate)
    slots = threading.BoundedSemaphore(max(opts.concurrency, 1) * 2)
    buffers: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    first_at: dict[str, float] = {}

    def send(topic: str, rows: list[dict[str, Any]]) -> None:
        try:
            tally.add(topic, len(rows), client.produce(topic, rows))
        finally:
            slots.release()

    def flush(table: str) -> None:
        rows, buffers[table] = buffers[table], []
        first_at.pop(table, None)
        if rows:
            slots.acquire()
            pool.submit(send, settings.topics[table], rows)

    with ThreadPoolExecutor(
        max_workers=max(opts.concurrency, 1), thread_name_prefix="emit"
    ) as pool:
        for event in sampled_events(sampler, opts, deadline, tally.summary):
            pacer.wait()
            for table, row in event_rows(event, tally.summary):
                buffers[table].append(row)
                first_at.setdefault(table, time.monotonic())
                if len(buffers[table]) >= opts.batch_size:
                    flush(table)
            now = time.monotonic()
            for table, since in list(first_at.items()):
                if now - since >= MAX_BATCH_DELAY_S:
                    flush(table)
        for table in TABLES:
            flush(table)
