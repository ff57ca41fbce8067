"""The project's exception hierarchy: transient errors may be retried, terminal ones may not."""

from __future__ import annotations


class PinpipeError(Exception):
    """Base of every error the project raises on purpose."""


class TerminalError(PinpipeError):
    """Retrying will not help: bad input, bad configuration, a missing prerequisite."""


class TransientError(PinpipeError):
    """May succeed if retried: connection refused, timeouts, 5xx, throttling."""


class ConfigError(TerminalError):
    """A configuration or credentials file is missing or malformed."""


class PrerequisiteError(TerminalError):
    """Something the machine must provide is missing (a binary, a free port, a venv)."""


class ServiceStartError(TerminalError):
    """A native service did not become healthy; carries the tail of its log."""

    def __init__(self, service: str, reason: str, log_tail: str = "") -> None:
        self.service = service
        self.reason = reason
        self.log_tail = log_tail
        super().__init__(f"{service} failed to start: {reason}")
