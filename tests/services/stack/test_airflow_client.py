"""The REST calls behind ``pinpipe airflow trigger``, against a fake Airflow API server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from services.core.errors import TransientError
from services.stack.airflow_client import AirflowApiError, AirflowClient

pytestmark = pytest.mark.unit

DAG_ID = "tclient1_dag"
RUN_ID = "manual__2026-01-01T00:00:00+00:00_abc"


class FakeAirflow:
    """Just enough of Airflow 3's API: token, DAG, unpause, trigger, a run that finishes."""

    def __init__(self, *, parsed_after: int = 0, final_state: str = "success") -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.parsed_after = parsed_after
        self.final_state = final_state
        self.paused = True
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body))
        path = request.url.path
        if path == "/auth/token":
            if body != {"username": "admin", "password": "secret"}:
                return httpx.Response(401, json={"detail": "Invalid credentials"})
            return httpx.Response(201, json={"access_token": "jwt"})
        if request.headers.get("Authorization") != "Bearer jwt":
            return httpx.Response(401, json={"detail": "Not authenticated"})
        if path == f"/api/v2/dags/{DAG_ID}" and request.method == "GET":
            if self.parsed_after > 0:
                self.parsed_after -= 1
                return httpx.Response(404, json={"detail": "not found"})
            return httpx.Response(200, json={"dag_id": DAG_ID, "is_paused": self.paused})
        if path == f"/api/v2/dags/{DAG_ID}" and request.method == "PATCH":
            self.paused = body["is_paused"]
            return httpx.Response(200, json={"dag_id": DAG_ID, "is_paused": self.paused})
        if path == "/api/v2/importErrors":
            return httpx.Response(200, json={"import_errors": [], "total_entries": 0})
        if path == f"/api/v2/dags/{DAG_ID}/dagRuns":
            return httpx.Response(200, json={"dag_run_id": RUN_ID, "state": "queued"})
        if path.endswith("/taskInstances"):
            done = self.polls > 1
            return httpx.Response(200, json={"task_instances": self._tasks(done)})
        if path.startswith(f"/api/v2/dags/{DAG_ID}/dagRuns/"):
            self.polls += 1
            state = self.final_state if self.polls > 1 else "running"
            return httpx.Response(200, json={"dag_run_id": RUN_ID, "state": state})
        return httpx.Response(500, text="unexpected")

    def _tasks(self, done: bool) -> list[dict[str, Any]]:
        start = "2026-01-01T00:00:01Z"
        return [
            {
                "task_id": "report",
                "state": self.final_state if done else None,
                "try_number": 1 if done else 0,
                "start_date": "2026-01-01T00:01:00Z" if done else None,
                "end_date": "2026-01-01T00:01:02.5Z" if done else None,
            },
            {
                "task_id": "check_fresh_data",
                "state": "success",
                "try_number": 1,
                "start_date": start,
                "end_date": "2026-01-01T00:00:03Z",
            },
        ]


def client_for(fake: FakeAirflow, password: str = "secret") -> AirflowClient:
    return AirflowClient(
        "http://airflow.test", "admin", password, transport=httpx.MockTransport(fake)
    )


def test_trigger_sends_a_null_logical_date_and_follows_the_run() -> None:
    fake = FakeAirflow()
    client = client_for(fake)
    assert client.wait_for_dag(DAG_ID, f"{DAG_ID}.py", timeout=5)["is_paused"] is True
    client.unpause(DAG_ID)
    run_id = client.trigger(DAG_ID)
    seen: list[str] = []
    result = client.wait_for_run(
        DAG_ID, run_id, timeout=5, poll=0, on_poll=lambda r: seen.append(r.state)
    )

    assert ("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None}) in fake.calls
    assert fake.paused is False
    assert seen == ["running", "success"]
    assert result.state == "success"
    assert [t.task_id for t in result.tasks] == ["check_fresh_data", "report"]
    assert [t.seconds for t in result.tasks] == [2.0, 2.5]
    # One login for the whole session.
    assert sum(path == "/auth/token" for _, path, _ in fake.calls) == 1


def test_a_failed_run_is_reported_not_raised() -> None:
    result = client_for(FakeAirflow(final_state="failed")).wait_for_run(
        DAG_ID, RUN_ID, timeout=5, poll=0
    )
    assert result.state == "failed"
    assert result.as_dict()["tasks"][1]["state"] == "failed"


def test_a_dag_not_parsed_yet_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.stack.airflow_client.time.sleep", lambda _: None)
    fake = FakeAirflow(parsed_after=2)
    assert client_for(fake).wait_for_dag(DAG_ID, f"{DAG_ID}.py", timeout=5)["dag_id"] == DAG_ID


def test_an_import_error_is_shown_at_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        if request.url.path == "/api/v2/importErrors":
            errors = [{"filename": f"/dags/{DAG_ID}.py", "stack_trace": "ConfigError: boom"}]
            return httpx.Response(200, json={"import_errors": errors})
        return httpx.Response(404, json={"detail": "not found"})

    client = AirflowClient("http://a.test", "admin", "x", transport=httpx.MockTransport(handler))
    with pytest.raises(AirflowApiError, match="does not parse:\nConfigError: boom"):
        client.wait_for_dag(DAG_ID, f"{DAG_ID}.py", timeout=5)


def test_a_wrong_password_is_a_terminal_error_with_the_status() -> None:
    with pytest.raises(AirflowApiError, match="HTTP 401"):
        client_for(FakeAirflow(), password="wrong").trigger(DAG_ID)


def test_an_unreachable_server_is_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = AirflowClient("http://a.test", "admin", "x", transport=httpx.MockTransport(refuse))
    with pytest.raises(TransientError, match="connection refused"):
        client.dag(DAG_ID)
