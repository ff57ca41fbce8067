"""Databricks: the SDK's requests captured by requests-mock, payloads checked on its types."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests_mock
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.service import jobs

from aws_deploy import databricks
from tests.aws_deploy.conftest import UID, base_target, deployment, quiet

pytestmark = pytest.mark.unit

HOST = "http://localhost"
# Defaults the service adds to stored settings; a converged job must still be a no-op.
SERVER_DEFAULTS = {"email_notifications": {}, "format": "MULTI_TASK", "timeout_seconds": 0}


class FakeWorkspace:
    """Just enough of the REST API: workspace files, volumes, jobs and secrets, in memory."""

    def __init__(self, mock: requests_mock.Mocker) -> None:
        self.files: dict[str, bytes] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.scopes: set[str] = set()
        self.secrets: dict[str, str] = {}
        self.created: list[dict[str, Any]] = []
        self.resets: list[dict[str, Any]] = []
        self.mock = mock
        api = f"{HOST}/api"
        mock.get(f"{HOST}/.well-known/databricks-config", json={})
        mock.get(f"{api}/2.0/workspace/get-status", json=self._status)
        mock.post(f"{api}/2.0/workspace/mkdirs", json={})
        mock.post(f"{api}/2.0/workspace/import", json=self._import)
        mock.post(f"{api}/2.0/workspace/delete", json=self._delete_tree)
        mock.register_uri(
            "HEAD", re.compile(rf"{api}/2\.0/fs/(files|directories)/.*"), text=self._head
        )
        mock.put(re.compile(rf"{api}/2\.0/fs/files/.*"), json=self._put_file)
        mock.get(f"{api}/2.2/jobs/list", json=self._list_jobs)
        mock.get(f"{api}/2.2/jobs/get", json=self._get_job)
        mock.post(f"{api}/2.2/jobs/create", json=self._create_job)
        mock.post(f"{api}/2.2/jobs/reset", json=self._reset_job)
        mock.post(f"{api}/2.2/jobs/delete", json=self._delete_job)
        mock.get(f"{api}/2.0/secrets/scopes/list", json=self._scopes)
        mock.post(f"{api}/2.0/secrets/scopes/create", json=self._create_scope)
        mock.post(f"{api}/2.0/secrets/put", json=self._put_secret)

    @staticmethod
    def _missing(context: Any, code: str = "RESOURCE_DOES_NOT_EXIST") -> dict[str, Any]:
        context.status_code = 404
        return {"error_code": code, "message": "not found"}

    def _status(self, request: Any, context: Any) -> dict[str, Any]:
        path = parse_qs(urlparse(request.url).query)["path"][0]
        if path in self.files or any(p.startswith(f"{path}/") for p in self.files):
            return {"path": path, "object_type": "FILE" if path in self.files else "DIRECTORY"}
        return self._missing(context)

    def _import(self, request: Any, context: Any) -> dict[str, Any]:
        path = re.search(rb'name="path"\r\n\r\n([^\r]+)', request.body).group(1).decode()
        self.files[path] = b"imported"
        return {}

    def _delete_tree(self, request: Any, context: Any) -> dict[str, Any]:
        root = request.json()["path"]
        self.files = {p: c for p, c in self.files.items() if not p.startswith(f"{root}/")}
        return {}

    def _head(self, request: Any, context: Any) -> str:
        path = urlparse(request.url).path.split("/fs/files", 1)[-1].split("/fs/directories", 1)[-1]
        exists = path in self.files or any(p.startswith(f"{path}/") for p in self.files)
        context.status_code = 200 if exists else 404
        return ""

    def _put_file(self, request: Any, context: Any) -> dict[str, Any]:
        path = urlparse(request.url).path.split("/fs/files", 1)[1]
        body = request.body
        self.files[path] = body.read() if hasattr(body, "read") else body
        return {}

    def _list_jobs(self, request: Any, context: Any) -> dict[str, Any]:
        name = parse_qs(urlparse(request.url).query).get("name", [""])[0]
        found = [
            {"job_id": i, "settings": {"name": s["name"]}}
            for i, s in self.jobs.items()
            if s["name"] == name
        ]
        return {"jobs": found} if found else {}

    def _get_job(self, request: Any, context: Any) -> dict[str, Any]:
        job_id = int(parse_qs(urlparse(request.url).query)["job_id"][0])
        if job_id not in self.jobs:
            return self._missing(context)
        return {"job_id": job_id, "settings": SERVER_DEFAULTS | self.jobs[job_id]}

    def _create_job(self, request: Any, context: Any) -> dict[str, Any]:
        payload = request.json()
        self.created.append(payload)
        job_id = 100 + len(self.jobs)
        self.jobs[job_id] = payload
        return {"job_id": job_id}

    def _reset_job(self, request: Any, context: Any) -> dict[str, Any]:
        payload = request.json()
        self.resets.append(payload)
        self.jobs[payload["job_id"]] = payload["new_settings"]
        return {}

    def _delete_job(self, request: Any, context: Any) -> dict[str, Any]:
        self.jobs.pop(request.json()["job_id"])
        return {}

    def _scopes(self, request: Any, context: Any) -> dict[str, Any]:
        return {"scopes": [{"name": s, "backend_type": "DATABRICKS"} for s in self.scopes]}

    def _create_scope(self, request: Any, context: Any) -> dict[str, Any]:
        self.scopes.add(request.json()["scope"])
        return {}

    def _put_secret(self, request: Any, context: Any) -> dict[str, Any]:
        body = request.json()
        self.secrets[f"{body['scope']}/{body['key']}"] = body["string_value"]
        return {}

    def writes(self) -> list[str]:
        """Every request that could change the workspace."""
        return [
            f"{r.method} {r.path}"
            for r in self.mock.request_history
            if r.method in {"POST", "PUT", "DELETE", "PATCH"}
        ]


@pytest.fixture
def fake() -> Iterator[tuple[FakeWorkspace, WorkspaceClient]]:
    with requests_mock.Mocker() as mock:
        server = FakeWorkspace(mock)
        client = WorkspaceClient(
            config=Config(host=HOST, token="test-token", retry_timeout_seconds=5)
        )
        yield server, client


def target(**databricks_: Any) -> dict[str, Any]:
    return base_target(databricks={"host": HOST, **databricks_})


def test_apply_uploads_once_and_creates_both_jobs_as_typed_settings(
    tmp_path: Path, project_root: Path, fake: tuple[FakeWorkspace, WorkspaceClient]
) -> None:
    server, client = fake
    first = deployment(
        tmp_path, target(), only=["databricks"], workspace=client, project_root=project_root
    )
    changes = first.apply(quiet())
    assert [(c.kind, c.action.value) for c in changes] == [
        ("artifacts", "create"),
        ("job", "create"),
        ("job", "create"),
    ]
    folder = changes[0].name
    assert folder.startswith("/Workspace/Shared/pinpipe/")
    assert {p.rsplit("/", 1)[1] for p in server.files} == {
        "batch.py",
        "streaming.py",
        "pinpipe-0.1.0-py3-none-any.whl",
    }
    for payload, kind in zip(server.created, ("batch", "streaming"), strict=True):
        # The payload is exactly what the SDK's JobSettings type serialises...
        assert jobs.JobSettings.from_dict(payload).as_dict() == payload
        # ...and what the step means to send.
        wanted = databricks.job_settings(first.ctx, kind, folder, "pinpipe-0.1.0-py3-none-any.whl")
        assert payload == wanted.as_dict()
        task = payload["tasks"][0]
        assert task["spark_python_task"]["python_file"] == f"{folder}/{kind}.py"
        assert task["libraries"] == [{"whl": f"{folder}/pinpipe-0.1.0-py3-none-any.whl"}]
        assert payload["name"] == f"{UID}-pinpipe-{kind}"
        assert "mount" not in json.dumps(payload) and "dbfs:" not in json.dumps(payload)
    batch_args = server.created[0]["tasks"][0]["spark_python_task"]["parameters"]
    assert batch_args[:6] == [
        "--user-id",
        UID,
        "--reader",
        "spark",
        "--source-root",
        f"s3://user-{UID}-bucket",
    ]
    assert first.ctx.outputs["databricks_batch_job_id"] == "100"

    writes = len(server.writes())
    second = deployment(
        tmp_path, target(), only=["databricks"], workspace=client, project_root=project_root
    )
    assert {c.action.value for c in second.apply(quiet())} == {"no-op"}
    assert len(server.writes()) == writes


def test_a_changed_cluster_shape_resets_the_job(
    tmp_path: Path, project_root: Path, fake: tuple[FakeWorkspace, WorkspaceClient]
) -> None:
    server, client = fake
    deployment(
        tmp_path, target(), only=["databricks"], workspace=client, project_root=project_root
    ).apply(quiet())
    bigger = deployment(
        tmp_path,
        target(num_workers=4),
        only=["databricks"],
        workspace=client,
        project_root=project_root,
    )
    changes = bigger.apply(quiet())
    assert [(c.action.value, c.detail.split(": ")[-1]) for c in changes[1:]] == [
        ("update", "job_clusters"),
        ("update", "job_clusters"),
    ]
    for reset in server.resets:
        settings = jobs.JobSettings.from_dict(reset["new_settings"])
        assert settings.job_clusters[0].new_cluster.num_workers == 4


def test_secret_scope_keys_come_from_the_environment_and_are_put_once(
    tmp_path: Path,
    project_root: Path,
    fake: tuple[FakeWorkspace, WorkspaceClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, client = fake
    monkeypatch.setenv("PINPIPE_AWS_DATABRICKS__AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("PINPIPE_AWS_DATABRICKS__AWS_SECRET_ACCESS_KEY", "wJalrEXAMPLE")
    t = target(aws_access="secret_scope")
    first = deployment(
        tmp_path, t, only=["databricks"], workspace=client, project_root=project_root
    )
    first.apply(quiet())
    scope = f"{UID}-aws"
    assert server.scopes == {scope}
    assert server.secrets == {
        f"{scope}/aws-access-key-id": "AKIDEXAMPLE",
        f"{scope}/aws-secret-access-key": "wJalrEXAMPLE",
    }
    env = server.created[0]["job_clusters"][0]["new_cluster"]["spark_env_vars"]
    assert env["AWS_SECRET_ACCESS_KEY"] == f"{{{{secrets/{scope}/aws-secret-access-key}}}}"
    state = first.ctx.state.path.read_text()
    assert "wJalrEXAMPLE" not in state and "AKIDEXAMPLE" not in state

    writes = len(server.writes())
    second = deployment(
        tmp_path, t, only=["databricks"], workspace=client, project_root=project_root
    )
    assert {c.action.value for c in second.apply(quiet())} == {"no-op"}
    assert len(server.writes()) == writes


def test_volume_artifacts_and_destroy_remove_only_what_apply_made(
    tmp_path: Path, project_root: Path, fake: tuple[FakeWorkspace, WorkspaceClient]
) -> None:
    server, client = fake
    server.jobs[7] = {"name": "someone-elses-job"}
    t = target(artifacts_path="/Volumes/main/pinpipe/artifacts")
    deployment(tmp_path, t, only=["databricks"], workspace=client, project_root=project_root).apply(
        quiet()
    )
    assert all(p.startswith("/Volumes/main/pinpipe/artifacts/") for p in server.files)
    assert len(server.jobs) == 3
    server.mock.register_uri(
        "GET",
        re.compile(rf"{HOST}/api/2\.0/fs/directories/.*"),
        json=lambda request, context: {
            "contents": [
                {"path": p, "is_directory": False}
                for p in server.files
                if p.startswith(urlparse(request.url).path.split("/fs/directories", 1)[1])
            ]
        },
    )

    def delete_file(request: Any, context: Any) -> dict[str, Any]:
        del server.files[urlparse(request.url).path.split("/fs/files", 1)[1]]
        return {}

    server.mock.delete(re.compile(rf"{HOST}/api/2\.0/fs/files/.*"), json=delete_file)
    server.mock.delete(re.compile(rf"{HOST}/api/2\.0/fs/directories/.*"), json={})
    gone = deployment(tmp_path, t, only=["databricks"], workspace=client, project_root=project_root)
    changes = gone.destroy(quiet(), confirm=lambda _: True)
    assert [c.action.value for c in changes] == ["delete"] * 3
    assert server.jobs == {7: {"name": "someone-elses-job"}}
    assert server.files == {}
