"""Streaming mode: sampled posts go to the Kinesis streams through the API Gateway.

The same sampling, pacing, concurrency and honest counts as batch mode (``emulator.posting``);
only the destination differs: ``PUT /streams/<stream>/records`` (``/record`` in classic
mode, as the original client does), one stream per table, the ``ind`` as partition key so
records spread over a stream's shards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.kinesis_client import (
    MAX_RECORDS_PER_REQUEST,
    KinesisApiClient,
    KinesisDirectClient,
    KinesisWriter,
    Record,
)
from emulator.posting import EmulationOptions, OnSent, Summary, run
from emulator.sampler import Event
from emulator.sending import ProduceResult
from services.core.errors import ConfigError
from services.core.settings import Settings


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


class KinesisStreams:
    """The three streams, through the API Gateway (or boto3 with ``direct``)."""

    max_batch = MAX_RECORDS_PER_REQUEST

    def __init__(self, settings: Settings, opts: StreamEmulationOptions) -> None:
        self.settings = settings
        self.target, self.writer = make_writer(settings, opts)

    def name(self, table: str) -> str:
        return self.settings.streams[table]

    def record(self, event: Event, row: dict[str, Any]) -> Record:
        return (partition_key(event), row)

    def send_one(self, name: str, record: Record) -> ProduceResult:
        return self.writer.put_record(name, record)

    def send(self, name: str, records: list[Record]) -> ProduceResult:
        return self.writer.put_records(name, records)

    def close(self) -> None:
        self.writer.close()


def run_stream(
    settings: Settings,
    opts: StreamEmulationOptions,
    on_records: Callable[[int], None] | None = None,
    on_sent: OnSent | None = None,
) -> Summary:
    """Sample posts and put each table's row to its stream; return the summary.

    ``on_sent(table, records, sent_at)`` is told of each request after its answer, with
    the monotonic time it was sent (the latency benchmark uses it).
    """
    return run(settings, opts, KinesisStreams(settings, opts), on_records, on_sent)
