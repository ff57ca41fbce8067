"""Client of the Kafka REST proxy v2 (directly, or through API Gateway's ``{proxy+}``)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.errors import TerminalError, TransientError

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.kafka.json.v2+json"
ACCEPT = "application/vnd.kafka.v2+json"
RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass
class ProduceResult:
    """What the proxy acknowledged of one request's records."""

    acknowledged: int = 0
    failed: int = 0
    attempts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    # (partition, offset) of every acknowledged record, in request order.
    offsets: list[tuple[int, int]] = field(default_factory=list)


class KafkaRestClient:
    """One pooled HTTP client; transient failures are retried with backoff."""

    def __init__(
        self, base_url: str, max_attempts: int = 5, timeout: float = 30.0, pool: int = 16
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            headers={"Content-Type": CONTENT_TYPE, "Accept": ACCEPT},
        )

    def close(self) -> None:
        self.http.close()

    def produce(self, topic: str, values: list[dict[str, Any]]) -> ProduceResult:
        """Post records to a topic; never raises for a failed record, it is counted instead."""
        body = json.dumps({"records": [{"value": v} for v in values]}, default=str)
        result = ProduceResult()

        def count_attempt(state: RetryCallState) -> None:
            result.attempts = state.attempt_number

        sender = retry(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            before=count_attempt,
            reraise=True,
        )(self._post)
        try:
            offsets = sender(topic, body)
        except (TransientError, TerminalError) as exc:
            log.warning("topic %s: %d records failed: %s", topic, len(values), exc)
            result.failed = len(values)
            result.errors[str(exc)] += len(values)
            return result
        for entry in offsets:
            if entry.get("error_code") is None and entry.get("offset") is not None:
                result.acknowledged += 1
                result.offsets.append((int(entry.get("partition") or 0), int(entry["offset"])))
            else:
                result.failed += 1
                result.errors[f"{entry.get('error_code')}: {entry.get('error')}"] += 1
        return result

    def _post(self, topic: str, body: str) -> list[dict[str, Any]]:
        try:
            resp = self.http.post(f"/topics/{topic}", content=body)
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code in RETRY_STATUS:
            raise TransientError(
                f"HTTP {resp.status_code} from {resp.request.url}: {resp.text[:200]}"
            )
        if resp.status_code >= 400:
            raise TerminalError(
                f"HTTP {resp.status_code} from {resp.request.url}: {resp.text[:200]}"
            )
        offsets = resp.json().get("offsets")
        if not isinstance(offsets, list):
            raise TerminalError(f"unexpected response from {resp.request.url}: {resp.text[:200]}")
        return offsets
