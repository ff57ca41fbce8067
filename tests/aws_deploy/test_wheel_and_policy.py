"""The Databricks wheel is reproducible and installable; the deploy policy covers every step."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from aws_deploy.context import policy_sid
from aws_deploy.iam import POLICY_FILE, deploy_policy
from aws_deploy.runner import STEP_NAMES
from aws_deploy.wheel import RUNTIME_REQUIREMENTS, build_wheel
from tests.aws_deploy.conftest import ACCOUNT, CLUSTER_ARN, UID, base_target, deployment

pytestmark = pytest.mark.unit


def test_the_wheel_is_byte_for_byte_reproducible_and_lean(project_root: Path) -> None:
    first, second = build_wheel(project_root), build_wheel(project_root)
    assert first.content == second.content and first.filename == "pinpipe-0.1.0-py3-none-any.whl"
    names = zipfile.ZipFile(BytesIO(first.content)).namelist()
    assert "services/core/settings.py" in names and "spark/jobs/batch_job.py" in names
    assert not any("__pycache__" in n for n in names)
    metadata = zipfile.ZipFile(BytesIO(first.content)).read("pinpipe-0.1.0.dist-info/METADATA")
    requires = [
        line.split(": ", 1)[1]
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist")
    ]
    assert requires == list(RUNTIME_REQUIREMENTS)  # never pyspark over the cluster's own


def test_pip_accepts_the_wheel(project_root: Path, tmp_path: Path) -> None:
    wheel = build_wheel(project_root)
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.content)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(tmp_path / "site"),
            str(path),
        ],
        check=True,
    )
    assert (tmp_path / "site" / "services" / "core" / "settings.py").is_file()


def test_the_policy_has_one_statement_per_aws_step_and_renders_for_a_target(tmp_path: Path) -> None:
    sids = [s["Sid"] for s in json.loads(POLICY_FILE.read_text())["Statement"]]
    aws_steps = [name for name in STEP_NAMES if name != "databricks"]  # Databricks' own auth
    assert sids == [policy_sid(name) for name in aws_steps]
    rendered = json.loads(deploy_policy(deployment(tmp_path, base_target()).ctx))
    text = json.dumps(rendered)
    assert "${" not in text
    assert CLUSTER_ARN in text and f"stream/streaming-{UID}-*" in text
    assert f"arn:aws:iam::{ACCOUNT}:role/{UID}-kinesis-access-role" in text


def test_aws_errors_become_transient_or_terminal_with_the_policy_statement() -> None:
    from botocore.exceptions import ClientError

    from aws_deploy.context import aws_failure
    from services.core.errors import TerminalError, TransientError

    def error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "no"}}, "CreateConnector")

    assert isinstance(aws_failure("msk_connect", error("ThrottlingException")), TransientError)
    denied = aws_failure("msk_connect", error("AccessDeniedException"))
    assert isinstance(denied, TerminalError) and "Sid=MskConnect" in str(denied)
