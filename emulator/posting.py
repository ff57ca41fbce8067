"""The emulator's one run loop, whatever the destination: sample, pace, batch, send, count.

Each mode (batch_mode: Kafka topics through the REST proxy; streaming_mode: Kinesis streams)
is a ``Destination``: where a table's rows go, the record it sends for a row, and how one
or many records are sent. The loop samples posts with replacement, paces them, fills one
buffer per table, sends a buffer when it is full or has waited MAX_BATCH_DELAY_S, keeps at
most ``2 x concurrency`` requests in flight, and counts every record acknowledged or failed.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from emulator.sampler import Event, RowSampler
from emulator.sending import ProduceResult
from services.core.settings import TABLES, Settings
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


class Destination(Protocol):
    """Where a mode sends: one topic or stream per table."""

    target: str
    # The most records one request may carry.
    max_batch: int

    def name(self, table: str) -> str:
        """The topic or stream of a table."""

    def record(self, event: Event, row: dict[str, Any]) -> Any:
        """What is sent for one row of an event."""

    def send_one(self, name: str, record: Any) -> ProduceResult:
        """One record in one request, as the original client sends it."""

    def send(self, name: str, records: list[Any]) -> ProduceResult:
        """Many records in one request."""

    def close(self) -> None:
        """Release the connections."""


OnSent = Callable[[str, list[Any], float], None]


def run(
    settings: Settings,
    opts: EmulationOptions,
    destination: Destination,
    on_records: Callable[[int], None] | None = None,
    on_sent: OnSent | None = None,
) -> Summary:
    """Sample posts and send each table's row to the destination; return the summary.

    ``on_sent(table, records, sent_at)`` is told of each request after its answer, with the
    monotonic time it was sent (the latency benchmark uses it).
    """
    engine = make_engine(settings.db)
    summary = Summary(target=destination.target)
    tally = Tally(summary, on_records, opts.keep_offsets)
    started = time.monotonic()
    deadline = started + opts.duration if opts.duration else None
    try:
        sampler = RowSampler(engine, opts.seed)
        loop = _run_classic if opts.classic else _run_batched
        loop(_Run(opts, sampler, destination, tally, deadline, on_sent))
    finally:
        summary.seconds = time.monotonic() - started
        summary.errors = dict(tally.errors)
        destination.close()
        engine.dispose()
    return summary


@dataclass
class _Run:
    """One run's parts, as both loops take them."""

    opts: EmulationOptions
    sampler: RowSampler
    destination: Destination
    tally: Tally
    deadline: float | None
    on_sent: OnSent | None

    def events(self) -> Iterator[Event]:
        return sampled_events(self.sampler, self.opts, self.deadline, self.tally.summary)  # type: ignore[no-any-return]

    def sent(self, table: str, records: list[Any], sent_at: float) -> None:
        if self.on_sent:
            self.on_sent(table, records, sent_at)


def _run_classic(run: _Run) -> None:
    """The original script: one record per request, three tables per event, 0-1 s sleeps."""
    rng = np.random.default_rng(run.opts.seed)
    destination = run.destination
    for event in run.events():
        for table, row in event_rows(event, run.tally.summary):
            name = destination.name(table)
            record = destination.record(event, row)
            sent_at = time.monotonic()
            run.tally.add(name, 1, destination.send_one(name, record))
            run.sent(table, [record], sent_at)
        time.sleep(float(rng.uniform(0, 1)))


def _run_batched(run: _Run) -> None:
    opts, destination, tally = run.opts, run.destination, run.tally
    pacer = Pacer(opts.rate)
    batch_size = min(max(opts.batch_size, 1), destination.max_batch)
    slots = threading.BoundedSemaphore(max(opts.concurrency, 1) * 2)
    buffers: dict[str, list[Any]] = {t: [] for t in TABLES}
    first_at: dict[str, float] = {}

    def send(table: str, records: list[Any]) -> None:
        name = destination.name(table)
        try:
            sent_at = time.monotonic()
            tally.add(name, len(records), destination.send(name, records))
            run.sent(table, records, sent_at)
        finally:
            slots.release()

    def flush(table: str) -> None:
        records, buffers[table] = buffers[table], []
        first_at.pop(table, None)
        if records:
            slots.acquire()
            pool.submit(send, table, records)

    with ThreadPoolExecutor(
        max_workers=max(opts.concurrency, 1), thread_name_prefix="emit"
    ) as pool:
        for event in run.events():
            pacer.wait()
            for table, row in event_rows(event, tally.summary):
                buffers[table].append(destination.record(event, row))
                first_at.setdefault(table, time.monotonic())
                if len(buffers[table]) >= batch_size:
                    flush(table)
            now = time.monotonic()
            for table, since in list(first_at.items()):
                if now - since >= MAX_BATCH_DELAY_S:
                    flush(table)
        for table in TABLES:
            flush(table)
