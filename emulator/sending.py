"""What both clients share: the count of one request's records, and how a request is retried."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.core.errors import TerminalError, TransientError

log = logging.getLogger(__name__)

# HTTP answers worth another attempt: throttling and the server's (or gateway's) failures.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")


@dataclass
class ProduceResult:
    """What the destination acknowledged of one request's records."""

    acknowledged: int = 0
    failed: int = 0
    attempts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    # (partition, offset) of every acknowledged record, in request order (Kafka only).
    offsets: list[tuple[int, int]] = field(default_factory=list)

    def fail(self, records: int, reason: str) -> None:
        """Count ``records`` as failed for ``reason``."""
        self.failed += records
        self.errors[reason] += records


def with_retries(
    attempt: Callable[[], T],
    max_attempts: int,
    result: ProduceResult,
    what: str,
    pending: Callable[[], int],
) -> T | None:
    """Run ``attempt``, again after a TransientError (jittered backoff), ``max_attempts`` times.

    The attempts are counted on ``result``; when they run out, or on a TerminalError, the
    records still ``pending()`` are counted failed with the reason, and None is returned.
    """

    def count_attempt(state: RetryCallState) -> None:
        result.attempts = state.attempt_number

    sender = retry(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(max_attempts),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
        before=count_attempt,
        reraise=True,
    )(attempt)
    try:
        return sender()
    except (TransientError, TerminalError) as exc:
        log.warning("%s: %d records failed: %s", what, pending(), exc)
        result.fail(pending(), str(exc))
        return None
