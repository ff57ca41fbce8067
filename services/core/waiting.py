"""Waiting for something to be true, and finding a free port: one way, for every unit."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from services.core.errors import TransientError

T = TypeVar("T")


class WaitTimeout(TransientError):
    """What was waited for did not happen in time."""


def poll(
    check: Callable[[], T],
    what: str,
    timeout: float,
    every: float = 0.2,
    tolerate: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    Exceptions of the ``tolerate`` types count as "not yet" (a component still starting);
    any other propagates at once. After ``timeout`` seconds, WaitTimeout names ``what``.
    """
    retrying = Retrying(
        retry=retry_if_result(lambda value: not value) | retry_if_exception_type(tolerate),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(every),
    )
    try:
        return retrying(check)
    except RetryError as exc:
        raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}") from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (for a service of a test or a benchmark)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
