"""Local processes the stack owns: started detached, logged to a file, tracked by a pid file.

A pid file records the pid and the process's start time, so ``stop`` never signals a
recycled pid that now belongs to someone else.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from services.core.errors import PrerequisiteError, ServiceStartError
from services.core.waiting import WaitTimeout, poll


@dataclass(frozen=True)
class ManagedProcess:
    """One process of the native stack, identified by name under the state directory."""

    name: str
    pids_dir: Path
    logs_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.pids_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / f"{self.name}.log"

    def process(self) -> psutil.Process | None:
        """The live process this pid file names, or None (stale files are removed)."""
        try:
            record = json.loads(self.pid_file.read_text())
            proc = psutil.Process(int(record["pid"]))
            # The start time tells a recycled pid apart. It is derived from the boot time,
            # which moves when a machine is restored from a snapshot or migrated: then the
            # command line, as it was started, tells instead.
            same = abs(proc.create_time() - float(record["create_time"])) < 1.0 or (
                bool(record.get("argv")) and proc.cmdline() == list(record["argv"])
            )
            if same and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        except (FileNotFoundError, ValueError, KeyError, psutil.Error):
            pass
        self.pid_file.unlink(missing_ok=True)
        return None

    @property
    def pid(self) -> int | None:
        proc = self.process()
        return proc.pid if proc else None

    def start(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> psutil.Process:
        """Start detached in its own session, appending output to the log file."""
        self.pids_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {argv[0]}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        proc = psutil.Process(popen.pid)
        self.pid_file.write_text(
            json.dumps({"pid": proc.pid, "create_time": proc.create_time(), "argv": list(argv)})
        )
        return proc

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the process and everything it spawned; True if something was running."""
        proc = self.process()
        if proc is None:
            return False
        family = [proc, *proc.children(recursive=True)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        for p in family:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(family, timeout=timeout)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=5)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def run_logged(argv: Sequence[str], log_file: Path, timeout: float) -> tuple[int, str]:
    """Run a command to completion, appending its output to ``log_file``; (code, output)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceStartError(
            Path(argv[0]).name, f"{' '.join(argv)} did not finish in {timeout:.0f}s"
        ) from exc
    output = done.stdout + done.stderr
    with log_file.open("a") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} ran {' '.join(argv)}\n{output}")
    return done.returncode, output


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """True if something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> psutil.Process | None:
    """The process listening on a TCP port, if it can be seen."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return psutil.Process(conn.pid) if conn.pid else None
    except psutil.Error:
        return None
    return None


def require_free_port(host: str, port: int, service: str, setting: str) -> None:
    """Fail with one sentence if another program already listens where a service must."""
    if port_open(host, port):
        owner = port_owner(port)
        who = f" by {owner.name()} (pid {owner.pid})" if owner else ""
        raise PrerequisiteError(
            f"Port {port} needed by {service} is already in use{who}: stop that program "
            f"or choose another port with {setting}."
        )


# A health check raising one of these has a bug, not a service that is still starting.
CHECK_BUGS: tuple[type[Exception], ...] = (
    TypeError,
    AttributeError,
    NameError,
    ImportError,
    SyntaxError,
)


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` of an exception, for one line of an error."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def wait_until(
    check: Callable[[], bool],
    *,
    service: str,
    timeout: float,
    proc: ManagedProcess | None = None,
    interval: float = 0.2,
) -> None:
    """Poll ``check`` until true; fail early if the process died, with its log tail.

    Most exceptions from ``check`` mean "not yet": a starting service refuses connections,
    answers 503, or half-answers, in ways too many to list. The last one is named if the
    wait times out. An exception that means a bug in the check (``CHECK_BUGS``) fails at
    once, as itself.
    """
    last: list[BaseException] = []

    def healthy_or_exited() -> bool:
        if proc is not None and proc.process() is None:
            raise ServiceStartError(service, "the process exited", proc.log_tail())
        try:
            return bool(check())
        except CHECK_BUGS as exc:
            raise ServiceStartError(
                service,
                f"its health check crashed: {describe_exception(exc)}",
                proc.log_tail() if proc else "",
            ) from exc
        except Exception as exc:
            last[:] = [exc]
            return False

    try:
        poll(healthy_or_exited, f"{service} to be healthy", timeout, every=interval)
    except WaitTimeout:
        why = f"; the last health check raised {describe_exception(last[0])}" if last else ""
        raise ServiceStartError(
            service, f"not healthy after {timeout:.0f}s{why}", proc.log_tail() if proc else ""
        ) from (last[0] if last else None)
