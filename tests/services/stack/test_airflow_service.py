"""Airflow standalone as an opt-in service of the stack, and a DAG run triggered through it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from services.core.errors import PrerequisiteError
from services.core.settings import Settings
from services.stack.airflow_standalone import AirflowService
from services.stack.native_stack import OPTIONAL_SERVICE_CLASSES, SERVICE_CLASSES
from tests.conftest import unique_name


@pytest.mark.unit
def test_airflow_is_opt_in_but_reported(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert AirflowService not in SERVICE_CLASSES
    assert AirflowService in OPTIONAL_SERVICE_CLASSES
    status = AirflowService(settings).status()
    assert (status.state, status.detail) == ("down", "opt-in: make airflow")
    assert status.endpoint == f"http://127.0.0.1:{settings.airflow_port}"


@pytest.mark.unit
def test_configuration_binds_localhost_and_limits_parallelism(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, airflow_port=18123)
    env = AirflowService(settings).environment()
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "18123"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18123"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(settings.airflow_dags_folder)
    assert env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] == "False"
    assert env["PATH"].startswith(str(settings.airflow_venv / "bin"))


@pytest.mark.unit
def test_a_missing_venv_is_a_prerequisite_error(tmp_path: Path) -> None:
    service = AirflowService(Settings(state_dir=tmp_path, airflow_venv=tmp_path / "nowhere"))
    with pytest.raises(PrerequisiteError, match="make setup"):
        service.up()


@pytest.fixture(scope="module")
def airflow_env(
    native_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Airflow up through the CLI for a user whose bucket is empty, stopped afterwards."""
    dags = tmp_path_factory.mktemp("dags")
    env = {
        **os.environ,
        "PINPIPE_USER_ID": unique_name("taf"),
        "PINPIPE_AIRFLOW_DAGS_FOLDER": str(dags),
        "PINPIPE_DAG_RETRIES": "0",
    }
    settings = Settings(user_id=env["PINPIPE_USER_ID"], airflow_dags_folder=dags)
    boto3.client("s3", **settings.boto3_kwargs()).create_bucket(Bucket=settings.bucket)
    up = cli("airflow", "up", env=env)
    try:
        assert up.returncode == 0, up.stderr
        yield env | {"up_stdout": up.stdout}
    finally:
        cli("airflow", "down", env=env)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pinpipe.cli", *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=600,
    )


@pytest.mark.integration
def test_up_prints_the_url_and_login_and_joins_stack_status(airflow_env: dict[str, str]) -> None:
    status = json.loads(cli("stack", "status", "--json", env=airflow_env).stdout)
    airflow = {s["name"]: s for s in status["services"]}["airflow"]
    assert airflow["state"] == "up" and airflow["pid"]
    assert airflow["endpoint"] in airflow_env["up_stdout"]
    # The password stays in its file unless asked for, on the terminal and in --json.
    settings = Settings(state_dir=Path(airflow_env["PINPIPE_STATE_DIR"]))
    service = AirflowService(settings)
    password = service.password()
    assert airflow["detail"] == f"login admin, password in {service.password_file}"
    assert password not in airflow_env["up_stdout"]
    assert str(service.password_file) in airflow_env["up_stdout"].replace("\n", "")
    shown = json.loads(cli("stack", "status", "--json", "--show-secrets", env=airflow_env).stdout)
    detail = {s["name"]: s for s in shown["services"]}["airflow"]["detail"]
    assert detail == f"login admin / {password}"
    assert f"{airflow_env['PINPIPE_USER_ID']}_dag" in airflow_env["up_stdout"]


@pytest.mark.integration
def test_triggered_run_goes_through_the_scheduler(airflow_env: dict[str, str]) -> None:
    # The user's bucket is empty: the freshness check fails (no retries here) and the batch
    # is never started, so the whole REST → scheduler → task path runs in seconds.
    done = cli("airflow", "trigger", "--wait", "--json", env=airflow_env)
    assert done.returncode == 1, done.stderr
    run = json.loads(done.stdout)
    assert run["dag_id"] == f"{airflow_env['PINPIPE_USER_ID']}_dag"
    assert run["state"] == "failed"
    assert {t["task_id"]: t["state"] for t in run["tasks"]} == {
        "check_fresh_data": "failed",
        "run_batch": "upstream_failed",
        "report": "upstream_failed",
    }
