"""Batch mode: sampled posts go to the Kafka topics through the REST proxy API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.posting import EmulationOptions, Summary, run
from emulator.rest_proxy_client import KafkaRestClient
from emulator.sampler import Event
from emulator.sending import ProduceResult
from services.core.errors import ConfigError
from services.core.settings import Settings

UNLIMITED = 1_000_000


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


class RestProxyTopics:
    """The three topics, through the REST proxy (by API Gateway, or ``direct``)."""

    max_batch = UNLIMITED

    def __init__(self, settings: Settings, opts: EmulationOptions) -> None:
        self.settings = settings
        self.target = target_url(settings, opts.direct)
        pool = max(opts.concurrency, 1) * 2
        self.client = KafkaRestClient(self.target, max_attempts=opts.max_attempts, pool=pool)

    def name(self, table: str) -> str:
        return self.settings.topics[table]

    def record(self, event: Event, row: dict[str, Any]) -> dict[str, Any]:
        return row

    def send_one(self, name: str, record: dict[str, Any]) -> ProduceResult:
        return self.client.produce(name, [record])

    def send(self, name: str, records: list[dict[str, Any]]) -> ProduceResult:
        return self.client.produce(name, records)

    def close(self) -> None:
        self.client.close()


def run_batch(
    settings: Settings,
    opts: EmulationOptions,
    on_records: Callable[[int], None] | None = None,
) -> Summary:
    """Sample posts and send each table's row to its topic; return the summary."""
    return run(settings, opts, RestProxyTopics(settings, opts), on_records)
