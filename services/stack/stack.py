"""The native stack: every service started, health-checked and provisioned in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from services.errors import PinpipeError
from services.settings import Settings
from services.stack.api_gateway import ApiGatewayService
from services.stack.base import NativeService, ServiceStatus
from services.stack.broker import BrokerService
from services.stack.localstack import LocalStackService
from services.stack.mysql import MySQLService

SERVICE_CLASSES: tuple[type[NativeService], ...] = (
    MySQLService,
    BrokerService,
    LocalStackService,
    ApiGatewayService,
)


@dataclass(frozen=True)
class StepResult:
    service: str
    outcome: str
    seconds: float


class NativeStack:
    """Start, stop and report the native services, in dependency order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: list[NativeService] = [cls(settings) for cls in SERVICE_CLASSES]

    def up(self, on_step: Callable[[StepResult], None] | None = None) -> list[StepResult]:
        """Bring every service up; on a failure stop what the stack owns and re-raise."""
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        results = []
        for service in self.services:
            started = time.perf_counter()
            try:
                outcome = service.up()
            except PinpipeError:
                self.down()
                raise
            result = StepResult(service.name, outcome, time.perf_counter() - started)
            results.append(result)
            if on_step:
                on_step(result)
        return results

    def down(self) -> dict[str, bool]:
        """Stop exactly the processes the stack started, last first."""
        return {s.name: s.down() for s in reversed(self.services)}

    def status(self) -> list[ServiceStatus]:
        return [s.status() for s in self.services]
