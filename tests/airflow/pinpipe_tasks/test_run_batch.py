"""How the DAG runs the batch job: the local command, the Databricks payloads, the summary."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from pinpipe_tasks.run_batch import (
    batch_arguments,
    databricks_run_now,
    databricks_submit_run,
    local_batch_command,
    summarize_local_run,
)

from services.core.errors import ConfigError, TerminalError
from services.core.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(user_id="tbatch1", state_dir=tmp_path / "state")


def test_arguments_come_from_the_batch_settings(settings: Settings) -> None:
    assert batch_arguments(settings) == [
        "--user-id",
        "tbatch1",
        "--reader",
        "boto3",
        "--source-root",
        "s3a://user-tbatch1-bucket",
        "--warehouse",
        str(settings.state_dir / "warehouse"),
        "--writer",
        "delta-rs",
    ]


def test_local_command_runs_pinpipe_from_the_project_venv(settings: Settings) -> None:
    command = local_batch_command(settings)
    job = command.split("$(", 1)[1].split(" | ", 1)[0]
    assert shlex.split(job) == [
        str(settings.project_venv / "bin" / "pinpipe"),
        "batch",
        "run",
        *batch_arguments(settings),
        "--json",
    ]


def _run_with_fake_job(settings: Settings, fake: str) -> subprocess.CompletedProcess[str]:
    command = local_batch_command(settings).replace(
        shlex.quote(str(settings.project_venv / "bin" / "pinpipe")), fake, 1
    )
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)


def test_local_command_puts_the_summary_on_the_last_line_of_its_own(settings: Settings) -> None:
    # Spark's progress bar goes to stderr and ends with a carriage return, no newline.
    fake = """f() { echo 'log line'; printf '[Stage 1: 50%%]\\r' >&2; echo '{"ok": 1}'; }; f"""
    done = _run_with_fake_job(settings, fake)
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == '{"ok": 1}'


def test_local_command_keeps_the_job_exit_code(settings: Settings) -> None:
    assert _run_with_fake_job(settings, "f() { echo '{}'; return 3; }; f").returncode == 3


def test_submit_run_needs_a_python_file_and_a_remote_warehouse(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="PINPIPE_DATABRICKS_PYTHON_FILE"):
        databricks_submit_run(settings)
    local_warehouse = settings.model_copy(update={"databricks_python_file": "/Workspace/b.py"})
    with pytest.raises(ConfigError, match="local path"):
        databricks_submit_run(local_warehouse)


@pytest.mark.parametrize(
    "warehouse", ["s3://bucket/delta", "/Volumes/main/pinpipe/warehouse", "dbfs:/pinpipe"]
)
def test_submit_run_accepts_databricks_locations(settings: Settings, warehouse: str) -> None:
    remote = settings.model_copy(
        update={"databricks_python_file": "/Workspace/b.py", "warehouse_uri": warehouse}
    )
    payload = databricks_submit_run(remote)
    assert payload["spark_python_task"]["parameters"][7] == warehouse
    assert "libraries" not in payload  # no wheel configured


def test_run_now_needs_the_job_id(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="PINPIPE_DATABRICKS_BATCH_JOB_ID"):
        databricks_run_now(settings)
    assert databricks_run_now(settings.model_copy(update={"databricks_batch_job_id": 7})) == {
        "job_id": 7
    }


def _summary(tmp_path: Path, **overrides: object) -> str:
    report = tmp_path / "report.html"
    report.write_text("<html/>")
    table = tmp_path / "warehouse" / "t_pin_clean"
    table.mkdir(parents=True)
    summary = {
        "warehouse": str(tmp_path / "warehouse"),
        "report": str(report),
        "tables": {"pin_clean": str(table), "q1": "s3://bucket/delta/q1"},
        "rows": {"read": {"pin": 10}, "clean": {"pin": 8}, "quarantined": {"pin": {"x": 2}}},
    }
    return json.dumps(summary | overrides)


def test_summary_of_a_local_run(tmp_path: Path) -> None:
    result = summarize_local_run(_summary(tmp_path))
    assert result["report"] == str(tmp_path / "report.html")
    assert result["tables"] == ["pin_clean", "q1"]
    assert result["rows_clean"] == {"pin": 8}
    assert result["rows_quarantined"] == {"pin": {"x": 2}}


def test_summary_fails_when_an_output_is_missing(tmp_path: Path) -> None:
    missing = {"pin_clean": str(tmp_path / "nowhere")}
    with pytest.raises(TerminalError, match="do not exist: pin_clean"):
        summarize_local_run(_summary(tmp_path, tables=missing))


@pytest.mark.parametrize("line", [None, "", "[Stage 3:====>   (2 + 1) / 4]"])
def test_summary_fails_without_json(line: str | None) -> None:
    with pytest.raises(TerminalError, match="not its JSON summary"):
        summarize_local_run(line)
