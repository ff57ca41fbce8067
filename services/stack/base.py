"""What every native service shares: start once, health-check, provision, stop by pid."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

from services.core.settings import Settings
from services.stack.process import (
    ManagedProcess,
    describe_exception,
    require_free_port,
    wait_until,
)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: Literal["up", "down"]
    endpoint: str
    pid: int | None
    managed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class NativeService(ABC):
    """A local process of the stack, owned through its pid file."""

    name: ClassVar[str]
    port_setting: ClassVar[str] = ""
    startup_timeout: ClassVar[float] = 60.0
    stop_timeout: ClassVar[float] = 15.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc = ManagedProcess(self.name, settings.pids_dir, settings.logs_dir)

    @property
    @abstractmethod
    def port(self) -> int: ...

    def claimed_ports(self) -> list[tuple[int, str]]:
        """Every (port, setting) the process listens on; each must be free before it starts."""
        return [(self.port, self.port_setting or "settings")]

    @abstractmethod
    def endpoint(self) -> str: ...

    @abstractmethod
    def healthy(self) -> bool: ...

    @abstractmethod
    def launch(self) -> None:
        """Start the process (prerequisites already checked, port known to be free)."""

    def check_prerequisites(self) -> None:
        """Raise PrerequisiteError with one sentence when the machine lacks something."""
        return None

    def provision(self) -> None:
        """Create what the pipeline needs inside the running service (idempotent)."""
        return None

    def up(self) -> str:
        """Start if needed, wait until healthy, provision; return what was done."""
        if self.proc.process() is not None and self._checked_health()[0]:
            self.provision()
            return "already running"
        if self.proc.process() is not None:
            self.proc.stop()
        self.check_prerequisites()
        for port, setting in self.claimed_ports():
            require_free_port(self.settings.bind_host, port, self.name, setting)
        self.launch()
        wait_until(self.healthy, service=self.name, timeout=self.startup_timeout, proc=self.proc)
        self.provision()
        return "started"

    def down(self) -> bool:
        return self.proc.stop(timeout=self.stop_timeout)

    def status(self) -> ServiceStatus:
        pid = self.proc.pid
        up, detail = (False, "") if pid is None else self._checked_health()
        return ServiceStatus(
            self.name, "up" if up else "down", self.endpoint(), pid if up else None, True, detail
        )

    def _checked_health(self) -> tuple[bool, str]:
        """Whether the running service is healthy, and why not when its check raised."""
        try:
            return self.healthy(), ""
        except Exception as exc:
            return False, f"health check raised {describe_exception(exc)}"
