"""MWAA: Stubber for the environment and its REST API, moto for the versioned DAG bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY
from moto import mock_aws

from aws_deploy import mwaa
from aws_deploy.mwaa import STARTUP_KEY, requirements_txt
from services.core.settings import Settings
from tests.aws_deploy.conftest import UID, base_target, deployment, quiet, stubbed

pytestmark = pytest.mark.unit

ENV = "Databricks-Airflow-env"
BUCKET = "mwaa-dags-bucket"


def environment(**fields: Any) -> dict[str, Any]:
    env = {
        "Name": ENV,
        "Status": "AVAILABLE",
        "AirflowVersion": "3.0.6",
        "SourceBucketArn": f"arn:aws:s3:::{BUCKET}",
        "DagS3Path": "dags",
    }
    return {"Environment": env | fields}


def target() -> dict[str, Any]:
    return base_target(databricks={})


def versioned_bucket() -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def test_requirements_carry_the_constraint_line_for_the_environment() -> None:
    text = requirements_txt("3.0.6", ["apache-airflow-providers-databricks"]).decode()
    assert text.splitlines() == [
        '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.0.6/'
        'constraints-3.12.txt"',
        "apache-airflow-providers-databricks",
    ]
    assert "constraints-2.10.3/constraints-3.11.txt" in requirements_txt("2.10.3", []).decode()


def test_the_dag_goes_with_every_project_module_it_imports(
    tmp_path: Path, project_root: Path
) -> None:
    d = deployment(tmp_path, target(), only=["mwaa"], project_root=project_root)
    files = mwaa.dag_files(d.ctx)
    assert f'USER_ID = "{UID}"' in files[f"{UID}_dag.py"].decode()
    core = {"services/__init__.py", "services/core/__init__.py", "services/core/settings.py"}
    assert core <= set(files)
    # From airflow/, as MWAA's DAG folder holds them: beside the DAG file.
    assert "pinpipe_tasks/run_batch.py" in files  # imported at parse time
    assert "pinpipe_tasks/freshness.py" in files  # imported inside a task
    assert not any(name.startswith(("airflow/", "spark/")) for name in files)


def test_the_startup_script_exports_only_settings_the_dag_reads(
    tmp_path: Path, project_root: Path
) -> None:
    d = deployment(tmp_path, target(), only=["mwaa"], project_root=project_root)
    env = mwaa.dag_environment(d.ctx)
    assert env["PINPIPE_DAG_RUNNER"] == "databricks"
    assert env["PINPIPE_WAREHOUSE_URI"].startswith("s3://")
    for name in env:
        assert name.removeprefix("PINPIPE_").lower() in Settings.model_fields, name


@mock_aws
def test_apply_uploads_updates_the_environment_once_then_changes_nothing(
    tmp_path: Path, project_root: Path
) -> None:
    s3 = versioned_bucket()
    client, stub = stubbed("mwaa")
    stub.add_response("get_environment", environment(), {"Name": ENV})
    stub.add_response("get_environment", environment(), {"Name": ENV})  # wait: AVAILABLE
    stub.add_response(
        "update_environment",
        {"Arn": f"arn:aws:airflow:us-east-1:123456789012:environment/{ENV}"},
        {
            "Name": ENV,
            "RequirementsS3Path": "requirements.txt",
            "RequirementsS3ObjectVersion": ANY,
            "StartupScriptS3Path": STARTUP_KEY,
            "StartupScriptS3ObjectVersion": ANY,
        },
    )
    stub.add_response("get_environment", environment(Status="UPDATING"), {"Name": ENV})
    stub.add_response("get_environment", environment(), {"Name": ENV})
    first = deployment(
        tmp_path, target(), only=["mwaa"], clients={"mwaa": client}, project_root=project_root
    )
    changes = first.apply(quiet())
    stub.assert_no_pending_responses()
    assert [c.kind for c in changes if c.action.value == "create"].count("dag file") >= 5
    assert changes[-1].kind == "environment" and changes[-1].action.value == "update"
    dag = s3.get_object(Bucket=BUCKET, Key=f"dags/{UID}_dag.py")["Body"].read().decode()
    assert f'USER_ID = "{UID}"' in dag

    def version(key: str) -> str:
        return str(s3.head_object(Bucket=BUCKET, Key=key)["VersionId"])

    now = environment(
        RequirementsS3Path="requirements.txt",
        RequirementsS3ObjectVersion=version("requirements.txt"),
        StartupScriptS3Path=STARTUP_KEY,
        StartupScriptS3ObjectVersion=version(STARTUP_KEY),
    )
    client, stub = stubbed("mwaa")
    stub.add_response("get_environment", now, {"Name": ENV})
    second = deployment(
        tmp_path, target(), only=["mwaa"], clients={"mwaa": client}, project_root=project_root
    )
    assert {c.action.value for c in second.apply(quiet())} == {"no-op"}
    stub.assert_no_pending_responses()


@mock_aws
def test_trigger_unpauses_and_waits_for_the_dag_to_be_parsed(
    tmp_path: Path, project_root: Path
) -> None:
    versioned_bucket()
    client, stub = stubbed("mwaa")
    stub.add_response("get_environment", environment(), {"Name": ENV})
    dag = f"{UID}_dag"
    stub.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiClientException",
        http_status_code=400,
        modeled_fields={"RestApiStatusCode": 404, "RestApiResponse": {"detail": "DAG not found"}},
    )
    stub.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": {"is_paused": False}},
        {"Name": ENV, "Path": f"/dags/{dag}", "Method": "PATCH", "Body": {"is_paused": False}},
    )
    stub.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": {"dag_run_id": "manual__1"}},
        {
            "Name": ENV,
            "Path": f"/dags/{dag}/dagRuns",
            "Method": "POST",
            "Body": {"logical_date": None},
        },
    )
    target_ = target()
    target_["mwaa"] |= {"manage_requirements": False, "manage_startup_script": False}
    d = deployment(
        tmp_path,
        target_,
        only=["mwaa"],
        clients={"mwaa": client},
        project_root=project_root,
        trigger_dag=True,
    )
    changes = d.apply(quiet())
    stub.assert_no_pending_responses()
    assert changes[-1].kind == "dag run"


@mock_aws
def test_an_environment_with_its_own_startup_script_is_left_alone(
    tmp_path: Path, project_root: Path
) -> None:
    from services.core.errors import TerminalError

    versioned_bucket()
    client, stub = stubbed("mwaa")
    stub.add_response(
        "get_environment", environment(StartupScriptS3Path="team/startup.sh"), {"Name": ENV}
    )
    d = deployment(
        tmp_path, target(), only=["mwaa"], clients={"mwaa": client}, project_root=project_root
    )
    with pytest.raises(TerminalError, match=r"its own startup script team/startup\.sh"):
        d.plan(quiet())
