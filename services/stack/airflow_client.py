"""Airflow's REST API (v2) as ``pinpipe airflow trigger`` uses it: log in, trigger, follow a run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from services.core.errors import TerminalError, TransientError

FINISHED_RUN_STATES = {"success", "failed"}


class AirflowApiError(TerminalError):
    """Airflow answered a request with an error, or a run did not finish in time."""


@dataclass(frozen=True)
class TaskState:
    task_id: str
    state: str | None
    try_number: int
    start_date: str | None
    end_date: str | None

    @property
    def seconds(self) -> float | None:
        """Start to end (the API's own ``duration`` also counts time before the start)."""
        if not (self.start_date and self.end_date):
            return None
        end, start = (datetime.fromisoformat(d) for d in (self.end_date, self.start_date))
        return (end - start).total_seconds()


@dataclass(frozen=True)
class RunResult:
    """A DAG run's state and its tasks' states."""

    dag_id: str
    run_id: str
    state: str
    tasks: list[TaskState]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, each task with its seconds."""
        return asdict(self) | {"tasks": [asdict(t) | {"seconds": t.seconds} for t in self.tasks]}


class AirflowClient:
    """A logged-in session with one Airflow API server (simple auth manager's JWT)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._username = username
        self._password = password
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(f"Airflow API at {self._http.base_url}: {exc}") from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._token is None:
            resp = self._send(
                "POST", "/auth/token", json={"username": self._username, "password": self._password}
            )
            _raise_for_status(resp)
            self._token = str(resp.json()["access_token"])
        return self._send(
            method, path, headers={"Authorization": f"Bearer {self._token}"}, **kwargs
        )

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG as the API server knows it; None until the DAG processor has parsed it."""
        resp = self._request("GET", f"/api/v2/dags/{quote(dag_id, safe='')}")
        if resp.status_code == 404:
            return None
        _raise_for_status(resp)
        return dict(resp.json())

    def import_errors(self) -> dict[str, str]:
        """Import errors by file name (a DAG file that failed to parse has no DAG)."""
        resp = self._request("GET", "/api/v2/importErrors")
        _raise_for_status(resp)
        return {e["filename"]: e["stack_trace"] for e in resp.json()["import_errors"]}

    def wait_for_dag(self, dag_id: str, dag_file: str, timeout: float) -> dict[str, Any]:
        """Poll until the DAG is parsed; fail at once with the trace if its file can't be."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.dag(dag_id)
            if found is not None:
                return found
            errors = [t for f, t in self.import_errors().items() if f.endswith(dag_file)]
            if errors:
                raise AirflowApiError(f"{dag_file} does not parse:\n{errors[0]}")
            if time.monotonic() > deadline:
                raise AirflowApiError(
                    f"Airflow has not parsed {dag_id} after {timeout:.0f}s: is {dag_file} "
                    "in its DAG folder?"
                )
            time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        """Let the scheduler start the DAG's runs (it leaves a paused DAG's runs queued)."""
        resp = self._request(
            "PATCH", f"/api/v2/dags/{quote(dag_id, safe='')}", json={"is_paused": False}
        )
        _raise_for_status(resp)

    def trigger(self, dag_id: str) -> str:
        """Start a manual run now; its id."""
        # Airflow 3 requires the key; null means "no logical date", i.e. run now.
        resp = self._request(
            "POST", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", json={"logical_date": None}
        )
        _raise_for_status(resp)
        return str(resp.json()["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> RunResult:
        """A run's state and its task instances' states."""
        base = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        run = self._request("GET", base)
        _raise_for_status(run)
        tis = self._request("GET", f"{base}/taskInstances")
        _raise_for_status(tis)
        tasks = [
            TaskState(
                t["task_id"], t["state"], int(t["try_number"]), t["start_date"], t["end_date"]
            )
            for t in tis.json()["task_instances"]
        ]
        # In the order they ran; tasks not started yet last.
        tasks.sort(key=lambda t: (t.start_date is None, t.start_date or ""))
        return RunResult(dag_id, run_id, str(run.json()["state"]), tasks)

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        timeout: float,
        *,
        poll: float = 2.0,
        on_poll: Callable[[RunResult], None] | None = None,
    ) -> RunResult:
        """Poll a run until it succeeds or fails."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.run(dag_id, run_id)
            if on_poll:
                on_poll(result)
            if result.state in FINISHED_RUN_STATES:
                return result
            if time.monotonic() > deadline:
                raise AirflowApiError(
                    f"run {run_id} of {dag_id} still {result.state} after {timeout:.0f}s"
                )
            time.sleep(poll)


def _raise_for_status(resp: httpx.Response) -> None:
    if resp.is_success:
        return
    detail = resp.text[:500]
    message = f"{resp.request.method} {resp.request.url.path}: HTTP {resp.status_code} {detail}"
    if resp.status_code >= 500:
        raise TransientError(f"Airflow API {message}")
    raise AirflowApiError(f"Airflow API {message}")
