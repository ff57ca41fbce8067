"""Shared helpers: a target file per test, stubbed or moto-backed clients, a quiet console."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.stub import Stubber
from rich.console import Console

from aws_deploy.plan import Change
from aws_deploy.runner import Deployment

UID = "u1a2b3c4d5"
ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER_ARN = (
    f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/pinterest-msk/abcd1234-0000-1111-2222-333344445555-2"
)
BOOTSTRAP = (
    "b-1.pinterestmsk.abcd12.c2.kafka.us-east-1.amazonaws.com:9098,"
    "b-2.pinterestmsk.abcd12.c2.kafka.us-east-1.amazonaws.com:9098"
)


def base_target(**sections: Any) -> dict[str, Any]:
    """A complete target in the original account's shape; sections override."""
    target: dict[str, Any] = {
        "user_id": UID,
        "region": REGION,
        "account_id": ACCOUNT,
        "msk": {"cluster_arn": CLUSTER_ARN},
        "msk_connect": {"subnets": ["subnet-0a1b2c3d"], "security_groups": ["sg-0a1b2c3d"]},
        "rest_proxy": {"public_dns": "ec2-3-81-0-1.compute-1.amazonaws.com"},
        "mwaa": {"environment": "Databricks-Airflow-env"},
        "databricks": {"host": "http://localhost"},
    }
    target.update(sections)
    return target


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No target values or credentials leak in from the machine; state goes to tmp."""
    for key in list(os.environ):
        if key.startswith(("PINPIPE_AWS_", "DATABRICKS_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PINPIPE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def stubbed(service: str) -> tuple[Any, Stubber]:
    """A client whose every call must be queued on its Stubber (checked against the model)."""
    client = botocore.session.get_session().create_client(
        service,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


def deployment(
    tmp_path: Path,
    target: dict[str, Any],
    *,
    only: Iterable[str] = (),
    clients: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Deployment:
    """A Deployment of this target with injected clients and no polling delay."""
    path = tmp_path / "aws-target.yaml"
    path.write_text(yaml.safe_dump(target))
    return Deployment.prepare(path, only=only, clients=clients or {}, poll_interval=0, **kwargs)


def quiet() -> Console:
    """A console that records instead of printing."""
    return Console(file=io.StringIO(), width=200, color_system=None)


def actions(changes: Iterable[Change]) -> list[tuple[str, str, str]]:
    """(kind, name, action) of each change, for compact assertions."""
    return [(c.kind, c.name, c.action.value) for c in changes]


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    """A copy of the code that gets packaged."""
    from services.core.settings import PROJECT_ROOT

    root = tmp_path / "project"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("services", "spark", "airflow/dags", "airflow/pinpipe_tasks"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder, ignore=skip)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root
