"""How the DAG runs the batch job: one argument list, run by a local command or on Databricks."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from services.core.errors import ConfigError, TerminalError
from services.core.settings import Settings

# Databricks paths that look local but are not: they name workspace files and volumes.
DATABRICKS_PATH_PREFIXES = ("/Volumes/", "/Workspace/", "/dbfs/")


def batch_arguments(settings: Settings) -> list[str]:
    """spark/jobs/batch_job.py's flags, whichever runner: the same job with the same parameters.

    The user id is passed explicitly: an existing cluster or another process's environment
    may carry a different one.
    """
    return [
        "--user-id",
        settings.user_id,
        "--reader",
        settings.batch_reader,
        "--source-root",
        settings.source_root,
        "--warehouse",
        settings.warehouse_uri,
        "--writer",
        settings.table_writer,
    ]


def local_batch_command(settings: Settings) -> str:
    """Shell command running the job in the project venv; its last output line is the summary.

    BashOperator merges stderr into the output it scans and pushes the last line to XCom,
    but Spark's progress bar (stderr) ends without a newline, so the summary printed after
    it would share its line: capture stdout's last line, then print it on a line of its own.
    ``-e`` and ``pipefail`` keep the job's exit code.
    """
    argv = [str(settings.project_venv / "bin" / "pinpipe"), "batch", "run"]
    command = shlex.join([*argv, *batch_arguments(settings), "--json"])
    return f"set -eo pipefail; summary=$({command} | tail -n 1); printf '\\n%s\\n' \"$summary\""


def _is_local_path(uri: str) -> bool:
    return "://" not in uri and not uri.startswith(("dbfs:", *DATABRICKS_PATH_PREFIXES))


def databricks_run_now(settings: Settings) -> dict[str, Any]:
    """The ``run-now`` payload of the deployed batch job (its task holds file and parameters)."""
    if settings.databricks_batch_job_id is None:
        raise ConfigError("PINPIPE_DATABRICKS_BATCH_JOB_ID is not set")
    return {"job_id": settings.databricks_batch_job_id}


def databricks_submit_run(settings: Settings) -> dict[str, Any]:
    """The ``runs/submit`` payload running spark/jobs/batch_job.py as a spark_python_task."""
    if not settings.databricks_python_file:
        raise ConfigError(
            "the databricks runner needs PINPIPE_DATABRICKS_BATCH_JOB_ID (a deployed job) or "
            "PINPIPE_DATABRICKS_PYTHON_FILE (where spark/jobs/batch_job.py was uploaded)"
        )
    if _is_local_path(settings.warehouse_uri):
        raise ConfigError(
            f"PINPIPE_WAREHOUSE_URI is a local path ({settings.warehouse_uri}), which a "
            "Databricks cluster can't write to: use s3://, a /Volumes path or dbfs:"
        )
    cluster: dict[str, Any]
    if settings.databricks_cluster_id:
        cluster = {"existing_cluster_id": settings.databricks_cluster_id}
    else:
        cluster = {
            "new_cluster": {
                "spark_version": settings.databricks_spark_version,
                "node_type_id": settings.databricks_node_type,
                "num_workers": settings.databricks_num_workers,
                # The job derives the bucket and table names from the user id, as here.
                "spark_env_vars": {
                    "PINPIPE_USER_ID": settings.user_id,
                    "PINPIPE_AWS_REGION": settings.aws_region,
                },
            }
        }
    payload: dict[str, Any] = {
        "run_name": f"{settings.dag_id} batch",
        **cluster,
        "spark_python_task": {
            "python_file": settings.databricks_python_file,
            "parameters": batch_arguments(settings),
        },
    }
    if settings.databricks_wheel:
        payload["libraries"] = [{"whl": settings.databricks_wheel}]
    return payload


def summarize_local_run(last_line: str | None) -> dict[str, Any]:
    """Check what the local job says it wrote exists; return the summary worth keeping."""
    try:
        summary = json.loads(last_line or "")
    except ValueError:
        raise TerminalError(
            f"the batch job's last output line is not its JSON summary: {last_line!r:.200}"
        ) from None
    written = {"report": summary.get("report", ""), **summary.get("tables", {})}
    missing = sorted(name for name, where in written.items() if not _exists(where))
    if missing:
        raise TerminalError(
            f"the batch job reported outputs that do not exist: {', '.join(missing)}"
        )
    rows = summary.get("rows", {})
    return {
        "report": summary["report"],
        "warehouse": summary.get("warehouse"),
        "tables": sorted(summary.get("tables", {})),
        "rows_clean": rows.get("clean", {}),
        "rows_quarantined": rows.get("quarantined", {}),
    }


def _exists(where: str) -> bool:
    # Remote outputs (s3://, volumes) are the job's to check; local ones are checked here.
    return bool(where) and (not _is_local_path(where) or Path(where).exists())


def summarize_databricks_run(run_page_url: str | None) -> dict[str, Any]:
    """Where the Databricks run's own logs and outputs are (the operator already checked it)."""
    return {"run_page_url": run_page_url}
