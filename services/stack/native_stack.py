"""The native stack: every service started, health-checked and provisioned in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from services.core.errors import PinpipeError
from services.core.settings import Settings
from services.stack.airflow_standalone import AirflowService
from services.stack.api_stage import ApiGatewayService
from services.stack.base import NativeService, ServiceStatus
from services.stack.kafka_broker import BrokerService
from services.stack.localstack import LocalStackService
from services.stack.mysql_server import MySQLService
from services.stack.rest_proxy_process import RestProxyService
from services.stack.s3_sink_process import S3SinkService

SERVICE_CLASSES: tuple[type[NativeService], ...] = (
    MySQLService,
    BrokerService,
    RestProxyService,
    LocalStackService,
    S3SinkService,
    ApiGatewayService,
)
# Opt-in services: `stack up` leaves them alone (Airflow takes 20-45 s and ~1.5 GB), but
# `stack status` reports them and `stack down` stops them.
OPTIONAL_SERVICE_CLASSES: tuple[type[NativeService], ...] = (AirflowService,)


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
        self.optional: list[NativeService] = [cls(settings) for cls in OPTIONAL_SERVICE_CLASSES]

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
        return {s.name: s.down() for s in reversed([*self.services, *self.optional])}

    def status(self) -> list[ServiceStatus]:
        return [s.status() for s in [*self.services, *self.optional]]
