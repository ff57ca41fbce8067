"""Streaming mode: sampled posts go to the Kinesis streams through the API Gateway.

The same sampling, pacing, concurrency and honest counts as batch mode (``emulator.batch``);
only the destination differs: ``PUT /streams/<stream>/records`` (``/record`` in classic
mode, as the original client does), one stream per table, the ``ind`` as partition key so
records spread over a stream's shards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from emulator.batch import (
    MAX_BATCH_DELAY_S,
    EmulationOptions,
    Pacer,
    Summary,
    Tally,
    event_rows,
    sampled_events,
)
from emulator.kinesis_api import (
    MAX_RECORDS_PER_REQUEST,
    KinesisApiClient,
    KinesisDirectClient,
    KinesisWriter,
    Record,
)
from emulator.sampler import Event, RowSampler
from services.errors import ConfigError
from services.settings import TABLES, Settings
from services.source_db.database import make_engine


@dataclass
class StreamEmulationOptions(EmulationOptions):
    """Batch mode's options, plus how ``Data`` travels: a JSON object or base64 text."""

    base64_data: bool = False


def partition_key(event: Event) -> str:
    """The post's ``ind``: its three rows spread over shards alike, and stay in order."""
    return str(event.ind)


def make_writer(settings: Settings, opts: StreamEmulationOptions) -> tuple[str, KinesisWriter]:
    """The API Gateway client (or boto3 with ``direct``) and where it sends."""
    if opts.direct:
        return (
            f"kinesis {settings.aws_endpoint_url or settings.aws_region}",
            KinesisDirectClient(settings.boto3_kwargs(), opts.max_attempts, opts.base64_data),
        )
    url = settings.resolved_api_invoke_url()
    if not url:
        raise ConfigError(
            "No API Gateway invoke URL: run `pinpipe stack up`, set PINPIPE_API_INVOKE_URL, "
            "or pass --direct to put records with boto3."
        )
    pool = max(opts.concurrency, 1) * 2
    return url, KinesisApiClient(
        url, max_attempts=opts.max_attempts, pool=pool, base64_data=opts.base64_data
    )


def run_stream(
    settings: Settings,
    opts: StreamEmulationOptions,
    on_records: Callable[[int], None] | None = None,
    on_sent: Callable[[str, list[Record], float], None] | None = None,
) -> Summary:
    """Sample posts and put each table's row to its stream; return the summary.

    ``on_sent(table, records, sent_at)`` is told of each request after its answer, with
    the monotonic time it was sent (the latency benchmark uses it).
    """
    target, writer = make_writer(settings, opts)
    engine = make_engine(settings.db)
    sampler = RowSampler(engine, opts.seed)
    summary = Summary(target=target)
    tally = Tally(summary, on_records)
    started = time.monotonic()
    deadline = started + opts.duration if opts.duration else None
    try:
        if opts.classic:
            _run_classic(settings, opts, sampler, writer, tally, deadline, on_sent)
        else:
            _run_batched(settings, opts, sampler, writer, tally, deadline, on_sent)
    finally:
        summary.seconds = time.monotonic() - started
        summary.errors = dict(tally.errors)
        writer.close()
        engine.dispose()
    return summary


def _run_classic(
    settings: Settings,
    opts: StreamEmulationOptions,
    sampler: RowSampler,
    writer: KinesisWriter,
    tally: Tally,
    deadline: float | None,
    on_sent: Callable[[str, list[Record], float], None] | None,
) -> None:
    """The original script: one PutRecord per row, three tables per event, 0-1 s sleeps."""
    rng = np.random.default_rng(opts.seed)
    for event in sampled_events(sampler, opts, deadline, tally.summary):
        for table, row in event_rows(event, tally.summary):
            stream = settings.streams[table]
            record = (partition_key(event), row)
            sent_at = time.monotonic()
            tally.add(stream, 1, writer.put_record(stream, record))
            if on_sent:
                on_sent(table, [record], sent_at)
        time.sleep(float(rng.uniform(0, 1)))


def _run_batched(
    settings: Settings,
    opts: StreamEmulationOptions,
    sampler: RowSampler,
    writer: KinesisWriter,
    tally: Tally,
    deadline: float | None,
    on_sent: Callable[[str, list[Record], float], None] | None,
) -> None:
    pacer = Pacer(opts.rate)
    batch_size = min(max(opts.batch_size, 1), MAX_RECORDS_PER_REQUEST)
    slots = threading.BoundedSemaphore(max(opts.concurrency, 1) * 2)
    buffers: dict[str, list[Record]] = {t: [] for t in TABLES}
    first_at: dict[str, float] = {}

    def send(table: str, records: list[Record]) -> None:
        stream = settings.streams[table]
        try:
            sent_at = time.monotonic()
            tally.add(stream, len(records), writer.put_records(stream, records))
            if on_sent:
                on_sent(table, records, sent_at)
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
        for event in sampled_events(sampler, opts, deadline, tally.summary):
            pacer.wait()
            for table, row in event_rows(event, tally.summary):
                buffers[table].append((partition_key(event), row))
                first_at.setdefault(table, time.monotonic())
                if len(buffers[table]) >= batch_size:
                    flush(table)
            now = time.monotonic()
            for table, since in list(first_at.items()):
                if now - since >= MAX_BATCH_DELAY_S:
                    flush(table)
        for table in TABLES:
            flush(table)
