"""Client of the Kafka REST proxy v2 (directly, or through API Gateway's ``{proxy+}``)."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from emulator.sending import RETRY_STATUS, ProduceResult, with_retries
from services.core.errors import TerminalError, TransientError

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.kafka.json.v2+json"
ACCEPT = "application/vnd.kafka.v2+json"


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
        offsets = with_retries(
            lambda: self._post(topic, body),
            self.max_attempts,
            result,
            f"topic {topic}",
            lambda: len(values),
        )
        if offsets is None:
            return result
        for entry in offsets:
            if entry.get("error_code") is None and entry.get("offset") is not None:
                result.acknowledged += 1
                result.offsets.append((int(entry.get("partition") or 0), int(entry["offset"])))
            else:
                result.fail(1, f"{entry.get('error_code')}: {entry.get('error')}")
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
