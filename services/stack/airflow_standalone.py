"""Airflow 3 standalone (its own venv): scheduler, DAG processor, API server, triggerer.

Opt-in (``make airflow``), not part of ``stack up``: it takes 20-45 s to start and ~1.5 GB.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import httpx
from pinpipe_tasks.dag_file import write_dag_file

from services.core.errors import PrerequisiteError
from services.core.waiting import free_port
from services.stack.airflow_client import AirflowClient
from services.stack.base import NativeService, ServiceStatus

ADMIN_USER = "admin"
# Components that must answer before a DAG run can happen (the triggerer is not needed).
REQUIRED_COMPONENTS = ("metadatabase", "scheduler", "dag_processor")


class AirflowService(NativeService):
    name = "airflow"
    port_setting = "PINPIPE_AIRFLOW_PORT"
    # 20-45 s here, the first start migrating the database; CI machines can be slower.
    startup_timeout = 180.0

    @property
    def port(self) -> int:
        return self.settings.airflow_port

    def endpoint(self) -> str:
        return f"http://{self.settings.bind_host}:{self.port}"

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "airflow"

    @property
    def airflow_bin(self) -> Path:
        return self.settings.airflow_venv / "bin" / "airflow"

    @property
    def password_file(self) -> Path:
        # Where the simple auth manager writes the admin password it generates.
        return self.home / "simple_auth_manager_passwords.json.generated"

    def password(self) -> str:
        """The generated admin password (Airflow writes it at its first start)."""
        try:
            return str(json.loads(self.password_file.read_text())[ADMIN_USER])
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise PrerequisiteError(
                f"No Airflow admin password in {self.password_file}: start Airflow with "
                "`make airflow` first."
            ) from exc

    def client(self) -> AirflowClient:
        """A REST client logged in as the admin user."""
        return AirflowClient(self.endpoint(), ADMIN_USER, self.password())

    def healthy(self) -> bool:
        resp = httpx.get(f"{self.endpoint()}/api/v2/monitor/health", timeout=2)
        if resp.status_code != 200:
            return False
        health = resp.json()
        return all(health.get(c, {}).get("status") == "healthy" for c in REQUIRED_COMPONENTS)

    def check_prerequisites(self) -> None:
        if not self.airflow_bin.exists():
            raise PrerequisiteError(
                f"Airflow's venv is missing ({self.airflow_bin} not found): run `make setup`."
            )

    def environment(self) -> dict[str, str]:
        """Airflow's configuration, as variables (no airflow.cfg edits to keep in sync)."""
        host = self.settings.bind_host
        return {
            # standalone starts its components as `airflow <command>` found on PATH.
            "PATH": f"{self.airflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.settings.airflow_dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(self.port),
            # Tasks reach the execution API through it (default: localhost:8080).
            "AIRFLOW__API__BASE_URL": self.endpoint(),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.settings.airflow_scheduled_runs),
            # A new <uid>_dag.py shows up within 30 s rather than the default 5 min.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            # The log servers' fixed defaults (8793, 8794) would clash between two instances.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port(host)),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port(host)),
            # The DAG's tasks read pinpipe's settings: same state directory as this stack.
            "PINPIPE_STATE_DIR": str(self.settings.state_dir),
        }

    def launch(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # Written before the start so the DAG processor's first scan finds it.
        write_dag_file(self.settings)
        self.proc.start(
            [str(self.airflow_bin), "standalone"], env=self.environment(), cwd=self.home
        )

    def provision(self) -> None:
        """The user's DAG file, in case the user id changed since Airflow started."""
        write_dag_file(self.settings)

    def status(self) -> ServiceStatus:
        status = super().status()
        if status.state == "down":
            return dataclasses.replace(status, detail="opt-in: make airflow")
        # The password stays in its file: status is printed and scripted.
        return dataclasses.replace(
            status, detail=f"login {ADMIN_USER}, password in {self.password_file}"
        )
