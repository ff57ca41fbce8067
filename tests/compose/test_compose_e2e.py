"""`docker compose up`, then the pipeline end to end, as `make demo` runs it under compose.

Events posted by the emulator container through API Gateway reach Kafka (Confluent REST
proxy), S3 (Kafka Connect's S3 sink), the Spark batch job's answers (Spark master and
worker, s3a in, Delta out), and the DAG runs on Airflow. A project of its own (name, ports,
volumes) so it runs beside a user's stack; everything is removed afterwards.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from services.core.settings import PROJECT_ROOT, Settings
from services.core.waiting import free_port
from tests.compose.conftest import env_with_secrets
from tests.compose.containers import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

EVENTS = 200
PORT_VARIABLES = (
    "PINPIPE_DB_PORT",
    "PINPIPE_BROKER_PORT",
    "PINPIPE_REST_PROXY_PORT",
    "PINPIPE_LOCALSTACK_PORT",
    "PINPIPE_AIRFLOW_PORT",
    "CONNECT_PORT",
    "SPARK_MASTER_UI_PORT",
    "SPARK_WORKER_UI_PORT",
)
ONE_SHOT = ("init-config", "init-db", "init", "airflow-init")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    from testcontainers.compose import DockerCompose

    if (
        shutil.which("docker") is None
        or subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("the docker compose plugin is not installed")
    env = {
        **env_with_secrets(),
        **{name: str(free_port()) for name in PORT_VARIABLES},
        "COMPOSE_PROJECT_NAME": f"pinpipe-e2e-{secrets.token_hex(3)}",
        "PINPIPE_USER_ID": f"e2e{secrets.token_hex(4)}",
        "PINPIPE_SEED_POSTS": "2000",
        "SPARK_WORKER_MEMORY": "1g",
    }
    env_file = tmp_path_factory.mktemp("compose") / "e2e.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    compose = DockerCompose(
        PROJECT_ROOT,
        compose_file_name="docker-compose.yml",
        env_file=str(env_file),
        build=True,
        wait=False,  # below: servers healthy and one-shot services exited 0
    )
    compose.start()
    try:
        wait_for(lambda: _ready(compose), "every service healthy or completed", timeout=1200)
        yield compose, env
    finally:
        compose.stop(down=True)  # and its volumes (keep_volumes=False)


def _ready(compose: Any) -> bool:
    containers = compose.get_containers(include_all=True)
    for c in containers:
        if c.Service in ONE_SHOT:
            if c.State == "exited" and c.ExitCode != 0:
                raise AssertionError(
                    f"{c.Service} failed:\n{compose.get_logs(c.Service)[0][-3000:]}"
                )
            if c.State != "exited":
                return False
        elif c.Health not in ("healthy", "") or c.State != "running":
            return False
    return {c.Service for c in containers} >= {
        "init",
        "rest-proxy",
        "spark-worker",
        "airflow-scheduler",
    }


def run_job(compose: Any, service: str, *args: str, timeout: float = 900) -> dict[str, Any]:
    """`docker compose --profile jobs run --rm SERVICE ARGS`; the JSON of its last line."""
    result = subprocess.run(
        [
            *compose.compose_command_property,
            "--profile",
            "jobs",
            "run",
            "--rm",
            "-T",
            service,
            *args,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def host_settings(env: dict[str, str]) -> Settings:
    return Settings(
        user_id=env["PINPIPE_USER_ID"],
        runtime="compose",
        aws_endpoint_url=f"http://127.0.0.1:{env['PINPIPE_LOCALSTACK_PORT']}",
        kafka_bootstrap_servers=f"127.0.0.1:{env['PINPIPE_BROKER_PORT']}",
    )


def test_posted_events_reach_kafka_s3_and_the_spark_jobs_answers(
    stack: tuple[Any, dict[str, str]], tmp_path: Path
) -> None:
    compose, env = stack
    settings = host_settings(env)

    hops = run_job(
        compose,
        "emulator",
        "emulate",
        "batch",
        "--count",
        str(EVENTS),
        "--seed",
        "1",
        "--hops",
        "--json",
    )["hops"]
    for row in hops:
        assert row["acknowledged"] == row["in_topic"] == row["s3_records"] == EVENTS, row

    s3 = boto3.client("s3", **settings.boto3_kwargs())
    for topic in settings.topics.values():
        listed = s3.list_objects_v2(Bucket=settings.bucket, Prefix=f"topics/{topic}/")
        assert listed["KeyCount"] == EVENTS  # flush.size=1: one object per record
        first = listed["Contents"][0]["Key"]
        assert first == f"topics/{topic}/partition=0/{topic}+0+0000000000.json"

    summary = run_job(compose, "spark-batch", "--json")
    assert all(n > 0 for n in summary["rows"]["clean"].values()), summary
    assert len(summary["answers"]) == 8 and all(n > 0 for n in summary["answers"].values()), summary


def test_the_dag_runs_on_airflow_against_the_compose_cluster(
    stack: tuple[Any, dict[str, str]],
) -> None:
    compose, env = stack
    dag_id = f"{env['PINPIPE_USER_ID']}_dag"
    wait_for(
        lambda: (
            dag_id in compose.exec_in_container(["airflow", "dags", "list"], "airflow-scheduler")[0]
        ),
        f"{dag_id} parsed",
        timeout=300,
    )
    compose.exec_in_container(["airflow", "dags", "unpause", dag_id], "airflow-scheduler")
    out, err, code = compose.exec_in_container(
        ["airflow", "dags", "trigger", dag_id, "-o", "json"], "airflow-scheduler"
    )
    assert code == 0, err
    row = json.loads(out)[0]
    run_id = row.get("dag_run_id") or row["run_id"]

    def state() -> str:
        runs = compose.exec_in_container(
            ["airflow", "dags", "list-runs", dag_id, "-o", "json"], "airflow-scheduler"
        )[0]
        return next(
            r["state"] for r in json.loads(runs) if run_id in (r.get("run_id"), r.get("dag_run_id"))
        )

    wait_for(lambda: state() in ("success", "failed"), f"{run_id} finished", timeout=1200)
    assert state() == "success"
