"""Waiting for a native service: a crashing health check is reported as itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from services.core.errors import ServiceStartError
from services.core.settings import Settings
from services.stack.base import NativeService
from services.stack.process import ManagedProcess, wait_until

pytestmark = pytest.mark.unit


def test_a_check_with_a_bug_fails_at_once_naming_its_exception() -> None:
    calls = []

    def check() -> bool:
        calls.append(1)
        return None.endswith("x")  # type: ignore[attr-defined]

    with pytest.raises(ServiceStartError, match="health check crashed: AttributeError") as err:
        wait_until(check, service="svc", timeout=30, interval=0.01)
    assert len(calls) == 1
    assert isinstance(err.value.__cause__, AttributeError)


def test_a_timeout_names_the_last_exception_the_check_raised() -> None:
    def check() -> bool:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(ServiceStartError) as err:
        wait_until(check, service="svc", timeout=0.3, interval=0.05)
    assert "not healthy after 0s; the last health check raised ConnectionRefusedError" in str(
        err.value
    )
    assert "Connection refused" in str(err.value)


def test_a_check_that_only_says_no_times_out_plainly() -> None:
    with pytest.raises(ServiceStartError, match=r"not healthy after 0s$"):
        wait_until(lambda: False, service="svc", timeout=0.3, interval=0.05)


class Broken(NativeService):
    name = "broken"

    @property
    def port(self) -> int:
        return 1

    def healthy(self) -> bool:
        raise RuntimeError("the admin port answered garbage")

    def launch(self) -> None:  # pragma: no cover - never started here
        raise AssertionError

    def endpoint(self) -> str:
        return "http://127.0.0.1:1"


def test_status_of_a_running_service_whose_check_raises_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Broken(Settings(state_dir=tmp_path))
    monkeypatch.setattr(type(service.proc), "pid", property(lambda self: 4242))
    status = service.status()
    assert status.state == "down"
    assert status.detail == "health check raised RuntimeError: the admin port answered garbage"


def test_a_pid_file_whose_start_time_moved_still_names_its_process(tmp_path: Path) -> None:
    # A restored snapshot moves the boot time, and with it every process's start time.
    proc = ManagedProcess("sleeper", tmp_path / "pids", tmp_path / "logs")
    started = proc.start([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = json.loads(proc.pid_file.read_text())
        proc.pid_file.write_text(
            json.dumps({**record, "create_time": record["create_time"] - 3600})
        )
        assert proc.pid == started.pid
        proc.pid_file.write_text(json.dumps({**record, "create_time": 0, "argv": ["other"]}))
        assert proc.pid is None and not proc.pid_file.exists()  # another process: stale
    finally:
        started.kill()
